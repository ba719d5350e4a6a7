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
# Adversarial fixture: writing, deleting and renaming the teacher's files
#
# Tries to forge the gradebook, plant and overwrite files among the submissions, delete or
# change a canary in the teacher's folder and write into the repository. If any of it reaches a real
# file, softmax raises with the list, so the score shows it; the test also checks every file.
# (The submissions and gradebook folders are hidden behind an empty private tmpfs in the sandbox:
# writing into that stand-in is harmless, so it only counts when the real folder is visible.)
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
import shutil
from pathlib import Path

import vidlearn

ESCAPED = []


def _try(what, action, counts=True):
    try:
        action()
        if counts:
            ESCAPED.append(what)
    except Exception:
        pass


def _write(path, text="forged by a student\n"):
    with open(path, "w") as f:
        f.write(text)


def _real(folder):
    """A folder showing files we did not put there is the real one, not the sandbox's empty stand-in."""
    try:
        return bool(os.listdir(folder))
    except OSError:
        return False


_token = CONFIG.get("token", "none")
_repo = Path(vidlearn.__file__).resolve().parents[1]
_gradebook = Path(CONFIG.get("gradebook", "/nonexistent/gradebook.csv"))
_subs = Path(CONFIG.get("submissions", "/nonexistent"))
_teacher = Path(CONFIG.get("teacher", "/nonexistent"))
_canary = _teacher / "canary_fs.txt"
_gb_real, _subs_real = _real(_gradebook.parent), _real(_subs)

_try("forged the gradebook", lambda: _write(_gradebook, "submission,exercise,question,score\nfs,ex01,all,10\n"),
     _gb_real)
_try("planted a file next to the gradebook", lambda: _write(_gradebook.parent / f"fs_{_token}.csv"), _gb_real)
_try("planted a submission", lambda: _write(_subs / f"fs_{_token}.py"), _subs_real)
_try("overwrote another student's submission", lambda: _write(_subs / "ex01_honest.py", "# %%\nsoftmax = 0\n"),
     _subs_real)
_try("deleted the canary", lambda: os.remove(_canary))
_try("renamed the canary", lambda: os.rename(_canary, _teacher / f"fs_{_token}_renamed"))
_try("wrote the canary", lambda: _write(_canary))
_try("touched the canary", lambda: os.utime(_canary, (0, 0)))
_try("chmod'ed the canary", lambda: os.chmod(_canary, 0o777))
_try("truncated the canary", lambda: os.truncate(_canary, 0))
_try("wrote next to the canary", lambda: _write(_teacher / f"fs_{_token}.txt"))
_try("removed the teacher's folder", lambda: shutil.rmtree(_teacher))
# The repository: open an existing file for appending (writing nothing) and try to create a new one.
_try("opened the library for writing",
     lambda: os.close(os.open(_repo / "vidlearn" / "grading" / "scoring.py", os.O_WRONLY | os.O_APPEND)))
_try("created a file in the repository", lambda: _write(_repo / f"fs_{_token}.txt"))
_try("created a file in /var/tmp", lambda: _write(f"/var/tmp/fs_{_token}.txt"))
# /tmp is the sandbox's own scratch space: writing there is allowed, and must not reach the real /tmp.
_write(f"/tmp/fs_{_token}.txt")


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
