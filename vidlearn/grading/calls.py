"""Calling a student's function on test inputs, one case at a time, without trusting it.

Used on both sides: in the notebook (``check``) and inside the grader's sandbox. Every call runs
under a :class:`~vidlearn.grading.forbidden.Guard` for what its question forbids, and every result
is passed through the wire encoding and back, so what is scored is always a plain value (a tensor
subclass with a rigged ``__eq__`` becomes an ordinary tensor of its data).

A result is ``("ok", value)``, ``("error", "ExceptionType: message")`` or ``("forbidden", reason)``.

A differentiable question's arguments require grad (``FunctionQuestion.differentiable``); then the call
runs with grad enabled, and its result (a floating tensor) comes back with its gradient with respect to
those arguments (``"grads"``, computed here, under the question's guard), or with why it has none or
why it cannot be used (``"flaw"``: cut from the graph, or an argument changed in place).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from vidlearn.grading import wire
from vidlearn.grading.forbidden import Guard

__all__ = ["call_each", "call_one", "grad_inputs", "NO_GRADIENT", "CHANGED_INPUT"]

NO_GRADIENT = ("your result has no gradient path to its inputs: .item(), .detach(), torch.tensor(...), a new tensor "
               "or torch.no_grad() cut it, so no model could be trained on it. Compute it from the inputs with "
               "torch operations all the way")
CHANGED_INPUT = ("your function changed its input tensors in place (e.g. video /= video.norm(...)), overwriting the "
                 "caller's embeddings: compute on new tensors instead (video = video / video.norm(...))")


def grad_inputs(args, kwargs) -> list:
    """The arguments that require grad: a differentiable question's floating tensors."""
    import torch

    return [a for a in [*args, *kwargs.values()] if isinstance(a, torch.Tensor) and a.requires_grad]


def _unchanged(before: list, after: list) -> bool:
    import torch

    return all(a.shape == b.shape and a.dtype == b.dtype
               and (torch.equal(a, b) or a.is_floating_point() and torch.equal(a.isnan(), b.isnan())
                    and torch.equal(a.nan_to_num(0.0), b.nan_to_num(0.0)))  # NaN where it was is no change
               for a, b in zip(before, after))


def call_one(fn: Callable, args, kwargs, forbids: Iterable[str] = (), *, watch_library: bool = True,
             guard: Guard | None = None):
    """``(status, payload)`` with the value wire-encoded; never raises (but KeyboardInterrupt).

    ``guard``: one already in force (the grader's worker keeps one per question, across its calls);
    otherwise one for ``forbids`` is put in force for this call.
    """
    if guard is None:
        with Guard(forbids, watch_library=watch_library) as own:
            return call_one(fn, args, kwargs, guard=own)
    inputs = grad_inputs(args, kwargs)  # before the call: the student's code cannot take it back
    if inputs:
        import torch

        tensors = [a for a in [*args, *kwargs.values()] if isinstance(a, torch.Tensor)]
        before = [a.detach().clone() for a in tensors]
    guard.violation = None  # (the frames above were the grader's own, watched or not)
    try:
        try:
            if inputs:
                with torch.enable_grad():  # a notebook's global torch.set_grad_enabled(False) is not the answer's
                    value = fn(*args, **kwargs)
                    # the gradient, here and under the guard (backward hooks and autograd Functions are student
                    # code), written out inline: the guard reports any frame of the course library that runs
                    # while it watches, and a comprehension is a frame
                    grads = NO_GRADIENT
                    if isinstance(value, torch.Tensor):
                        t = torch.Tensor.as_subclass(value, torch.Tensor)
                        if t.dtype.is_floating_point and t.requires_grad and t.grad_fn is not None:
                            try:
                                grads = torch.autograd.grad(t, inputs, grad_outputs=torch.ones_like(t),
                                                            allow_unused=True)
                            except RuntimeError as err:  # an input's requires_grad switched off, a graph freed
                                grads = f"{NO_GRADIENT} ({type(err).__name__}: {err})"[:400]
            else:
                value = fn(*args, **kwargs)
        finally:
            guard.verify()
        if guard.violation:
            return "forbidden", guard.violation
        if not inputs:
            return "ok", wire.encode(value)
        node = wire.encode(value, grad=False)
        if not isinstance(grads, str):
            if all(g is None for g in grads):  # a graph, but not to the inputs (a fresh leaf times 1)
                grads = NO_GRADIENT
            else:  # an input the result does not depend on: a zero gradient
                grads = [wire.encode(torch.zeros_like(x) if g is None else g, grad=False) for x, g in zip(inputs, grads)]
        if not _unchanged(before, [a.detach() for a in tensors]):
            grads = CHANGED_INPUT
        if node.get("t") == "tensor":
            node["flaw" if isinstance(grads, str) else "grads"] = grads
        return "ok", node
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # SystemExit and friends are answers too: wrong ones
        if guard.violation:
            return "forbidden", guard.violation
        text = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        if inputs and "leaf Variable that requires grad" in text:
            text = (f"{text} (you changed an input tensor in place, e.g. video /= video.norm(...): compute on new "
                    f"tensors instead, video = video / video.norm(...))")
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
