"""Calling a student's function on test inputs, one case at a time, without trusting it.

Used on both sides: in the notebook (``check``) and inside the grader's sandbox. Every call runs
under a :class:`~vidlearn.grading.forbidden.Guard` for what its question forbids, and every result
is passed through the wire encoding and back, so what is scored is always a plain value (a tensor
subclass with a rigged ``__eq__`` becomes an ordinary tensor of its data).

A result is ``("ok", value)``, ``("error", "ExceptionType: message")`` or ``("forbidden", reason)``.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from vidlearn.grading import wire
from vidlearn.grading.forbidden import Guard

__all__ = ["call_each", "call_one"]


def call_one(fn: Callable, args, kwargs, forbids: Iterable[str] = (), *, watch_library: bool = True,
             guard: Guard | None = None):
    """``(status, payload)`` with the value wire-encoded; never raises (but KeyboardInterrupt).

    ``guard``: one already in force (the grader's worker keeps one per question, across its calls);
    otherwise one for ``forbids`` is put in force for this call.
    """
    if guard is None:
        with Guard(forbids, watch_library=watch_library) as own:
            return call_one(fn, args, kwargs, guard=own)
    guard.violation = None
    try:
        try:
            value = fn(*args, **kwargs)
        finally:
            guard.verify()
        if guard.violation:
            return "forbidden", guard.violation
        return "ok", wire.encode(value)
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # SystemExit and friends are answers too: wrong ones
        if guard.violation:
            return "forbidden", guard.violation
        text = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        return "error", text[:500]


def call_each(fn: Callable, calls: list[tuple[tuple, dict]], forbids: Iterable[str] = ()) -> list[tuple[str, Any]]:
    """Results for every ``(args, kwargs)``, decoded to plain values (in the student's own process)."""
    out = []
    for args, kwargs in calls:
        status, payload = call_one(fn, args, kwargs, forbids)
        if status == "ok":
            try:
                out.append(("ok", wire.decode(payload)))
            except wire.WireError as err:
                out.append(("error", f"returned a value that cannot be read: {err}"))
        else:
            out.append((status, payload))
    return out
