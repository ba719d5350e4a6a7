# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   vidlearn:
#     exercise: ex01
# ---

# %% [markdown]
# Adversarial fixture: os._exit, KeyboardInterrupt and sys.exit inside functions
#
# split_heads kills its process (os._exit), merge_heads raises KeyboardInterrupt (the worker
# lets it through and dies), var_qk_steps calls sys.exit(0) (an answer that is an exception).
#
# Expected scores (softmax, attention, split_heads, merge_heads, var_qk): 2, 4, 0, 0, 0


# %%
import math

import torch

from vidlearn.grading import case, check, hint  # noqa: F401


# %%
def softmax(x, dim=-1):
    m = x.amax(dim=dim, keepdim=True)
    m = torch.where(m == float("-inf"), torch.zeros_like(m), m)
    e = torch.exp(x - m)
    s = e.sum(dim=dim, keepdim=True)
    return e / torch.where(s == 0, torch.ones_like(s), s)


# %%
check("ex01.softmax", softmax)


# %%
def scaled_dot_product_attention(q, k, v, mask=None):
    logits = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
    return softmax(logits, dim=-1) @ v


# %%
check("ex01.scaled_dot_product_attention", scaled_dot_product_attention)


# %%
import os
import sys


def split_heads(x, n_heads):
    os._exit(0)


def merge_heads(x):
    raise KeyboardInterrupt


# %%
check("ex01.split_heads", split_heads)
check("ex01.merge_heads", merge_heads)


# %%
def var_qk_steps():
    sys.exit(0)


# %%
check("ex01.var_qk", var_qk_steps)
