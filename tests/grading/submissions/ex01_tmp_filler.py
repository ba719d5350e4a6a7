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
# Adversarial fixture: filling the sandbox's /tmp
#
# Writes 15 MiB files into /tmp until it fails (file size, memory or space limit), then cleans
# up after itself. The sandbox's /tmp is private: nothing may appear in the real /tmp.
#
# Expected scores (softmax, attention, split_heads, merge_heads, var_qk): 2, 4, 1, 1, 2 (all honest answers count)


# %%
import math

import torch

from vidlearn.grading import case, check, hint  # noqa: F401


# %%
# The test harness replaces the next line with the run's settings (ports, paths, tokens).
CONFIG = {}  # @vidlearn-test-config@


# %%
import os

_written = []
try:
    for _i in range(2000):
        _path = f"/tmp/filler_{CONFIG.get('token', 'none')}_{_i}"
        with open(_path, "wb") as _f:
            _f.write(b"\0" * (15 << 20))
        _written.append(_path)
except OSError:
    pass
finally:
    for _path in _written:
        os.remove(_path)


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
