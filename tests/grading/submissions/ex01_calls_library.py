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
# Adversarial fixture: full marks for no work, from the course itself
#
# Every function delegates to the course library (`vidlearn.attention`) or to the grader's own
# question bank (`get_question(...).reference`), and one of them catches the failure and falls back
# to an honest answer. In the sandbox the library and the bank are absent (their modules are
# tripwires); in check() the library is watched. Either way each such question scores zero.
#
# Expected scores (softmax, attention, split_heads, merge_heads, var_qk): 0, 0, 0, 0, 2


# %%
import math

import torch

from vidlearn.grading import case, check, hint  # noqa: F401

# %%
# @vidlearn-honest-answers@

# %%
import vidlearn.attention as library
from vidlearn.grading.questions import get_question

_honest_merge = merge_heads  # noqa: F821 (from the honest answers above)


def softmax(x, dim=-1):
    return library.softmax(x, dim)


def scaled_dot_product_attention(q, k, v, mask=None):
    return get_question("ex01.scaled_dot_product_attention").reference(q, k, v, mask)


def split_heads(x, n_heads):
    from vidlearn.attention import split_heads as theirs

    return theirs(x, n_heads)


def merge_heads(x):
    try:
        return library.merge_heads(x)
    except Exception:  # caught: the call is still on record
        return _honest_merge(x)
