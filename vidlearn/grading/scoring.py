"""Turn what a student's code returned into a score, feedback and (maybe) a recognised mistake.

Input is a list of per-case results, each ``("ok", value)`` or ``("error", message)``,
where ``value`` is a plain value decoded from the wire (see :mod:`vidlearn.grading.wire`).
The same function scores the in-notebook ``check()`` and the teacher's grader, so both
always agree.
"""

from __future__ import annotations

from typing import Any

import torch

from vidlearn.grading.questions import (
    Case,
    DerivationQuestion,
    FunctionQuestion,
    Misconception,
    Outcome,
    compare,
)

__all__ = ["score", "zero", "describe_case"]

Result = tuple[str, Any]


def zero(question, reason: str) -> Outcome:
    """An outcome of zero points for a question that could not be run at all."""
    return Outcome(question.id, 0.0, float(question.points), reason, total=len(question.cases()))


def describe_case(case: Case, index: int) -> str:
    """A short, reproducible description of a test case's inputs."""
    parts = []
    for a in list(case.args) + [f"{k}={v!r}" if not isinstance(v, torch.Tensor) else v for k, v in case.kwargs.items()]:
        if isinstance(a, torch.Tensor):
            desc = f"tensor{tuple(a.shape)} {str(a.dtype).removeprefix('torch.')}"
            if a.numel() <= 12:
                values = a.tolist() if not a.dtype.is_floating_point else torch.round(a, decimals=4).tolist()
                desc += f" = {values}"
            parts.append(desc)
        else:
            parts.append(repr(a) if not isinstance(a, str) else a)
    label = f" ({case.label})" if case.label else ""
    return f"case {index + 1}{label}: inputs " + ", ".join(parts)


def _recognise(question: FunctionQuestion, cases: list[Case], results: list[Result], failing: list[int]):
    """The first misconception that behaves exactly like the student's code.

    It must reproduce every failing output; among those, one that also agrees on the
    passing cases is preferred (two mistakes can share a symptom on one case).
    """
    candidates = []
    for m in question.misconceptions:
        if m.fn is None:
            continue
        agree = {}
        for i, (case, (status, value)) in enumerate(zip(cases, results)):
            try:
                wrong = m.fn(*case.args, **case.kwargs)
            except Exception:  # the mistake crashes here: it agrees with an answer that crashed too
                agree[i] = status != "ok"
                continue
            agree[i] = status == "ok" and compare(wrong, value, question.atol, question.rtol, equal_nan=True) is None
        if agree.get(failing[0]) and all(agree.get(i, True) for i in failing):
            candidates.append((all(agree.values()), m))
    for everywhere, m in candidates:
        if everywhere:
            return m
    return candidates[0][1] if candidates else None


def _score_function(question: FunctionQuestion, results: list[Result]) -> Outcome:
    cases = question.cases()
    if len(results) != len(cases):
        return zero(question, f"internal: {len(results)} results for {len(cases)} cases")
    failing, reasons = [], {}
    for i, (case, (status, value)) in enumerate(zip(cases, results)):
        if status != "ok":
            failing.append(i)
            reasons[i] = f"your function raised {value}"
            continue
        expected = question.reference(*case.args, **case.kwargs)
        reason = compare(expected, value, question.atol, question.rtol)
        if reason:
            failing.append(i)
            reasons[i] = reason
    total, passed = len(cases), len(cases) - len(failing)
    score = round(question.points * passed / total, 2)
    if all(status == "error" and str(v).startswith("NotImplementedError") for status, v in results):
        return Outcome(question.id, 0.0, float(question.points),
                       f"not answered yet: {question.name} still raises NotImplementedError", None, 0, total, None)
    if not failing:
        return Outcome(question.id, score, float(question.points), f"all {total} cases pass", None, passed, total)
    first = failing[0]
    m = _recognise(question, cases, results, failing)
    lines = [f"{passed}/{total} cases pass. First failure, {describe_case(cases[first], first)}: {reasons[first]}."]
    if m is not None:
        lines.append(f"Hint: {m.hints[0]}")
    elif question.hints:
        lines.append(f"Hint: {question.hints[0]}")
    return Outcome(question.id, score, float(question.points), " ".join(lines), m.name if m else None, passed, total, first)


def _as_steps(value: Any, max_steps: int) -> list[tuple[str, str]] | str:
    """Validate a derivation answer: a list of (expression, reason) string pairs."""
    if not isinstance(value, (list, tuple)) or not value:
        return "return a non-empty list of (expression, reason) pairs"
    if len(value) > max_steps:
        return f"at most {max_steps} steps, please (got {len(value)})"
    steps = []
    for i, item in enumerate(value, start=1):
        if not (isinstance(item, (list, tuple)) and len(item) == 2 and all(isinstance(s, str) for s in item)):
            return f"step {i} must be a pair of strings (expression, reason), got {item!r}"[:300]
        steps.append((item[0], item[1]))
    return steps


def _score_derivation(question: DerivationQuestion, results: list[Result], budget: float) -> Outcome:
    from vidlearn.derive import Derivation

    status, value = results[0]
    if status != "ok":
        if str(value).startswith("NotImplementedError"):
            return zero(question, f"not answered yet: {question.name} still raises NotImplementedError")
        return zero(question, f"your function raised {value}")
    steps = _as_steps(value, question.max_steps)
    if isinstance(steps, str):
        return zero(question, steps)
    try:
        d = Derivation(question.start, question.assumptions, timeout=2.0, n_points=20)
        for expr, reason in steps:
            d.step(expr, reason or "(no reason given)")
        target = d._coerce(question.target)
    except ValueError as err:
        return zero(question, f"cannot read your steps: {err}")
    exprs = d.expressions
    repeated = next((i for i in range(1, len(exprs)) if exprs[i] == exprs[i - 1]), None)
    if repeated is not None:
        return zero(question, f"step {repeated} repeats the expression before it: every step must do some work")
    try:
        result = d.check(budget=budget)
        last = d.expressions[-1]
        if result.ok and d.equivalent(last, target, budget=budget / 4):
            if len(steps) < question.min_steps:
                return zero(question, f"right, but show your work: at least {question.min_steps} steps, each "
                                      f"with its reason (you gave {len(steps)})")
            return Outcome(question.id, float(question.points), float(question.points),
                           f"all {len(steps)} steps follow and you reached the target", None, 1, 1)
        mistaken = None
        suspects = [last] if result.ok else [d.expressions[result.failed_step], last]
        for m in question.misconceptions:
            if m.expr is not None and any(d.equivalent(s, d._coerce(m.expr), budget=budget / 8) for s in suspects):
                mistaken = m
                break
    except Exception as err:  # sympy can fail in odd ways on odd input: that is the answer's problem
        return zero(question, f"your steps could not be checked: {type(err).__name__}: {err}"[:300])
    if result.ok:
        feedback = f"every step follows, but you stopped at {last} instead of reaching {question.target}."
    else:
        feedback = result.message
    if mistaken is not None:
        feedback += f" Hint: {mistaken.hints[0]}"
    elif question.hints:
        feedback += f" Hint: {question.hints[0]}"
    return Outcome(question.id, 0.0, float(question.points), feedback, mistaken.name if mistaken else None, 0, 1, 0)


def score(question, results: list[Result], *, budget: float = 20.0) -> Outcome:
    """Score one question from the student's per-case results."""
    if isinstance(question, DerivationQuestion):
        return _score_derivation(question, results, budget)
    return _score_function(question, results)


def misconception(question, name: str | None) -> Misconception | None:
    return next((m for m in question.misconceptions if m.name == name), None)
