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
# Adversarial fixture: torch's own softmax and attention, which exercise 1 asks you to write
#
# softmax is torch.softmax (with the all -inf row patched to zeros, so it would pass every case);
# attention is F.scaled_dot_product_attention on a float mask. Both questions score zero, with the
# reason; the honest rest counts.
#
# Expected scores (softmax, attention, split_heads, merge_heads, var_qk): 0, 0, 1, 1, 2


# %%
import math

import torch
import torch.nn.functional as F

from vidlearn.grading import case, check, hint  # noqa: F401

# %%
# @vidlearn-honest-answers@


# %%
def softmax(x, dim=-1):
    return torch.nan_to_num(torch.softmax(x, dim), nan=0.0)


def scaled_dot_product_attention(q, k, v, mask=None):
    if mask is not None:
        blocked = ~mask.any(-1, keepdim=True)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask | blocked)
        return out.masked_fill(blocked, 0.0)
    return F.scaled_dot_product_attention(q, k, v)
