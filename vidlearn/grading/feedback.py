"""Instant feedback in the student's notebook: the grader's tests and hints, run in-process.

The student's function runs here, in their own kernel; its outputs go through the same wire
encoding as in the teacher's grader, and :func:`vidlearn.grading.scoring.score` judges them,
so ``check`` and ``vidlearn grade`` always agree.
"""

from __future__ import annotations

import os

from vidlearn.grading.calls import call_each
from vidlearn.grading.questions import Outcome, get_question
from vidlearn.grading.scoring import misconception, score

__all__ = ["evaluate", "check", "hint", "format_outcome"]

# question id -> (misconception name or None, number of hint tiers shown so far)
_HINT_STATE: dict[str, tuple[str | None, int]] = {}


def evaluate(question_id: str, answer) -> Outcome:
    """Score ``answer`` (the student's function) on a question's test cases, in this process."""
    q = get_question(question_id)
    if not callable(answer):
        from vidlearn.grading.scoring import zero

        return zero(q, f"expected the function {q.name}, got {type(answer).__name__}")
    calls = [(c.args, c.kwargs) for c in q.cases()]
    return score(q, call_each(answer, calls, q.forbids))


def format_outcome(outcome: Outcome) -> str:
    mark = "✅" if outcome.score == outcome.max_score else "❌"
    points = f"{outcome.score:g}/{outcome.max_score:g} points"
    head = f"{mark} {outcome.question}: {points}"
    if outcome.score == outcome.max_score:
        return f"{head} — {outcome.feedback}."
    lines = [head, "   " + outcome.feedback]
    lines.append(f'   More help: hint("{outcome.question}").')
    if outcome.failed_case is not None and outcome.total > 1:
        lines.append(f'   Reproduce: args, kwargs = case("{outcome.question}", {outcome.failed_case + 1})')
    return "\n".join(lines)


def check(question_id: str, answer) -> None:
    outcome = evaluate(question_id, answer)
    _HINT_STATE[question_id] = (outcome.misconception, 1)
    print(format_outcome(outcome))
    if os.environ.get("VIDLEARN_CHECK_STRICT") == "1" and outcome.score < outcome.max_score:
        # the reference solutions run with this set, so a wrong solution fails the test suite
        raise AssertionError(f"{question_id}: {outcome.feedback}")


def hint(question_id: str) -> None:
    q = get_question(question_id)
    name, shown = _HINT_STATE.get(question_id, (None, 0))
    m = misconception(q, name)
    tiers = m.hints if m is not None else q.hints
    if not tiers:
        print(f"No hints for {question_id}: re-read the exercise text and the chapter section it points to.")
        return
    if shown >= len(tiers):
        print(f"That was the last hint for {question_id}. Compare your code with the chapter, line by line.")
        return
    label = f" ({m.name})" if m is not None else ""
    print(f"Hint {shown + 1}/{len(tiers)}{label}: {tiers[shown]}")
    _HINT_STATE[question_id] = (name, shown + 1)
