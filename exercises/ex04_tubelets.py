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
#     exercise: ex04
#     generated_from: solutions/ex04_tubelets.py
# ---

# %% [markdown]
# # Exercise 4 — tubelets
#
# Companion to [chapter 4](../chapters/04_tubelet_embedding.py). After each part run its
# `check(...)` cell; `hint("<question id>")` gives a more specific hint, `case("<question id>", n)`
# the inputs of a failing case.
#
# Videos are laid out `(B, T, C, H, W)` (time before channels); a `Conv3d` weight is
# `(D, C, t, h, w)`. Plain PyTorch only, not the `vidlearn` library (`check()` and the grader notice a
# call to it, and the question then scores zero). The grader tests on inputs of its own, not the
# ones `case()` shows. Do not rename the functions.

# %%
import torch

from vidlearn.grading import case, check, hint  # noqa: F401

# %% [markdown]
# ## 1. Tubelets, flattened the way Conv3d sees them (3 points)
#
# `tubelet_tokens(video, tubelet)` cuts `video (B, T, C, H, W)` into non-overlapping `t×h×w`
# tubelets (`tubelet = (t, h, w)`) and returns `(B, n_t, n_h, n_w, C·t·h·w)` with
# `n_t = T // t`, `n_h = H // h`, `n_w = W // w` (leftover frames, rows and columns are dropped).
# Flatten each tubelet in the order of a Conv3d weight, **(C, t, h, w)**, so that a tubelet
# embedding is `tokens @ W.reshape(D, -1).T`.

# %% nbgrader={"grade": false, "grade_id": "ex04-tubelet_tokens-answer", "locked": false, "schema_version": 3, "solution": true}
def tubelet_tokens(video, tubelet):
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "ex04-tubelet_tokens", "locked": true, "points": 3, "schema_version": 3, "solution": false}
check("ex04.tubelet_tokens", tubelet_tokens)


# %%
# Optional: see the claim for yourself — a Conv3d with stride = kernel is this matrix product.
conv = torch.nn.Conv3d(3, 5, kernel_size=(2, 4, 4), stride=(2, 4, 4)).double()
video = torch.randn(1, 4, 3, 8, 8, dtype=torch.float64)
by_conv = conv(video.permute(0, 2, 1, 3, 4)).permute(0, 2, 3, 4, 1)  # (B, n_t, n_h, n_w, D)
try:
    by_matmul = tubelet_tokens(video, (2, 4, 4)) @ conv.weight.reshape(5, -1).T + conv.bias
    print("Conv3d == flattened tubelets @ W:", torch.allclose(by_conv, by_matmul))
except NotImplementedError:
    print("write tubelet_tokens first")

# %% [markdown]
# ## 2. Inflating a 2D filter (2 points)
#
# `inflate_2d_filter(weight2d, t)` turns a 2D patch-embedding weight `(D, C, h, w)` into a 3D one
# `(D, C, t, h, w)`: the 2D filter repeated at every time step and **divided by t**, so that on a
# video whose `t` frames are identical the 3D response equals the 2D one.

# %% nbgrader={"grade": false, "grade_id": "ex04-inflate_2d_filter-answer", "locked": false, "schema_version": 3, "solution": true}
def inflate_2d_filter(weight2d, t):
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "ex04-inflate_2d_filter", "locked": true, "points": 2, "schema_version": 3, "solution": false}
check("ex04.inflate_2d_filter", inflate_2d_filter)

# %% [markdown]
# ## 3. Central-frame initialisation (2 points)
#
# `central_frame_init(weight2d, t)` returns `(D, C, t, h, w)`: zeros everywhere, except the 2D filter
# at the central time index `t // 2`.

# %% nbgrader={"grade": false, "grade_id": "ex04-central_frame_init-answer", "locked": false, "schema_version": 3, "solution": true}
def central_frame_init(weight2d, t):
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "ex04-central_frame_init", "locked": true, "points": 2, "schema_version": 3, "solution": false}
check("ex04.central_frame_init", central_frame_init)

# %% [markdown]
# ## 4. Derivation: inflation on a static video (2 points)
#
# With one weight `w` per pixel and a static video (every frame shows the value `x`), the inflated
# filter's response is $\sum_{\tau=1}^{t} \frac{w}{t}\,x$, written `Sum(w/t*x, (tau, 1, t))`. Show, in
# at least two steps, that it equals the 2D response $w\,x$.

# %% nbgrader={"grade": false, "grade_id": "ex04-inflation_static_steps-answer", "locked": false, "schema_version": 3, "solution": true}
def inflation_static_steps():
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "ex04-inflation_static", "locked": true, "points": 2, "schema_version": 3, "solution": false}
check("ex04.inflation_static", inflation_static_steps)
