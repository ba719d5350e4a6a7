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
#     exercise: ex05
#     generated_from: solutions/ex05_vivit.py
# ---

# %% [markdown]
# # Exercise 5 — ViViT: factorised space-time attention
#
# Companion to [chapter 5](../chapters/05_vivit_variants.py). After each part run its
# `check(...)` cell; `hint("<question id>")` gives a more specific hint, `case("<question id>", n)`
# the inputs of a failing case.
#
# A clip gives `n_t` temporal indices of `N = n_h·n_w` tokens each, `L = n_t·N` tokens in all.
# Flattened, the order is **time-major**: token `i_t·N + i_s` is spatial location `i_s` of temporal
# index `i_t`, so `x.reshape(B, L, D)` of tokens `x (B, n_t, N, D)` is that order.
#
# Rules: plain PyTorch (`torch.arange`, `torch.softmax`, `transpose`, `@`, ...), not
# `F.scaled_dot_product_attention`, `nn.MultiheadAttention` or the `vidlearn` library (`check()` and
# the grader notice such a call, and the question then scores zero). The grader tests on inputs of
# its own, not the ones `case()` shows. Do not rename the functions.

# %%
import math

import torch

from vidlearn.grading import case, check, hint  # noqa: F401

# %% [markdown]
# ## 1. The same-frame mask (2 points)
#
# `same_frame_mask(n_t, N)` returns an `(L, L)` **boolean** tensor: entry `[i, j]` is True when tokens
# `i` and `j` have the same temporal index (True = may attend). Under this mask joint attention is
# Model 3's spatial step.

# %% nbgrader={"grade": false, "grade_id": "ex05-same_frame_mask-answer", "locked": false, "schema_version": 3, "solution": true}
def same_frame_mask(n_t, N):
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "ex05-same_frame_mask", "locked": true, "points": 2, "schema_version": 3, "solution": false}
check("ex05.same_frame_mask", same_frame_mask)

# %% [markdown]
# ## 2. The same-location mask (2 points)
#
# `same_location_mask(n_t, N)`: the `(L, L)` boolean mask that is True when tokens `i` and `j` sit at
# the same spatial location (at any temporal index). Under it joint attention is Model 3's temporal
# step.

# %% nbgrader={"grade": false, "grade_id": "ex05-same_location_mask-answer", "locked": false, "schema_version": 3, "solution": true}
def same_location_mask(n_t, N):
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "ex05-same_location_mask", "locked": true, "points": 2, "schema_version": 3, "solution": false}
check("ex05.same_location_mask", same_location_mask)

# %% [markdown]
# ## 3. Model 3: factorised self-attention (3 points)
#
# Without the projections, attention of a set of tokens among themselves is `attend` below: it
# attends over the second-to-last axis, every axis before it is a batch axis.
#
# `factorised_self_attention(x)` for tokens `x (B, n_t, N, D)`:
# first the **spatial** step, `y = x + attend(...)` among the `N` tokens of each temporal index;
# then the **temporal** step, `z = y + attend(...)` among the `n_t` tokens at each spatial location
# (of `y`). Return `z (B, n_t, N, D)`.

# %% nbgrader={"grade": false, "grade_id": "ex05-factorised_self_attention-answer", "locked": false, "schema_version": 3, "solution": true}
def attend(z):
    """``softmax(z zᵀ/√D) z`` for ``z (..., n, D)``: the n tokens attend among themselves."""
    weights = torch.softmax(z @ z.transpose(-2, -1) / math.sqrt(z.shape[-1]), dim=-1)  # (..., n, n)
    return weights @ z


def factorised_self_attention(x):
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "ex05-factorised_self_attention", "locked": true, "points": 3, "schema_version": 3, "solution": false}
check("ex05.factorised_self_attention", factorised_self_attention)

# %% [markdown]
# ## 4. Model 4: factorised dot-product attention (3 points)
#
# `factorised_dot_product(q, k, v, n_t, N)` for `q, k, v (B, h, L, d_h)` with `h` even: scaled
# dot-product attention in which heads `0 .. h/2-1` attend only within the same temporal index and
# heads `h/2 .. h-1` only within the same spatial location (your masks from parts 1 and 2 say which
# tokens those are). Blocked logits get `-inf` before the softmax. Returns `(B, h, L, d_h)`.

# %% nbgrader={"grade": false, "grade_id": "ex05-factorised_dot_product-answer", "locked": false, "schema_version": 3, "solution": true}
def factorised_dot_product(q, k, v, n_t, N):
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "ex05-factorised_dot_product", "locked": true, "points": 3, "schema_version": 3, "solution": false}
check("ex05.factorised_dot_product", factorised_dot_product)


# %%
# Optional: see it for yourself — with q = k = v = the tokens, Model 4's two kinds of heads compute
# Model 3's spatial and temporal attention, side by side on x instead of one after the other.
x = torch.randn(2, 3, 4, 8, dtype=torch.float64)  # (B, n_t, N, D)
heads = x.reshape(2, 1, 12, 8).expand(2, 2, 12, 8)  # (B, h, L, D): one spatial head, one temporal head
try:
    out = factorised_dot_product(heads, heads, heads, 3, 4).reshape(2, 2, 3, 4, 8)  # (B, h, n_t, N, D)
    print("spatial head  == attention within each temporal index:", torch.allclose(out[:, 0], attend(x)))
    temporal = attend(x.transpose(1, 2)).transpose(1, 2)
    print("temporal head == attention across time at each location:", torch.allclose(out[:, 1], temporal))
except NotImplementedError:
    print("write factorised_dot_product first")

# %% [markdown]
# ## 5. Derivation: what Model 3's attention costs (2 points)
#
# Count the multiply-accumulates of the score and weighted-sum products ($QK^\top$ and $AV$;
# projections not counted) in one Model-3 block of width $d$. Attention among $n$ tokens costs
# $2n^2d$ MACs; the spatial step runs on $n_t$ groups of $N$ tokens, the temporal step on $N$ groups of
# $n_t$ tokens, so the total is $n_t\,(2N^2d) + N\,(2n_t^2d)$, written
# `n_t*(2*N**2*d) + N*(2*n_t**2*d)`. Bring it to a single product, in at least two steps, each with
# its reason, and compare it with joint attention's $2d\,(n_tN)^2$.

# %% nbgrader={"grade": false, "grade_id": "ex05-model3_attention_macs_steps-answer", "locked": false, "schema_version": 3, "solution": true}
def model3_attention_macs_steps():
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "ex05-model3_attention_macs", "locked": true, "points": 2, "schema_version": 3, "solution": false}
check("ex05.model3_attention_macs", model3_attention_macs_steps)
