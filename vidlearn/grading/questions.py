"""The question bank: what each exercise asks, how it is tested, and the mistakes we recognise.

A question is either

* a **function** question: the student writes a function; it is called on deterministic test
  cases and its outputs are compared with the reference's; or
* a **derivation** question: the student writes a function returning a list of
  ``(expression, reason)`` steps from a given start to a given target; every step is checked
  by :mod:`vidlearn.derive`.

Known misconceptions are data: a wrong-but-plausible implementation (or expression) with
hints in tiers, nudge first. A failing answer that behaves exactly like a misconception gets
its hints.

Everything here runs on the trusted side: the student's code is never imported or called by
this module; it only sees plain values (tensors, numbers, strings) that the student's code
produced.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import math
import random
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from vidlearn.derive.milestone import Milestone
from vidlearn.grading.forbidden import LIBRARY, _validate
from vidlearn.grading.wire import FLAW, GRADS
from vidlearn.misconception import Misconception

__all__ = [
    "Case",
    "Misconception",
    "Milestone",
    "FunctionQuestion",
    "DerivationQuestion",
    "Outcome",
    "REGISTRY",
    "register",
    "get_question",
    "questions_for",
    "exercises",
    "compare",
    "seeded",
    "pick",
    "hidden",
]


@dataclass(frozen=True)
class Case:
    """One test input: ``fn(*args, **kwargs)``, described by ``label`` in feedback."""

    args: tuple
    kwargs: dict = field(default_factory=dict)
    label: str = ""


@dataclass
class Outcome:
    """The grade of one question for one submission."""

    question: str
    score: float
    max_score: float
    feedback: str
    misconception: str | None = None
    passed: int = 0
    total: int = 0
    failed_case: int | None = None


@dataclass(frozen=True)
class FunctionQuestion:
    id: str
    name: str
    points: float
    reference: Callable
    make_cases: Callable[[], list[Case]]
    misconceptions: tuple[Misconception, ...] = ()
    hints: tuple[str, ...] = ()
    atol: float = 1e-8
    rtol: float = 1e-6
    # what the student's function may not call (forbidden.CATALOGUE names, or "vidlearn.*")
    forbids: tuple[str, ...] = (LIBRARY,)
    kind: str = "function"
    # the answer is something a model is trained on (a loss): its floating tensor arguments are given
    # requires_grad, and its result (one floating tensor) must carry a gradient with respect to them equal to
    # the reference's, computed where the student's code runs (calls.call_one); a result cut from the graph
    # (.item(), .detach(), torch.tensor(...)) or an input changed in place fails, with a message saying so
    differentiable: bool = False

    def cases(self, key: str | None = None) -> list[Case]:
        """The test cases: the public ones ``check()`` and ``case()`` show (``key=None``), or the
        grader's, drawn from the teacher's secret ``key`` (so answers memorised from ``case()`` fail)."""
        cases = _cases(self.id, self.make_cases, key)
        if self.differentiable:
            cases = [Case(tuple(_leaf(a) for a in c.args), {k: _leaf(v) for k, v in c.kwargs.items()}, c.label)
                     for c in cases]
        return cases

    def __post_init__(self):
        _validate(self.forbids)
        if self.differentiable:  # the expected result carries the reference's gradient (wire.GRADS)
            object.__setattr__(self, "reference", _with_gradient(self.reference))
        for m in self.misconceptions:  # named functions: tests and teachers can import them by name
            if m.fn is not None and m.fn.__name__ == "<lambda>":
                raise ValueError(f"{self.id}: misconception {m.name!r} must be a named function, not a lambda")

    def expected(self, key: str | None = None) -> list[Any]:
        return [self.reference(*c.args, **c.kwargs) for c in self.cases(key)]


@dataclass(frozen=True)
class DerivationQuestion:
    id: str
    name: str
    points: float
    start: str
    target: str
    assumptions: dict
    prompt: str
    misconceptions: tuple[Misconception, ...] = ()
    hints: tuple[str, ...] = ()
    max_steps: int = 30
    # "show your work": a single jump from start to target is not a derivation, and a step that only
    # rewrites the one before it (+ 0, 1*, x - x, 2x/2, a factor and its inverse, reordering) does not count
    min_steps: int = 2
    # intermediate forms the chain must pass through; each reached before the first wrong step
    # earns its share of ``partial_credit`` (a fraction of the points; 0 turns partial credit off)
    milestones: tuple[Milestone, ...] = ()
    partial_credit: float = 0.5
    forbids: tuple[str, ...] = (LIBRARY,)
    kind: str = "derivation"

    def __post_init__(self):
        if not 0 <= self.partial_credit <= 1:
            raise ValueError(f"{self.id}: partial_credit is a fraction of the points, in [0, 1]")
        for m in self.misconceptions:
            if m.expr is None:
                raise ValueError(f"{self.id}: misconception {m.name!r} of a derivation needs expr=")

    def cases(self, key: str | None = None) -> list[Case]:
        return [Case(args=(), label="the derivation")]


_KEY: contextvars.ContextVar[str | None] = contextvars.ContextVar("vidlearn_case_key", default=None)


@functools.lru_cache(maxsize=256)
def _cached_cases(qid: str, make_cases: Callable, key: str | None) -> tuple[Case, ...]:
    token = _KEY.set(key)
    try:
        return tuple(make_cases())
    finally:
        _KEY.reset(token)


def _fresh(x):
    if isinstance(x, torch.Tensor):
        return x.clone()
    if isinstance(x, (list, tuple)):
        return type(x)(_fresh(i) for i in x)
    if isinstance(x, dict):
        return {k: _fresh(v) for k, v in x.items()}
    return x


def _leaf(x):
    """A floating tensor argument of a differentiable question: a fresh leaf that requires grad."""
    if isinstance(x, torch.Tensor) and x.dtype.is_floating_point:
        return x.detach().clone().requires_grad_(True)
    return x


def _with_gradient(reference: Callable) -> Callable:
    """``reference`` called as the student's function is (:func:`vidlearn.grading.calls.call_one`): for arguments
    that require grad, its result comes back detached, carrying (``wire.GRADS``) its gradient with respect to them."""
    @functools.wraps(reference)
    def wrapped(*args, **kwargs):
        from vidlearn.grading import wire
        from vidlearn.grading.calls import call_one

        status, payload = call_one(reference, args, kwargs)
        if status != "ok":
            raise RuntimeError(f"the reference failed: {payload}")
        out = wire.decode(payload)
        if getattr(out, FLAW, None) is not None:
            raise RuntimeError(f"the reference's result cannot be differentiated: {getattr(out, FLAW)}")
        return out

    return wrapped


def _cases(qid: str, make_cases: Callable, key: str | None) -> list[Case]:
    # copies: whatever a caller does to a case's tensors cannot change the next caller's case
    return [Case(_fresh(c.args), _fresh(c.kwargs), c.label) for c in _cached_cases(qid, make_cases, key)]


def hidden() -> bool:
    """True while the grader's (secret-key) cases are being drawn."""
    return _KEY.get() is not None


