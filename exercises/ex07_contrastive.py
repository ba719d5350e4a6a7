# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: vidlearn
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
#   vidlearn:
#     exercise: ex07
#     generated_from: solutions/ex07_contrastive.py
# ---

# %% [markdown]
# # Exercise 7 — Contrastive dual encoders: the symmetric InfoNCE loss
#
# Companion to [chapter 7](../chapters/07_contrastive_retrieval.py). After each part run its
# `check(...)` cell; `hint("<question id>")` gives a more specific hint, `case("<question id>", n)`
# the inputs of a failing case.
#
# Rules: plain PyTorch (`torch.log_softmax`, `F.cross_entropy`, `.norm`, `@`, ...), not the `vidlearn`
# library (`check()` and the grader notice such a call, and the question then scores zero). The grader
# tests on inputs of its own, not the ones `case()` shows. Do not rename the functions.
#
# A **dual encoder** runs a video tower and a text tower separately; the two meet only in a dot product
# of their embeddings, so a gallery of videos is embedded once and every query costs one dot product
# per video. The towers are trained so that matching pairs score higher than all the others in the
# batch, with the loss of CLIP (Radford et al. 2021), which CLIP4Clip (Luo et al. 2021) uses for video.

# %%
import torch
import torch.nn.functional as F  # noqa: F401

from vidlearn.grading import case, check, hint  # noqa: F401

# %% [markdown]
# ## 1. The symmetric InfoNCE loss (4 points)
#
# A batch of `B` pairs: row `i` of `video (B, D)` and row `i` of `text (B, D)` are one clip and its
# caption; every other row of the batch is a negative. Normalise each embedding (each row) to unit L2
# length, $\hat v_i = v_i / \lVert v_i \rVert$ and likewise $\hat t_j$, and divide the cosine
# similarities by a temperature $\tau$:
#
# $$S = \hat V \hat T^\top / \tau \quad (B \times B), \qquad
# \mathrm{CE}(S) = -\frac{1}{B}\sum_{i=1}^{B} \log \mathrm{softmax}(S_{i,:})_i$$
#
# Row $i$ of $S$ asks video $i$ to pick out its own caption among the $B$ (video→text); row $i$ of
# $S^\top$ asks caption $i$ to pick out its own video (text→video). The loss is the mean of both:
#
# $$L = \tfrac12\left[\mathrm{CE}(S) + \mathrm{CE}(S^\top)\right]$$
#
# `symmetric_info_nce(video, text, temperature)` returns $L$, a scalar (0-dimensional) tensor of the
# embeddings' dtype (float64: compute in it, the grader compares to about 1e-8); `temperature` is a
# positive number. A loss is something a model is trained on, so the grader also checks its gradient:
# `video` and `text` come with `requires_grad=True`, and the gradient of your loss with respect to them
# must be the reference's. Keep the computation in torch from the inputs to the result (no `.item()`,
# `.detach()`, `torch.tensor(...)` or `torch.no_grad()` on the way), and leave the inputs as they are
# (`video = video / ...`, not `video /= ...`).

# %% nbgrader={"grade": false, "grade_id": "ex07-symmetric_info_nce-answer", "locked": false, "schema_version": 3, "solution": true}
def symmetric_info_nce(video, text, temperature):
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "ex07-symmetric_info_nce", "locked": true, "points": 4, "schema_version": 3, "solution": false}
check("ex07.symmetric_info_nce", symmetric_info_nce)


# %%
# Optional: see it for yourself — when every embedding is the same, every softmax is uniform over the B
# candidates and the loss is log B, whatever τ: the loss a dual encoder starts near, and chance.
B = 8
same = torch.ones(B, 4, dtype=torch.float64)
try:
    print(f"all-equal batch of {B}: loss {symmetric_info_nce(same, same, 0.07).item():.4f}, "
          f"log B = {torch.log(torch.tensor(float(B))).item():.4f}")
except NotImplementedError:
    print("write symmetric_info_nce first")

# %% [markdown]
# ## 2. The gradient with respect to the logits (3 points)
#
# For one row, $\partial(-\log \mathrm{softmax}(z)_i)/\partial z_j = \mathrm{softmax}(z)_j - [i = j]$.
# With the mean over the batch, the video→text term's gradient with respect to $S$ is
# $(\mathrm{softmax}(S, \text{rows}) - I)/B$; the text→video term is the same for $S^\top$, so with
# respect to $S$ it has a softmax down each column. `info_nce_logit_gradient(logits)` takes
# `logits` $S$ `(B, B)` and returns $\partial L/\partial S$ `(B, B)` for the symmetric loss $L$ above,
# written from the formula. (The grader checks the values, not how you got them: autograd would give
# the same numbers, and is what the optional cell below uses to check yours. Compute in the logits'
# dtype, float64: the grader compares to about 1e-8, and float32 rounding can miss that.)

# %% nbgrader={"grade": false, "grade_id": "ex07-info_nce_logit_gradient-answer", "locked": false, "schema_version": 3, "solution": true}
def info_nce_logit_gradient(logits):
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "ex07-info_nce_logit_gradient", "locked": true, "points": 3, "schema_version": 3, "solution": false}
check("ex07.info_nce_logit_gradient", info_nce_logit_gradient)


# %%
# Optional: see it for yourself — autograd through your loss's formula agrees, and descent raises every
# matching logit (the diagonal of the gradient is negative) and the entries sum to zero (each softmax
# sums to one, like its one-hot target).
g = torch.Generator().manual_seed(0)
s = torch.randn(5, 5, generator=g, dtype=torch.float64, requires_grad=True)
target = torch.arange(5)
(auto,) = torch.autograd.grad((F.cross_entropy(s, target) + F.cross_entropy(s.T, target)) / 2, s)
try:
    mine = info_nce_logit_gradient(s.detach())
    print("largest |difference| from autograd:", (mine - auto).abs().max().item())
    print("diagonal:", mine.diagonal().numpy().round(3), "| sum of all entries:", mine.sum().item())
except NotImplementedError:
    print("write info_nce_logit_gradient first")

# %% [markdown]
# ## 3. Derivation: an all-equal batch costs log B (2 points)
#
# When every video embedding is the same and every text embedding is the same, every logit of $S$ is
# one number $c$ (a cosine over $\tau$). The loss is then, with the sums written out,
# `(-Sum(log(exp(c)/Sum(exp(c), (j, 1, B))), (i, 1, B))/B - Sum(log(exp(c)/Sum(exp(c), (i, 1, B))), (j, 1, B))/B)/2`.
# Show, in at least two steps with their reasons, that it is `log(B)`, whatever $c$: a dual encoder
# that cannot tell its pairs apart scores chance, and the loss of a fresh model starts near it. The grader
# looks, before the end, for the step where each softmax $e^c/(B e^c)$ is worked out to $1/B$: a step in
# which every `log` is written `log(1/B)` and no `exp` is left, with the sums kept or done (e.g.
# `-Sum(log(1/B), (i, 1, B))/B - ...` or `-log(1/B)`). Another form of the answer, such as `-log(B)`'s
# rewrites `log(B**2)/2` or `log(2*B) - log(2)`, is not that step.
# `all_equal_loss_steps()` returns the steps as `(expression, reason)` pairs, as in exercise 6.

# %% nbgrader={"grade": false, "grade_id": "ex07-all_equal_loss_steps-answer", "locked": false, "schema_version": 3, "solution": true}
def all_equal_loss_steps():
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "ex07-all_equal_loss", "locked": true, "points": 2, "schema_version": 3, "solution": false}
check("ex07.all_equal_loss", all_equal_loss_steps)
