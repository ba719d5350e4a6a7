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
# Adversarial fixture: a derivation step that makes the checker do hours of exact arithmetic
#
# 0*3**(d_k - d_k + 32000001) is 0, but sympy works out 3**32000001 in C first, where no signal
# reaches. The grader checks derivations in a bounded child process: this one runs out of time or
# memory there and scores zero ("too large"), and nothing else waits on it for long.
#
# Expected scores (softmax, attention, split_heads, merge_heads, var_qk): 2, 4, 1, 1, 0


# %%
import math

import torch

from vidlearn.grading import case, check, hint  # noqa: F401

# %%
# @vidlearn-honest-answers@


# %%
def var_qk_steps():
    return [("Sum(1, (i, 1, d_k))", "only the diagonal"), ("d_k + 0*3**(d_k - d_k + 32000001)", "add nothing"),
            ("d_k", "tidy")]
