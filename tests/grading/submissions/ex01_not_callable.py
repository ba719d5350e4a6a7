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
# Adversarial fixture: the answers are not functions
#
# Expected scores (softmax, attention, split_heads, merge_heads, var_qk): 0, 0, 0, 0, 0


# %%
import math

import torch

from vidlearn.grading import case, check, hint  # noqa: F401


# %%
softmax = 42


# %%
check("ex01.softmax", softmax)


# %%
scaled_dot_product_attention = "softmax(q k^T / sqrt(d)) v"


# %%
check("ex01.scaled_dot_product_attention", scaled_dot_product_attention)


# %%
split_heads = None
merge_heads = [1, 2, 3]


# %%
check("ex01.split_heads", split_heads)
check("ex01.merge_heads", merge_heads)


# %%
var_qk_steps = torch.zeros(3)


# %%
check("ex01.var_qk", var_qk_steps)
