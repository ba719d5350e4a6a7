"""The course's exercises as nbgrader sees them: cell ids and points.

nbgrader identifies a cell by its ``grade_id`` (letters, digits, ``-`` and ``_`` only); a question id
such as ``ex07.symmetric_info_nce`` becomes ``ex07-symmetric_info_nce`` for the autograder test cell
that runs its ``check(...)``. The points of that cell are the question's points in the registry.
The cell holding a solution region is an nbgrader "autograded answer" cell, ``<exNN>-<function>-answer``.

nbgrader runs a notebook's kernel with ``NBGRADER_EXECUTION`` set (``autograde`` while grading,
``validate`` while validating; nbgrader/converters/autograde.py and nbgrader/validator.py), which is
how ``check()`` knows that it is an autograder test (see :mod:`vidlearn.grading.feedback`).
"""

from __future__ import annotations

import os
import re

__all__ = ["test_cell_id", "question_of", "under_autograder", "AUTOGRADER_MODES"]

# the values nbgrader 0.9 gives NBGRADER_EXECUTION in the kernel's environment
AUTOGRADER_MODES = ("autograde", "validate")

_QID = re.compile(r"^(ex\d\d)\.([A-Za-z_][A-Za-z0-9_]*)$")
_CELL = re.compile(r"^(ex\d\d)-([A-Za-z_][A-Za-z0-9_]*)$")


def test_cell_id(question_id: str) -> str:
    """``ex07.symmetric_info_nce`` -> ``ex07-symmetric_info_nce``: the grade_id of its test cell."""
    m = _QID.match(question_id) if isinstance(question_id, str) else None
    if m is None:
        raise ValueError(f"not a question id (exNN.name): {question_id!r}")
    return f"{m[1]}-{m[2]}"


def question_of(grade_id: str) -> str | None:
    """The question id of a test cell's ``grade_id``, or None when the cell is not one of ours."""
    m = _CELL.match(grade_id) if isinstance(grade_id, str) else None
    return f"{m[1]}.{m[2]}" if m else None


def under_autograder() -> bool:
    """True while nbgrader's autograder (or validator) runs this kernel."""
    return os.environ.get("NBGRADER_EXECUTION") in AUTOGRADER_MODES
