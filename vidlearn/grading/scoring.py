"""Turn what a student's code returned into a score, feedback and (maybe) a recognised mistake.

Input is a list of per-case results, each ``("ok", value)``, ``("error", message)`` or
``("forbidden", reason)``, where ``value`` is a plain value decoded from the wire (see
:mod:`vidlearn.grading.wire`), for the cases drawn with ``key`` (``None``: the public cases).
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

__all__ = ["score", "zero", "describe_case", "DERIVATION_BUDGET"]

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


def _score_function(question: FunctionQuestion, results: list[Result], key: str | None) -> Outcome:
    cases = question.cases(key)
    if len(results) != len(cases):
        return zero(question, f"internal: {len(results)} results for {len(cases)} cases")
    forbidden = next((str(v) for status, v in results if status == "forbidden"), None)
    if forbidden is not None:  # one forbidden call costs the whole question, whatever the other cases did
        return Outcome(question.id, 0.0, float(question.points), f"{forbidden}: no points for this question",
                       "calls a forbidden function", 0, len(cases), None)
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


def derivation_spec(question: DerivationQuestion) -> dict:
    """What :func:`vidlearn.grading.steps.score_steps` needs of a derivation question, as plain data."""
    return {
        "id": question.id, "name": question.name, "points": question.points, "start": question.start,
        "target": question.target, "assumptions": dict(question.assumptions), "hints": list(question.hints),
        "max_steps": question.max_steps, "min_steps": question.min_steps,
        "partial_credit": question.partial_credit, "milestones": [m.as_dict() for m in question.milestones],
        "misconceptions": [{"name": m.name, "hints": list(m.hints), "expr": m.expr} for m in question.misconceptions],
    }


DERIVATION_BUDGET = 10.0  # seconds of checking a derivation answer gets (a step, and all of them)


def _score_derivation(question: DerivationQuestion, results: list[Result], budget: float,
                      memory_mb: int) -> Outcome:
    """A derivation is checked in a child process with a hard time and memory bound (sympy on a
    student's string can run for hours in C, where no signal reaches), in the notebook's ``check()``
    as in the grader. The course's own derivation answers check in under a second."""
    if not results or results[0][0] != "ok":
        from vidlearn.grading.steps import score_steps

        return Outcome(**score_steps(derivation_spec(question), results, budget))  # nothing for sympy to read
    from vidlearn import bounded

    limit = budget + 5  # CPU seconds
    verdict = bounded.run("vidlearn.grading.steps:score_steps", derivation_spec(question), results, budget,
                          seconds=limit, memory_mb=memory_mb)
    if verdict.status == "ok":
        return Outcome(**verdict.value)
    why = {"timeout": f"it needed more than {limit:g} s", "memory": f"it needed more than {memory_mb} MB"}.get(
        verdict.status, f"the checker crashed: {verdict.detail}")
    return zero(question, f"your steps could not be checked: too large ({why})")


def score(question, results: list[Result], *, key: str | None = None, budget: float = DERIVATION_BUDGET,
          memory_mb: int = 1024) -> Outcome:
    """Score one question from the student's per-case results on the cases drawn with ``key``."""
    if isinstance(question, DerivationQuestion):
        return _score_derivation(question, results, budget, memory_mb)
    return _score_function(question, results, key)


def misconception(question, name: str | None) -> Misconception | None:
    return next((m for m in question.misconceptions if m.name == name), None)
