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
#     exercise: ex01
#     generated_from: solutions/ex01_attention.py
# ---

# %% [markdown]
# # Exercise 1 — attention from scratch
#
# Companion to [chapter 1](../chapters/01_scaled_dot_product_attention.py). You write the pieces of
# attention yourself; after each one, run the `check(...)` cell below it. It runs the same tests the
# teacher's grader runs and tells you at once what passed, or the first failing case with a hint.
# Ask for a more specific hint with `hint("<question id>")`, and get the inputs of a failing case with
# `case("<question id>", n)`.
#
# Rules: use plain PyTorch (`torch`, `torch.exp`, `@`, ...), not `torch.softmax` (nor `F.softmax`,
# `Tensor.softmax`, `log_softmax`), `F.scaled_dot_product_attention`, `nn.MultiheadAttention` or the
# `vidlearn` library. `check()` and the grader both notice such a call, and the question then scores
# zero. The grader tests on inputs of its own, not the ones `case()` shows. Do not rename the
# functions: the grader calls them by name.

# %%
import math

import torch

from vidlearn.grading import case, check, hint  # noqa: F401

# %% [markdown]
# ## 1. A stable softmax (2 points)
#
# `softmax(x, dim=-1)` returns $e^{x_i}/\sum_j e^{x_j}$ along `dim`. It must
# - not overflow for large logits (subtract the maximum first: softmax is shift invariant);
# - return **zeros** for a slice that is `-inf` everywhere (a query with nothing to attend to),
#   not NaN;
# - keep the input's dtype and shape.

# %% nbgrader={"grade": false, "grade_id": "ex01-softmax-answer", "locked": false, "schema_version": 3, "solution": true}
def softmax(x, dim=-1):
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "ex01-softmax", "locked": true, "points": 2, "schema_version": 3, "solution": false}
check("ex01.softmax", softmax)

# %% [markdown]
# ## 2. Scaled dot-product attention (4 points)
#
# `scaled_dot_product_attention(q, k, v, mask=None)` computes
# $\operatorname{softmax}(QK^\top/\sqrt{d_k})\,V$ for `q (..., L_q, d_k)`, `k (..., L_k, d_k)`,
# `v (..., L_k, d_v)` and returns `(..., L_q, d_v)`. The optional boolean `mask` broadcasts to
# `(..., L_q, L_k)`; **True means "may attend"**. Use your `softmax` from part 1.

# %% nbgrader={"grade": false, "grade_id": "ex01-scaled_dot_product_attention-answer", "locked": false, "schema_version": 3, "solution": true}
def scaled_dot_product_attention(q, k, v, mask=None):
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "ex01-scaled_dot_product_attention", "locked": true, "points": 4, "schema_version": 3, "solution": false}
check("ex01.scaled_dot_product_attention", scaled_dot_product_attention)

# %% [markdown]
# ## 3. Splitting and merging heads (1 + 1 points)
#
# `split_heads(x, n_heads)` turns `(B, L, h·e)` into `(B, h, L, e)`, where head `i` owns the
# contiguous channels `i·e .. (i+1)·e - 1`. `merge_heads(x)` undoes it: `(B, h, L, e) -> (B, L, h·e)`.

# %% nbgrader={"grade": false, "grade_id": "ex01-split_heads-answer", "locked": false, "schema_version": 3, "solution": true}
def split_heads(x, n_heads):
    # YOUR CODE HERE
    raise NotImplementedError()


def merge_heads(x):
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "ex01-split_heads", "locked": true, "points": 1, "schema_version": 3, "solution": false}
check("ex01.split_heads", split_heads)


# %% nbgrader={"grade": true, "grade_id": "ex01-merge_heads", "locked": true, "points": 1, "schema_version": 3, "solution": false}
check("ex01.merge_heads", merge_heads)

# %% [markdown]
# ## 4. Derivation: Var(q·k) = d_k (2 points)
#
# $q$ and $k$ have independent components with mean 0 and variance 1, so
# $E[q_iq_j] = \delta_{ij}$ and
#
# $$\operatorname{Var}(q\cdot k) = E[(q\cdot k)^2] = \sum_i\sum_j E[q_iq_j]\,E[k_ik_j]
#   = \sum_{i=1}^{d_k}\sum_{j=1}^{d_k}\delta_{ij}^2 .$$
#
# Continue the derivation to $d_k$. Return a list of `(expression, reason)` pairs; the first
# expression follows the one above. Expressions are written like Python/sympy:
# `Sum(f, (i, 1, d_k))`, `KroneckerDelta(i, j)`, `sqrt(d_k)`, `d_k**2`. `vidlearn.derive`
# checks every step and names the first that does not follow.

# %% nbgrader={"grade": false, "grade_id": "ex01-var_qk_steps-answer", "locked": false, "schema_version": 3, "solution": true}
def var_qk_steps():
    # YOUR CODE HERE
    raise NotImplementedError()


# %% nbgrader={"grade": true, "grade_id": "ex01-var_qk", "locked": true, "points": 2, "schema_version": 3, "solution": false}
check("ex01.var_qk", var_qk_steps)
