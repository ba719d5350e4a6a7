"""Exercises and their grading: ``check()`` in the notebook, ``vidlearn grade`` for teachers.

This module stays light: inside the grader's sandbox, ``check`` and ``hint`` do nothing
(the teacher's grader runs its own tests from outside), ``case`` is not available (the question
bank is not in the sandbox), and nothing heavy is imported.
"""

from __future__ import annotations

import os

__all__ = ["check", "hint", "case"]


def _grading() -> bool:
    return os.environ.get("VIDLEARN_GRADING") == "1"


def check(question_id: str, answer) -> float | None:
    """Run a question's tests on your function and print what passed, or the first failure and a hint.

    Under nbgrader's autograder it is the cell's test: it raises when the answer earns nothing and
    returns the points earned (nbgrader's partial credit) otherwise; elsewhere it returns None.
    """
    if _grading():
        return None
    from vidlearn.grading.feedback import check as _check

    return _check(question_id, answer)


def hint(question_id: str) -> None:
    """Print the next, more specific hint for the last mistake ``check`` recognised."""
    if _grading():
        return None
    from vidlearn.grading.feedback import hint as _hint

    return _hint(question_id)


def case(question_id: str, number: int):
    """``(args, kwargs)`` of public test case ``number`` (1-based, as in ``check``'s feedback)."""
    if _grading():
        raise RuntimeError("case() shows check()'s public test cases in your own notebook; "
                           "it is not available while the teacher's grader runs")
    from vidlearn.grading.questions import get_question

    cases = get_question(question_id).cases()
    if not 1 <= number <= len(cases):
        raise ValueError(f"{question_id} has cases 1..{len(cases)}, not {number}")
    c = cases[number - 1]
    return c.args, dict(c.kwargs)
