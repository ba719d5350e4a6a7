# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: vidlearn
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
#   vidlearn:
#     exercise: ex06
# ---

# %% [markdown]
# # Exercise 6 — Cross-modal attention and VideoBERT's tokens
#
# Companion to [chapter 6](../chapters/06_cross_modal_fusion.py). After each part run its
# `check(...)` cell; `hint("<question id>")` gives a more specific hint, `case("<question id>", n)`
# the inputs of a failing case.
#
# Rules: plain PyTorch (`torch.cdist`, `torch.where`, `torch.softmax`, `@`, ...), not
# `F.scaled_dot_product_attention`, `nn.MultiheadAttention` or the `vidlearn` library (`check()` and
# the grader notice such a call, and the question then scores zero). The grader tests on inputs of
# its own, not the ones `case()` shows. Do not rename the functions.

# %%
import math

import torch

from vidlearn.grading import case, check, hint  # noqa: F401

# %% [markdown]
# ## 1. Cross-attention (3 points)
#
# One head in which the text asks and the video answers: text tokens `text (B, L_x, D)` are the
# queries, video tokens `video (B, L_v, D)` give the keys and values. The projections multiply from the
# right, `w_q, w_k (D, d_k)` and `w_v (D, d_v)`:
#
# $$\mathrm{softmax}\!\left(\frac{(X W_Q)(V W_K)^\top}{\sqrt{d_k}}\right) V W_V$$
#
# with the softmax over the video tokens. `cross_attention(text, video, w_q, w_k, w_v)` returns
# `(B, L_x, d_v)`: one row per text token.

# %% nbgrader={"grade": false, "grade_id": "ex06-cross_attention-answer", "locked": false, "schema_version": 3, "solution": true}
def cross_attention(text, video, w_q, w_k, w_v):
    ### BEGIN SOLUTION
    q = text @ w_q  # (B, L_x, d_k)
    k, v = video @ w_k, video @ w_v  # (B, L_v, d_k), (B, L_v, d_v)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, L_x, L_v)
    return torch.softmax(scores, dim=-1) @ v
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex06-cross_attention", "locked": true, "points": 3, "schema_version": 3, "solution": false}
check("ex06.cross_attention", cross_attention)

# %% [markdown]
# ## 2. Visual words by hierarchical k-means (3 points)
#
# VideoBERT turns each clip's feature vector into a discrete **visual word** by walking down a tree of
# k-means centroids. Here the tree has depth 2: `centroids_1 (k, F)` are the top level and
# `centroids_2 (k, k, F)` the second, `centroids_2[i]` being the `k` children of top-level centroid `i`.
#
# For each row of `features (M, F)`: `i` is the nearest top-level centroid (Euclidean distance), `j` the
# nearest of `centroids_2[i]`. The visual word is the path read as a base-`k` number, first level most
# significant, `i·k + j`. The joint vocabulary puts the special tokens and the text words first, so the
# token id is `offset + i·k + j`. `assign_visual_words(features, centroids_1, centroids_2, offset)`
# returns these ids, an int64 `(M,)` tensor.

# %% nbgrader={"grade": false, "grade_id": "ex06-assign_visual_words-answer", "locked": false, "schema_version": 3, "solution": true}
def assign_visual_words(features, centroids_1, centroids_2, offset):
    ### BEGIN SOLUTION
    k = centroids_1.shape[0]
    i = torch.cdist(features, centroids_1).argmin(dim=1)  # (M,)
    children = centroids_2[i]  # (M, k, F): only the children of each feature's own parent
    j = (features[:, None, :] - children).square().sum(-1).argmin(dim=1)  # (M,)
    return offset + i * k + j
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex06-assign_visual_words", "locked": true, "points": 3, "schema_version": 3, "solution": false}
check("ex06.assign_visual_words", assign_visual_words)


# %%
# Optional: see it for yourself — the descent is greedy. This point's nearest leaf, (0.2, 0), is a child
# of the top-level centroid (1, 0), but the point is nearer to (-1, 0), so it never gets to see that leaf.
tops = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])  # (k, F) = (2, 2)
leaves = torch.tensor([[[-1.0, 1.0], [-1.0, -1.0]], [[0.2, 0.0], [3.0, 0.0]]])  # (k, k, F)
point = torch.tensor([[-0.1, 0.05]])  # (M, F) = (1, 2)
try:
    print("greedy descent: word", assign_visual_words(point, tops, leaves, 0).item(),
          "| nearest leaf: word", torch.cdist(point, leaves.reshape(4, 2)).argmin().item())
except NotImplementedError:
    print("write assign_visual_words first")

