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
# Adversarial fixture: taking over the worker's side of the protocol
#
# The last cell walks up the stack to the worker's main loop, takes the descriptors it talks to the
# grader on, says "ready" itself and answers every question with its own loop, where no guard
# runs: softmax and attention are torch's. But the worker sealed its process before the first cell:
# torch.softmax and F.scaled_dot_product_attention do not work in it at all, forged replies or not.
# The honest answers its loop sends count.
#
# Expected scores (softmax, attention, split_heads, merge_heads, var_qk): 0, 0, 1, 1, 2


# %%
import math
import sys

import torch
import torch.nn.functional as F

from vidlearn.grading import case, check, hint  # noqa: F401

# %%
# @vidlearn-honest-answers@


# %%
def softmax(x, dim=-1):
    return torch.nan_to_num(torch.softmax(x, dim), nan=0.0)


def scaled_dot_product_attention(q, k, v, mask=None):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


# %%
def _take_over():
    frame = sys._getframe()
    while frame is not None and not ("inp" in frame.f_locals and "out" in frame.f_locals):
        frame = frame.f_back
    if frame is None:
        return  # not in the grader (a student's own run)
    from vidlearn.grading import wire

    inp, out = frame.f_locals["inp"], frame.f_locals["out"]
    wire.write_frame(out, {"event": "ready", "errors": {}})
    while True:
        msg = wire.read_frame(inp)
        if msg is None or msg.get("cmd") != "call":
            sys.exit(0)
        fn = globals()[msg["name"]]
        results = []
        for args, kwargs in msg["calls"]:
            try:
                value = fn(*[wire.decode(a) for a in args], **{k: wire.decode(v) for k, v in kwargs.items()})
                results.append(["ok", wire.encode(value)])
            except Exception as err:
                results.append(["error", f"{type(err).__name__}: {err}"])
        wire.write_frame(out, {"event": "results", "results": results})


_take_over()
