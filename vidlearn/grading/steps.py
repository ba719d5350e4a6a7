"""Scoring a derivation answer, a list of ``(expression, reason)`` steps, from plain data.

What the grader's bounded checker (:mod:`vidlearn.bounded`) runs in a child process: it needs only
sympy and :mod:`vidlearn.derive`, so the checker's server starts fast, and its input and output are
JSON (the question as :func:`vidlearn.grading.scoring.derivation_spec` gives it; the outcome as
``questions.Outcome``'s fields).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

__all__ = ["score_steps"]


def _outcome(question, score: float, feedback: str, misconception: str | None = None, *, passed: int = 0,
             failed_case: int | None = None) -> dict:
    return {"question": question.id, "score": score, "max_score": float(question.points), "feedback": feedback,
            "misconception": misconception, "passed": passed, "total": 1, "failed_case": failed_case}


def _zero(question, reason: str) -> dict:
    return _outcome(question, 0.0, reason)


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


def score_steps(spec: dict, results: list, budget: float) -> dict:
    """The outcome (``questions.Outcome``'s fields) of a derivation answer, from plain data."""
    from vidlearn.derive import Derivation

    question = SimpleNamespace(**{**spec, "misconceptions": [SimpleNamespace(**m) for m in spec["misconceptions"]]})

    status, value = results[0]
    if status == "forbidden":
        return _zero(question, f"{value}: no points for this question")
    if status != "ok":
        if str(value).startswith("NotImplementedError"):
            return _zero(question, f"not answered yet: {question.name} still raises NotImplementedError")
        return _zero(question, f"your function raised {value}")
    steps = _as_steps(value, question.max_steps)
    if isinstance(steps, str):
        return _zero(question, steps)
    try:
        d = Derivation(question.start, question.assumptions, timeout=2.0, n_points=20)
        for expr, reason in steps:
            d.step(expr, reason or "(no reason given)")
        target = d._coerce(question.target)
    except ValueError as err:
        return _zero(question, f"cannot read your steps: {err}")
    exprs = d.expressions
    repeated = next((i for i in range(1, len(exprs)) if exprs[i] == exprs[i - 1]), None)
    if repeated is not None:
        return _zero(question, f"step {repeated} repeats the expression before it: every step must do some work")
    try:
        result = d.check(budget=budget)
        last = d.expressions[-1]
        if result.ok and d.equivalent(last, target, budget=budget / 4):
            if len(steps) < question.min_steps:
                return _zero(question, f"right, but show your work: at least {question.min_steps} steps, each "
                                      f"with its reason (you gave {len(steps)})")
            return _outcome(question, float(question.points), f"all {len(steps)} steps follow and you reached the target",
                            passed=1)
        mistaken = None
        suspects = [last] if result.ok else [d.expressions[result.failed_step], last]
        for m in question.misconceptions:
            if any(d.equivalent(s, d._coerce(m.expr), budget=budget / 8) for s in suspects):
                mistaken = m
                break
    except Exception as err:  # sympy can fail in odd ways on odd input: that is the answer's problem
        return _zero(question, f"your steps could not be checked: {type(err).__name__}: {err}"[:300])
    if result.ok:
        feedback = f"every step follows, but you stopped at {last} instead of reaching {question.target}."
    else:
        feedback = result.message
    if mistaken is not None:
        feedback += f" Hint: {mistaken.hints[0]}"
    elif question.hints:
        feedback += f" Hint: {question.hints[0]}"
    return _outcome(question, 0.0, feedback, mistaken.name if mistaken else None, failed_case=0)
