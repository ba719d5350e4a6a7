"""Calling a student's function on test inputs, one case at a time, without trusting it.

Used on both sides: in the notebook (``check``) and inside the grader's sandbox. Every
result is passed through the wire encoding and back, so what is scored is always a plain
value (a tensor subclass with a rigged ``__eq__`` becomes an ordinary tensor of its data).
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from vidlearn.grading import wire

__all__ = ["call_each", "call_one"]


def _clone(x):
    if isinstance(x, torch.Tensor):
        return x.clone()
    if isinstance(x, (list, tuple)):
        return type(x)(_clone(i) for i in x)
    if isinstance(x, dict):
        return {k: _clone(v) for k, v in x.items()}
    return x


def call_one(fn: Callable, args, kwargs) -> tuple[str, dict | str]:
    """``("ok", encoded value)`` or ``("error", "ExceptionType: message")``; never raises."""
    try:
        value = fn(*args, **kwargs)
        return "ok", wire.encode(value)
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # SystemExit and friends are answers too: wrong ones
        text = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        return "error", text[:500]


def call_each(fn: Callable, calls: list[tuple[tuple, dict]], *, clone: bool = False) -> list[tuple[str, Any]]:
    """Results for every ``(args, kwargs)``, decoded to plain values (in-process use)."""
    out = []
    for args, kwargs in calls:
        if clone:  # the student's code may modify its inputs in place
            args, kwargs = _clone(args), _clone(kwargs)
        status, payload = call_one(fn, args, kwargs)
        if status == "ok":
            try:
                out.append(("ok", wire.decode(payload)))
            except wire.WireError as err:
                out.append(("error", f"returned a value that cannot be read: {err}"))
        else:
            out.append((status, payload))
    return out
