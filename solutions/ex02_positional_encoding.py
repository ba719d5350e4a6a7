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
#     exercise: ex02
# ---

# %% [markdown]
# # Exercise 2 — positional encoding
#
# Companion to [chapter 2](../chapters/02_positional_encoding.py). After each part, run its
# `check(...)` cell: it runs the grader's tests and gives you a hint when something is off
# (`hint("<question id>")` for a more specific one).
#
# Rules: plain PyTorch only, not the `vidlearn` library (`check()` and the grader notice a call to it,
# and the question then scores zero). The grader tests on inputs of its own, not the ones `case()`
# shows. Do not rename the functions.

# %%
import math

import torch

from vidlearn.grading import case, check, hint  # noqa: F401

# %% [markdown]
# ## 1. The sinusoidal encoding (3 points)
#
# `sinusoidal_encoding(n_positions, d_model, base=10000.0)` returns a **float32** tensor
# `(n_positions, d_model)` with
#
# $$PE[p, 2i] = \sin\!\big(p/\text{base}^{2i/d}\big),\qquad PE[p, 2i+1] = \cos\!\big(p/\text{base}^{2i/d}\big).$$
#
# Tip: compute the angles in float64 and convert at the end; `d_model` is even.

# %% nbgrader={"grade": false, "grade_id": "ex02-sinusoidal_encoding-answer", "locked": false, "schema_version": 3, "solution": true}
def sinusoidal_encoding(n_positions, d_model, base=10000.0):
    ### BEGIN SOLUTION
    p = torch.arange(n_positions, dtype=torch.float64)[:, None]
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)
    angles = p / base ** (two_i / d_model)
    pe = torch.zeros(n_positions, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angles)
    pe[:, 1::2] = torch.cos(angles)
    return pe.float()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex02-sinusoidal_encoding", "locked": true, "points": 3, "schema_version": 3, "solution": false}
check("ex02.sinusoidal_encoding", sinusoidal_encoding)

# %% [markdown]
# ## 2. The relative rotation (3 points)
#
# `relative_rotation(k, d_model, base=10000.0)` returns the **float64** matrix $R(k)$,
# `(d_model, d_model)`, with $PE(t+k) = R(k)\,PE(t)$ for every $t$: block-diagonal, one $2\times2$
# rotation per channel pair, acting on the pair $(\sin\omega_i t, \cos\omega_i t)$ with
# $\omega_i = \text{base}^{-2i/d}$. Derive the block from the angle-addition formulas.

# %% nbgrader={"grade": false, "grade_id": "ex02-relative_rotation-answer", "locked": false, "schema_version": 3, "solution": true}
def relative_rotation(k, d_model, base=10000.0):
    ### BEGIN SOLUTION
    R = torch.zeros(d_model, d_model, dtype=torch.float64)
    for i in range(d_model // 2):
        a = k * base ** (-2 * i / d_model)
        c, s = math.cos(a), math.sin(a)
        R[2 * i, 2 * i], R[2 * i, 2 * i + 1] = c, s
        R[2 * i + 1, 2 * i], R[2 * i + 1, 2 * i + 1] = -s, c
    return R
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex02-relative_rotation", "locked": true, "points": 3, "schema_version": 3, "solution": false}
check("ex02.relative_rotation", relative_rotation)

# %% [markdown]
# ## 3. Derivation: PE(t)·PE(t+k) depends only on k (2 points)
#
# Summing over the $d/2$ channel pairs, with $\omega_i = \text{base}^{-2i/d}$ written
# `base**(-2*i/d)`:
#
# $$PE(t)\cdot PE(t+k) = \sum_{i=0}^{d/2-1}\Big(\sin(\omega_i t)\sin(\omega_i(t+k)) + \cos(\omega_i t)\cos(\omega_i(t+k))\Big).$$
#
# Derive $\sum_i \cos(\omega_i k)$. Return a list of `(expression, reason)` pairs, e.g. starting
# with `("Sum(cos(...), (i, 0, d/2 - 1))", "...")`.

# %% nbgrader={"grade": false, "grade_id": "ex02-pe_dot_product_steps-answer", "locked": false, "schema_version": 3, "solution": true}
def pe_dot_product_steps():
    ### BEGIN SOLUTION
    w = "base**(-2*i/d)"
    return [
        (f"Sum(cos({w}*(t + k) - {w}*t), (i, 0, d/2 - 1))", "cos a cos b + sin a sin b = cos(a - b)"),
        (f"Sum(cos({w}*k), (i, 0, d/2 - 1))", "t cancels"),
    ]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex02-pe_dot_product", "locked": true, "points": 2, "schema_version": 3, "solution": false}
check("ex02.pe_dot_product", pe_dot_product_steps)
