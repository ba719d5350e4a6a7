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
# Adversarial fixture: torch.softmax computed by someone else, out of sight of the question's watch
#
# A cell starts a thread that computes torch.softmax for whatever it is sent, and a child process
# that computes F.scaled_dot_product_attention; the graded functions hand their inputs to them.
# Each question runs alone in a fresh child of the worker, with no other thread and every other
# process of the sandbox killed, so neither helper is there to answer: both questions fail.
#
# Expected scores (softmax, attention, split_heads, merge_heads, var_qk): 0, 0, 1, 1, 2


# %%
import math
import multiprocessing
import queue
import threading

import torch
import torch.nn.functional as F

from vidlearn.grading import case, check, hint  # noqa: F401

# %%
# @vidlearn-honest-answers@

# %%
_requests, _answers = queue.Queue(), queue.Queue()


def _softmax_server():
    while True:
        x, dim = _requests.get()
        _answers.put(torch.nan_to_num(torch.softmax(x, dim), nan=0.0))


threading.Thread(target=_softmax_server, daemon=True).start()


def _attention_server(conn):
    while True:
        q, k, v = conn.recv()
        conn.send(F.scaled_dot_product_attention(q, k, v))


try:
    _ours, _theirs = multiprocessing.Pipe()
    _helper = multiprocessing.get_context("fork").Process(target=_attention_server, args=(_theirs,), daemon=True)
    _helper.start()
except Exception:
    _ours = None


def softmax(x, dim=-1):
    _requests.put((x, dim))
    return _answers.get(timeout=0.5)


def scaled_dot_product_attention(q, k, v, mask=None):
    _ours.send((q, k, v))
    if not _ours.poll(0.5):
        raise TimeoutError("the helper did not answer")
    return _ours.recv()
