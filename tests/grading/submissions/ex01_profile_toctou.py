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
# Adversarial fixture: disarming the guard with a profile hook timed to the worker's own checks
#
# A profile hook waits for the worker's tamper check to return, then replaces the guard's
# constructor by one that forbids nothing, and removes itself. The worker's audit hook refuses
# sys.setprofile once the process is sealed, and torch.softmax does not work there anyway.
#
# Expected scores (softmax, attention, split_heads, merge_heads, var_qk): 0, 0, 1, 1, 2


# %%
import math
import os
import sys

import torch
import torch.nn.functional as F

from vidlearn.grading import case, check, hint  # noqa: F401

# %%
# @vidlearn-honest-answers@


# %%
def softmax(x, dim=-1):
    return torch.nan_to_num(torch.softmax(x, dim), nan=0.0)


def scaled_dot_product_attention(q, k, v, mask=None):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def _hook(frame, event, arg):
    if event == "return" and frame.f_code.co_name == "_tampered":
        from vidlearn.grading.forbidden import Guard

        original = Guard.__init__
        Guard.__init__ = lambda self, names, **kw: original(self, (), **kw)
        sys.setprofile(None)


if os.environ.get("VIDLEARN_GRADING_SANDBOXED") == "1":
    sys.setprofile(_hook)
