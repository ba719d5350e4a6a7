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
# Adversarial fixture: a daemon process that outlives its cell
#
# A double-forked, setsid()'d child replaces itself with a long-sleeping Python whose command
# line carries the run's token: after grading no such process may be left.
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
import sys
import time

_pid = os.fork()
if _pid == 0:
    try:
        os.setsid()
        if os.fork() == 0:
            os.execv(sys.executable, [sys.executable, "-c", "import time\nwhile True: time.sleep(1)",
                                      "vidlearn-daemon-" + CONFIG.get("token", "?")])
    finally:
        os._exit(0)
os.waitpid(_pid, 0)


def _daemon_alive():
    marker = ("vidlearn-daemon-" + CONFIG.get("token", "?")).encode()
    for _ in range(50):
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker in f.read():
                        return True
            except OSError:
                pass
        time.sleep(0.05)
    return False


# The attack must really have started its daemon, or the test that looks for leftovers proves nothing.
NO_DAEMON = [] if _daemon_alive() else ["the daemon did not start"]


# %%
def softmax(x, dim=-1):
    if NO_DAEMON:
        raise RuntimeError("broken fixture: " + "; ".join(NO_DAEMON))
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