def _derived_seed(seed: int, salt: str = "") -> int:
    digest = hashlib.sha256(f"{_KEY.get()}\0{seed}\0{salt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def seeded(seed: int) -> torch.Generator:
    """The generator a question's test cases are drawn from: ``seed`` itself for the public cases,
    a seed derived from the teacher's key for the grader's. Both are fixed, so grading is reproducible."""
    return torch.Generator().manual_seed(seed if _KEY.get() is None else _derived_seed(seed))


def pick(seed: int, public, choices):
    """A case parameter: ``public`` in the public cases; in the grader's, a draw from ``choices``
    (other than ``public``), so that no grading input is one a student saw in ``case()``."""
    if _KEY.get() is None:
        return public
    options = [c for c in choices if c != public]
    return random.Random(_derived_seed(seed, repr(public))).choice(options)


REGISTRY: dict[str, FunctionQuestion | DerivationQuestion] = {}


def register(q):
    if q.id in REGISTRY:
        raise ValueError(f"question {q.id!r} registered twice")
    if not q.id.startswith(q.id.split(".")[0] + ".") or not q.id[:2] == "ex":
        raise ValueError(f"question ids look like 'exNN.name', got {q.id!r}")
    REGISTRY[q.id] = q
    return q


def _load() -> None:
    # importing the exercise modules fills the registry
    from vidlearn.grading import ex01, ex02, ex03, ex04, ex05, ex06, ex07  # noqa: F401


def get_question(qid: str):
    _load()
    try:
        return REGISTRY[qid]
    except KeyError:
        raise KeyError(f"no question {qid!r}; known: {', '.join(sorted(REGISTRY))}") from None


def questions_for(exercise: str) -> list:
    """Questions of one exercise (``"ex01"``), in registration order."""
    _load()
    qs = [q for q in REGISTRY.values() if q.id.split(".")[0] == exercise]
    if not qs:
        raise KeyError(f"no exercise {exercise!r}; known: {', '.join(exercises())}")
    return qs


def exercises() -> list[str]:
    _load()
    return sorted({q.id.split(".")[0] for q in REGISTRY.values()})


# ----------------------------------------------------------------------------- comparing


def _describe(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return f"a tensor of shape {tuple(x.shape)} and dtype {x.dtype}"
    if isinstance(x, (list, tuple)):
        return f"a {type(x).__name__} of {len(x)} items"
    return f"{type(x).__name__} {x!r}"[:200]


def compare(expected: Any, got: Any, atol: float, rtol: float, *, equal_nan: bool = False) -> str | None:
    """``None`` if ``got`` matches ``expected``; otherwise the reason, in words.

    ``got`` must be a plain value as decoded from the wire (tensor, number, string, list).
    """
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor) or type(got) is not torch.Tensor:
            return f"expected a tensor, got {_describe(got)}"
        if got.shape != expected.shape:
            return f"expected shape {tuple(expected.shape)}, got {tuple(got.shape)}"
        if got.dtype != expected.dtype:
            return f"expected dtype {expected.dtype}, got {got.dtype}"
        if expected.dtype == torch.bool:
            return None if torch.equal(got, expected) else "some entries are wrong"
        e, g = expected.double(), got.double()
        if not equal_nan and torch.isnan(g).any() and not torch.isnan(e).any():
            return "your output contains NaN"
        if not torch.allclose(g, e, atol=atol, rtol=rtol, equal_nan=equal_nan):
            finite = torch.isfinite(e) & torch.isfinite(g)
            err = (g - e)[finite].abs().max().item() if finite.any() else math.inf
            return f"values differ (max |difference| {err:.3g})"
        return _compare_gradients(expected, got, atol, rtol, equal_nan)
    if isinstance(expected, (list, tuple)):
        if not isinstance(got, (list, tuple)) or len(got) != len(expected):
            return f"expected {_describe(expected)}, got {_describe(got)}"
        for i, (e, g) in enumerate(zip(expected, got)):
            reason = compare(e, g, atol, rtol, equal_nan=equal_nan)
            if reason:
                return f"item {i}: {reason}"
        return None
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            return f"expected a number, got {_describe(got)}"
        return None if math.isclose(got, expected, rel_tol=rtol, abs_tol=atol) else f"expected {expected}, got {got}"
    return None if got == expected else f"expected {expected!r}, got {_describe(got)}"


def _compare_gradients(expected, got, atol: float, rtol: float, equal_nan: bool) -> str | None:
    """For a differentiable question's result (``expected`` carries ``wire.GRADS``): ``got``'s gradient with
    respect to the inputs, as computed where the student's code ran, must be the reference's."""
    want = getattr(expected, GRADS, None)
    if want is None:
        return None
    flaw = getattr(got, FLAW, None)
    if flaw is not None:
        return str(flaw)
    have = getattr(got, GRADS, None)
    if not isinstance(have, list) or len(have) != len(want):
        return "no gradient came back with your result, so it cannot be checked that a model can be trained on it"
    for k, (w, h) in enumerate(zip(want, have), start=1):
        reason = compare(w.detach(), h, atol, rtol, equal_nan=equal_nan)
        if reason:
            return (f"the value is right, but its gradient with respect to input {k} is not ({reason}): part of "
                    f"the computation is hidden from autograd (torch.no_grad(), .detach(), .data) or done in place")
    return None
