"""Exercises and their grading: ``check()`` in the notebook, ``vidlearn grade`` for teachers.

This module stays light: inside the grader's sandbox, ``check`` and ``hint`` do nothing
(the teacher's grader runs the same tests from outside), and nothing heavy is imported.
"""

from __future__ import annotations

import os

__all__ = ["check", "hint", "case"]


def _grading() -> bool:
    return os.environ.get("VIDLEARN_GRADING") == "1"


def check(question_id: str, answer) -> None:
    """Run a question's tests on your function and print what passed, or the first failure and a hint."""
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
    """``(args, kwargs)`` of test case ``number`` (1-based, as in the feedback), to reproduce it."""
    from vidlearn.grading.questions import get_question

    cases = get_question(question_id).cases()
    if not 1 <= number <= len(cases):
        raise ValueError(f"{question_id} has cases 1..{len(cases)}, not {number}")
    c = cases[number - 1]
    return c.args, dict(c.kwargs)
