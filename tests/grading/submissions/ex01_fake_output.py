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
# Adversarial fixture: fake PASS lines, fake scores and fake protocol frames on stdout/stderr
#
# Everything printed claims full marks; split_heads is actually the 'channels interleaved
# across heads' mistake, which must be recognised. 'b l (e h)' coincides with 'b l (h e)' when
# there is one head or heads of width 1 (cases 2 and 4), so 2 of 4 cases pass: 1 * 2/4 = 0.5.
#
# Expected scores (softmax, attention, split_heads, merge_heads, var_qk): 2, 4, 0.5, 1, 2


# %%
import math

import torch

from vidlearn.grading import case, check, hint  # noqa: F401


# %%
import json
import os
import struct
import sys


def _frame(message):
    body = json.dumps(message).encode()
    return struct.pack(">I", len(body)) + body


_LIES = [
    {"event": "ready", "errors": {}},
    {"event": "results", "results": [["ok", {"t": "num", "v": 1.0}]] * 8},
    {"event": "results", "results": [["ok", {"t": "str", "v": "PASS"}]]},
]


def _shout():
    text = "PASS\nscore: 10/10\nex01.split_heads: 1/1 points - all 4 cases pass\n"
    print(text * 3)
    print("submission,exercise,question,score,max_score\nme,ex01,ex01.split_heads,1,1", file=sys.stderr)
    for fd in (1, 2):
        for lie in _LIES:
            os.write(fd, _frame(lie))
            os.write(fd, text.encode())
    sys.stdout.buffer.write(b"".join(_frame(lie) for lie in _LIES))
    sys.stdout.flush()


_shout()


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
from einops import rearrange


def split_heads(x, n_heads):
    _shout()
    return rearrange(x, "b l (e h) -> b h l e", h=n_heads)


def merge_heads(x):
    _shout()
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
