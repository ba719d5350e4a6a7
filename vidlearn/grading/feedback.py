"""Instant feedback in the student's notebook: the grader's tests and hints, run in-process.

The student's function runs here, in their own kernel; its outputs go through the same wire
encoding as in the teacher's grader, and :func:`vidlearn.grading.scoring.score` judges them,
so ``check`` and ``vidlearn grade`` always agree.

Under nbgrader's autograder (or its validator) ``check`` is an autograder test: it fails the cell
when the answer earns nothing and otherwise returns the points earned, the cell's value, which
nbgrader 0.8+ reads as the cell's (partial) score. Anywhere else it only prints, unless
``VIDLEARN_CHECK_STRICT=1`` asks it to raise on anything short of full marks.
"""

from __future__ import annotations

import contextlib
import os
import sys

from vidlearn.grading.calls import call_each
from vidlearn.grading.nbgrader import under_autograder
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


def check(question_id: str, answer) -> float | None:
    autograder = under_autograder()
    if autograder:
        # nbgrader gives a test cell no credit once anything reaches its stderr, a warning from the
        # student's code included: send it to stdout, where the feedback goes
        with contextlib.redirect_stderr(sys.stdout):
            outcome = evaluate(question_id, answer)
    else:
        outcome = evaluate(question_id, answer)
    _HINT_STATE[question_id] = (outcome.misconception, 1)
    print(format_outcome(outcome))
    if autograder:
        if not outcome.score > 0:
            # an error in the cell: nbgrader scores the test 0
            raise AssertionError(f"{question_id}: 0/{outcome.max_score:g} points. {outcome.feedback}")
        # the cell's value, a single number, is nbgrader's partial credit for it
        return float(min(outcome.score, outcome.max_score))
    if os.environ.get("VIDLEARN_CHECK_STRICT") == "1" and outcome.score < outcome.max_score:
        # the reference solutions run with this set, so a wrong solution fails the test suite
        raise AssertionError(f"{question_id}: {outcome.feedback}")
    return None


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
