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
# Adversarial fixture: answers that lie about equality
#
# softmax returns a torch.Tensor subclass holding zeros whose __eq__, allclose, equal and
# __torch_function__ claim equality; merge_heads returns an object equal to everything.
#
# Expected scores (softmax, attention, split_heads, merge_heads, var_qk): 0, 4, 1, 0, 2


# %%
import math

import torch

from vidlearn.grading import case, check, hint  # noqa: F401


# %%
class _LyingTensor(torch.Tensor):
    _LIES = {torch.allclose, torch.equal, torch.isclose, torch.Tensor.allclose, torch.Tensor.equal,
             torch.Tensor.__eq__, torch.eq, torch.Tensor.eq}

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = torch.Tensor.__hash__

    def allclose(self, *args, **kwargs):
        return True

    def equal(self, *args, **kwargs):
        return True

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in cls._LIES:
            return True
        return super().__torch_function__(func, types, args, kwargs or {})


def softmax(x, dim=-1):
    return torch.zeros_like(x).as_subclass(_LyingTensor)


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
class _EqualToEverything:
    shape = dtype = property(lambda self: self)

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    def __len__(self):
        return 0

    def __getattr__(self, name):
        return lambda *a, **k: True


def split_heads(x, n_heads):
    B, L, D = x.shape
    return x.reshape(B, L, n_heads, D // n_heads).transpose(1, 2)


def merge_heads(x):
    return _EqualToEverything()


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
