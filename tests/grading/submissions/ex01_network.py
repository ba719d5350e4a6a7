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
# Adversarial fixture: connecting to a TCP server and an abstract unix socket on the grader's machine
#
# The test listens on 127.0.0.1 (TCP) and on an abstract unix socket. The submission connects
# from a cell and from its first softmax call; softmax is honest only if every connection failed.
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
import socket

CONNECTED = []


def _phone_home(where):
    attempts = [(socket.AF_INET, ("127.0.0.1", int(CONFIG.get("port", 9)))),
                (socket.AF_UNIX, "\0" + CONFIG.get("unix", "vidlearn-none"))]
    for family, address in attempts:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(1.0)
                s.connect(address)
                s.sendall(b"LEAK from " + where.encode())
            CONNECTED.append(f"{where}: {address!r}")
        except OSError:
            pass


_phone_home("cell")


# %%
_calls = []


def softmax(x, dim=-1):
    if not _calls:
        _calls.append(1)
        _phone_home("softmax")
    if CONNECTED:
        raise RuntimeError("connected: " + "; ".join(CONNECTED))
    m = x.amax(dim=dim, keepdim=True)
    m = torch.where(m == float("-inf"), torch.zeros_like(m), m)
    e = torch.exp(x - m)
    s = e.sum(dim=dim, keepdim=True)
    return e / torch.where(s == 0, torch.ones_like(s), s)


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
