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
#     exercise: ex03
# ---

# %% [markdown]
# # Exercise 3 — temporal attention
#
# Companion to [chapter 3](../chapters/03_masks_and_temporal_attention.py). After each part run its
# `check(...)` cell; `hint("<question id>")` gives a more specific hint, `case("<question id>", n)`
# the inputs of a failing case.
#
# Rules: plain PyTorch (`torch.tril`, `torch.cat`, `torch.softmax`, `@`, ...), not
# `F.scaled_dot_product_attention`, `nn.MultiheadAttention` or the `vidlearn` library (`check()` and
# the grader notice such a call, and the question then scores zero). The grader tests on inputs of
# its own, not the ones `case()` shows. Do not rename the functions.

# %%
import math

import torch

from vidlearn.grading import case, check, hint  # noqa: F401

# %% [markdown]
# ## 1. The causal mask (1 point)
#
# `causal_mask(T)` returns a `(T, T)` **boolean** tensor: entry `[t, s]` is True when query frame `t`
# may attend to key frame `s`, i.e. when `s <= t` (a frame sees itself and the past).

# %% nbgrader={"grade": false, "grade_id": "ex03-causal_mask-answer", "locked": false, "schema_version": 3, "solution": true}
def causal_mask(T):
    ### BEGIN SOLUTION
    return torch.ones(T, T, dtype=torch.bool).tril()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex03-causal_mask", "locked": true, "points": 1, "schema_version": 3, "solution": false}
check("ex03.causal_mask", causal_mask)

# %% [markdown]
# ## 2. Causal attention (3 points)
#
# `causal_attention(q, k, v)` for `q, k (..., T, d_k)`, `v (..., T, d_v)`: scaled dot-product
# attention in which frame `t` only attends to frames `s <= t`. Returns `(..., T, d_v)`.

# %% nbgrader={"grade": false, "grade_id": "ex03-causal_attention-answer", "locked": false, "schema_version": 3, "solution": true}
def causal_attention(q, k, v):
    ### BEGIN SOLUTION
    T = q.shape[-2]
    logits = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    logits = logits.masked_fill(~causal_mask(T), float("-inf"))
    return torch.softmax(logits, dim=-1) @ v
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex03-causal_attention", "locked": true, "points": 3, "schema_version": 3, "solution": false}
check("ex03.causal_attention", causal_attention)

# %% [markdown]
# ## 3. One step with a key/value cache (3 points)
#
# Frames arrive one at a time. `kv_cache_step(q_t, k_t, v_t, cache_k, cache_v)` gets the new frame's
# query, key and value, each `(B, 1, d)`, and the keys and values of the earlier frames,
# `(B, t, d)` (t may be 0). It returns `(out_t, new_cache_k, new_cache_v)`: the new frame's attention
# output `(B, 1, d_v)` over all frames so far, itself included, and the caches with the new frame
# appended as the latest, `(B, t + 1, d)`.

# %% nbgrader={"grade": false, "grade_id": "ex03-kv_cache_step-answer", "locked": false, "schema_version": 3, "solution": true}
def kv_cache_step(q_t, k_t, v_t, cache_k, cache_v):
    ### BEGIN SOLUTION
    k = torch.cat([cache_k, k_t], dim=-2)
    v = torch.cat([cache_v, v_t], dim=-2)
    weights = torch.softmax(q_t @ k.transpose(-2, -1) / math.sqrt(q_t.shape[-1]), dim=-1)
    return weights @ v, k, v
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex03-kv_cache_step", "locked": true, "points": 3, "schema_version": 3, "solution": false}
check("ex03.kv_cache_step", kv_cache_step)

# %% [markdown]
# ## 4. Derivation: how many pairs does a causal mask keep? (2 points)
#
# For $T$ frames, the number of (query $t$, key $s$) pairs with $s \le t$ is
# $\sum_{t=1}^{T}\sum_{s=1}^{t} 1$, written `Sum(Sum(1, (s, 1, t)), (t, 1, T))`. Derive a closed form,
# in at least two steps, each with its reason.

# %% nbgrader={"grade": false, "grade_id": "ex03-causal_pairs_steps-answer", "locked": false, "schema_version": 3, "solution": true}
def causal_pairs_steps():
    ### BEGIN SOLUTION
    return [
        ("Sum(t, (t, 1, T))", "frame t may attend to the t frames 1 .. t"),
        ("T*(T + 1)/2", "arithmetic series 1 + 2 + ... + T"),
    ]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex03-causal_pairs", "locked": true, "points": 2, "schema_version": 3, "solution": false}
check("ex03.causal_pairs", causal_pairs_steps)
