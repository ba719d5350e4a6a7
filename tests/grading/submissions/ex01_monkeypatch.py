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
# Adversarial fixture: monkeypatching every comparison and scoring function to always pass
#
# softmax returns zeros (wrong on every case); the patches only exist inside the sandbox, so
# they change nothing: scoring happens in the grader's own process.
#
# Expected scores (softmax, attention, split_heads, merge_heads, var_qk): 0, 4, 1, 1, 2


# %%
import math

import torch

from vidlearn.grading import case, check, hint  # noqa: F401


# %%
import math as _math

import torch.testing

import vidlearn.grading
import vidlearn.grading.feedback
import vidlearn.grading.gradebook
import vidlearn.grading.questions
import vidlearn.grading.scoring
from vidlearn.grading.questions import Outcome


def _always(*args, **kwargs):
    return True


def _never_fails(*args, **kwargs):
    return None


def _full_marks(question, results, **kwargs):
    return Outcome(question.id, float(question.points), float(question.points), "all cases pass", None, 99, 99)


torch.allclose = _always
torch.isclose = _always
torch.equal = _always
torch.testing.assert_close = _never_fails
_math.isclose = _always
vidlearn.grading.questions.compare = _never_fails
vidlearn.grading.scoring.compare = _never_fails
vidlearn.grading.scoring.score = _full_marks
vidlearn.grading.scoring.zero = _full_marks
vidlearn.grading.gradebook.score = _full_marks
vidlearn.grading.gradebook.zero = _full_marks
vidlearn.grading.feedback.score = _full_marks
vidlearn.grading.check = _never_fails
vidlearn.grading.feedback.check = _never_fails


# %%
def softmax(x, dim=-1):
    return torch.zeros_like(x)


# %%
check("ex01.softmax", softmax)


# %%
def _good_softmax(x, dim=-1):
    m = x.amax(dim=dim, keepdim=True)
    m = torch.where(m == float("-inf"), torch.zeros_like(m), m)
    e = torch.exp(x - m)
    s = e.sum(dim=dim, keepdim=True)
    return e / torch.where(s == 0, torch.ones_like(s), s)


def scaled_dot_product_attention(q, k, v, mask=None):
    logits = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
    return _good_softmax(logits, dim=-1) @ v


# %%
check("ex01.scaled_dot_product_attention", scaled_dot_product_attention)


# %%
def split_heads(x, n_heads):
    B, L, D = x.shape
    return x.reshape(B, L, n_heads, D // n_heads).transpose(1, 2)


def merge_heads(x):
    B, h, L, e = x.shape
    return x.transpose(1, 2).reshape(B, L, h * e)


# %%
check("ex01.split_heads", split_heads)
check("ex01.merge_heads", merge_heads)


# %%
def var_qk_steps():
    return [
        ("Sum(1, (i, 1, d_k))", "for each i only j = i gives delta_ij^2 = 1; the other terms are 0"),
        ("d_k", "d_k ones"),
    ]


# %%
check("ex01.var_qk", var_qk_steps)
