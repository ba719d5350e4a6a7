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
        if not item[1].strip():
            # the derive module refuses a step without a reason; the grader holds students to the same rule
            return f"step {i} has no reason: say in words why it follows from the step before (e.g. 'exp(c) cancels')"
        steps.append((item[0], item[1]))
    return steps


def _partial(question, reached: list[str]) -> float:
    if not question.milestones or not question.partial_credit:
        return 0.0
    return round(question.points * question.partial_credit * len(reached) / len(question.milestones), 2)


def score_steps(spec: dict, results: list, budget: float) -> dict:
    """The outcome (``questions.Outcome``'s fields) of a derivation answer, from plain data.

    Runs inside the grader's bounded child (:mod:`vidlearn.bounded`), so the derivation is checked
    in this process (``isolate=False``), under ``budget`` seconds a step.
    """
    from vidlearn.derive import Derivation
    from vidlearn.derive.milestone import Milestone
    from vidlearn.derive.numeric import evaluated, light

    question = SimpleNamespace(**{**spec, "misconceptions": [SimpleNamespace(**m) for m in spec["misconceptions"]],
                                  "milestones": [Milestone(**{**m, "has": tuple(m["has"]), "free_of": tuple(m["free_of"])})
                                                 for m in spec.get("milestones", [])]})

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
        d = Derivation(question.start, question.assumptions, timeout=2.0, n_points=20, isolate=False,
                       step_seconds=budget)
        for expr, reason in steps:
            d.step(expr, reason)
    except ValueError as err:
        return _zero(question, f"cannot read your steps: {err}"[:400])
    result = d.check()
    valid = len(steps) if result.ok else result.failed_step - 1  # steps that follow
    done = [s for s in result.steps[:valid] if not s.trivial]
    last = d.expressions[valid] if valid else None
    reaches = result.ok and d.equivalent(d.expressions[-1], question.target, budget=budget) is True
    # milestones: shapes passed through by the steps that follow (the final answer itself excluded)
    passed_through = d.expressions[1:valid + 1] if not reaches else d.expressions[1:-1]
    reached = []
    for m in question.milestones:
        for e in passed_through:
            try:
                if m.reached(light(e, cancel=False), evaluated(e)):  # padding (+ 0*Sum(...)) is no milestone
                    reached.append(m.name)
                    break
            except Exception:  # noqa: BLE001 (a shape that cannot be tested is not reached)
                continue
    missing = [m.name for m in question.milestones if m.name not in reached]
    if reaches:
        if len(done) < question.min_steps:
            trivial = len(steps) - len(done)
            return _zero(question, f"right, but show your work: at least {question.min_steps} steps that each do "
                                   f"some work (you gave {len(done)}"
                                   + (f"; {trivial} only padded the step before, with + 0, 1*, x - x, 2x/2 or a new order"
                                      if trivial else "") + ")")
        if missing:
            score = _partial(question, reached)
            return _outcome(question, score, f"you reached the target, but the chain never passes through "
                                             f"{'; '.join(missing)}: show that step too"
                            + (f" (partial credit {score:g}/{question.points:g})" if score else ""), failed_case=0)
        return _outcome(question, float(question.points),
                        f"all {len(steps)} steps follow and you reached the target", passed=1)
    # misconceptions: the failed step itself, or where the chain stopped
    mistaken = None
    suspects = [d.expressions[result.failed_step]] if not result.ok else [d.expressions[-1]]
    if not result.undecided:
        for m in question.misconceptions:
            if any(d.equivalent(s, m.expr, budget=budget / 4) for s in suspects):
                mistaken = m
                break
    if result.ok:
        feedback = f"every step follows, but you stopped at {suspects[0]} instead of reaching {question.target}."
    else:
        feedback = result.message
    if mistaken is not None:
        feedback += f" Hint: {mistaken.hints[0]}"
    elif question.hints:
        feedback += f" Hint: {question.hints[0]}"
    score = _partial(question, reached)
    if score:
        feedback += (f" Partial credit {score:g}/{question.points:g} for the steps before that, which reach "
                     f"{'; '.join(reached)}.")
    elif missing and last is not None:
        feedback += f" Not reached yet: {'; '.join(missing)}."
    return _outcome(question, score, feedback, mistaken.name if mistaken else None, failed_case=0)