# %% [markdown]
# ## 3. BERT's masking, made deterministic (3 points)
#
# Masked language modelling hides some tokens and asks the model for them. To make it testable, the
# random numbers come in as arguments, all `(B, L)`: the token ids `ids` (int64), `special` (bool,
# True for `[CLS]`, `[SEP]`, `[>]` and `[PAD]`), two uniform draws in `[0, 1)`, `u_select` and
# `u_action`, and `random_ids` (int64), a replacement token for each position, already drawn from that
# position's modality.
#
# * A position is **chosen** when it is not special and `u_select < p` (`p` is 0.15 in BERT).
# * A chosen position becomes `mask_id` when `u_action < 0.8`, its `random_ids` token when
#   `0.8 <= u_action < 0.9`, and stays unchanged otherwise.
#
# `mlm_mask(ids, special, u_select, u_action, random_ids, mask_id, p)` returns `(masked_ids, labels)`,
# both int64 `(B, L)`: `labels` is the original id at chosen positions and -100 (the loss's
# `ignore_index`) everywhere else.

# %% nbgrader={"grade": false, "grade_id": "ex06-mlm_mask-answer", "locked": false, "schema_version": 3, "solution": true}
def mlm_mask(ids, special, u_select, u_action, random_ids, mask_id, p):
    ### BEGIN SOLUTION
    chosen = ~special & (u_select < p)  # (B, L)
    masked = ids.clone()
    masked[chosen & (u_action < 0.8)] = mask_id
    swap = chosen & (u_action >= 0.8) & (u_action < 0.9)
    masked[swap] = random_ids[swap]
    labels = torch.full_like(ids, -100)
    labels[chosen] = ids[chosen]
    return masked, labels
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex06-mlm_mask", "locked": true, "points": 3, "schema_version": 3, "solution": false}
check("ex06.mlm_mask", mlm_mask)


# %%
# Optional: see it for yourself — over many positions about 15 % are chosen, and of those about 80 % become
# [MASK], 10 % a random token and 10 % stay as they were (yet are still predicted: labels != -100).
g = torch.Generator().manual_seed(0)
shape = (64, 512)  # (B, L)
ids = torch.randint(5, 1000, shape, generator=g)
no_special = torch.zeros(shape, dtype=torch.bool)
random_ids = torch.randint(5, 1000, shape, generator=g)  # ids from 5 up are never [MASK] = 3
try:
    masked, labels = mlm_mask(ids, no_special, torch.rand(shape, generator=g), torch.rand(shape, generator=g),
                              random_ids, 3, 0.15)
    chosen = labels != -100
    n = chosen.sum().item()
    print(f"chosen: {n / ids.numel():.3f} of the positions")
    print(f"of those, [MASK]: {(masked[chosen] == 3).sum().item() / n:.3f}, "
          f"random: {((masked != ids) & (masked != 3))[chosen].sum().item() / n:.3f}, "
          f"unchanged: {(masked == ids)[chosen].sum().item() / n:.3f}")
except NotImplementedError:
    print("write mlm_mask first")

# %% [markdown]
# ## 4. Derivation: single-stream attention is four blocks (2 points)
#
# A single-stream model concatenates $n_x$ text and $n_v$ video tokens of width $d$ and runs ordinary
# self-attention over all $n_x + n_v$. Counting the multiply-accumulates of the score and weighted-sum
# products ($QK^\top$ and $AV$, projections not counted) as in chapter 5, that is $2(n_x + n_v)^2 d$,
# written `2*(n_x + n_v)**2*d`. Attention of $n_q$ queries over $n_k$ keys costs $2 n_q n_k d$. Show, in at
# least two steps with their reasons, that the total is text self-attention plus video self-attention
# plus the two cross-attentions, text→video and video→text:
# `2*n_x**2*d + 2*n_v**2*d + 2*n_x*n_v*d + 2*n_v*n_x*d`.

# %% nbgrader={"grade": false, "grade_id": "ex06-fusion_attention_cost_steps-answer", "locked": false, "schema_version": 3, "solution": true}
def fusion_attention_cost_steps():
    ### BEGIN SOLUTION
    return [
        ("2*d*(n_x**2 + 2*n_x*n_v + n_v**2)", "expand the square"),
        ("2*n_x**2*d + 2*n_v**2*d + 2*n_x*n_v*d + 2*n_v*n_x*d",
         "the score matrix's four blocks: text self, video self, text→video and video→text"),
    ]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex06-fusion_attention_cost", "locked": true, "points": 2, "schema_version": 3, "solution": false}
check("ex06.fusion_attention_cost", fusion_attention_cost_steps)
