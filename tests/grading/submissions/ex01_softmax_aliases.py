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
# Adversarial fixture: softmax by its other names
#
# softmax goes through ATen directly (torch.ops.aten._softmax) and attention takes a log-softmax and
# exponentiates it, both from inside a with-block that switches off torch's function modes (which
# the grader's function-level watch uses): the kernels the grader registers still see them.
#
# Expected scores (softmax, attention, split_heads, merge_heads, var_qk): 0, 0, 1, 1, 2


# %%
import math

import torch
from torch.overrides import _pop_mode_temporarily

from vidlearn.grading import case, check, hint  # noqa: F401

# %%
# @vidlearn-honest-answers@


# %%
def _unwatched(fn):
    try:
        with _pop_mode_temporarily():
            return fn()
    except Exception:  # no mode to pop outside the grader: just call it
        return fn()


def softmax(x, dim=-1):
    out = _unwatched(lambda: torch.ops.aten._softmax(x, dim, False))
    return torch.nan_to_num(out, nan=0.0)


def scaled_dot_product_attention(q, k, v, mask=None):
    logits = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
    weights = _unwatched(lambda: torch.log_softmax(logits, -1).exp())
    return torch.nan_to_num(weights, nan=0.0) @ v
