"""Exercise notebooks: generating student versions from solutions, and reading submissions.

Solutions hold their answers between nbgrader-style markers::

    def softmax(x, dim=-1):
        ### BEGIN SOLUTION
        ...
        ### END SOLUTION

``build_exercises`` replaces each marked block by ``raise NotImplementedError()`` (at the
block's indentation) and records the exercise id in the notebook metadata, so the grader
knows what a submission answers even after a student renames the file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import jupytext
import nbformat

__all__ = [
    "BEGIN",
    "END",
    "strip_solutions",
    "exercise_text",
    "build_exercises",
    "Submission",
    "read_submission",
]

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
MAX_SUBMISSION_BYTES = 20 << 20
_EXERCISE_ID = re.compile(r"ex\d\d", re.I)


def strip_solutions(source: str, where: str = "cell") -> str:
    """Replace every marked solution block in one cell's source by a NotImplementedError stub."""
    out, inside, indent = [], False, ""
    for n, line in enumerate(source.splitlines(), start=1):
        tag = line.strip()
        if tag == BEGIN:
            if inside:
                raise ValueError(f"{where}, line {n}: {BEGIN} inside another solution block")
            inside, indent = True, line[: len(line) - len(line.lstrip())]
            out += [f"{indent}# YOUR CODE HERE", f"{indent}raise NotImplementedError()"]
        elif tag == END:
            if not inside:
                raise ValueError(f"{where}, line {n}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{where}: {BEGIN} is never closed by {END}")
    return "\n".join(out)


def _exercise_id(path: Path) -> str:
    m = _EXERCISE_ID.match(path.name)
    if not m:
        raise ValueError(f"{path}: solution files are named exNN_<topic>.py")
    return m.group(0).lower()


def exercise_text(solution: Path) -> str:
    """The student version of one solution notebook, as Jupytext percent text."""
    nb = jupytext.read(solution)
    for i, cell in enumerate(nb.cells, start=1):
        if cell.cell_type == "code":
            cell.source = strip_solutions(cell.source, f"{solution.name}, cell {i}")
        elif BEGIN in cell.source:
            raise ValueError(f"{solution.name}, cell {i}: solution markers belong in code cells")
    nb.metadata["vidlearn"] = {"exercise": _exercise_id(solution), "generated_from": f"solutions/{solution.name}"}
    nb.metadata.setdefault("jupytext", {})["notebook_metadata_filter"] = "vidlearn"
    text = jupytext.writes(nb, fmt="py:percent")
    # the writer's version stamp would make the committed files depend on who built them
    return re.sub(r"^#\s+jupytext_version: .*\n", "", text, flags=re.M)


def build_exercises(solutions: Path, exercises: Path, *, check_only: bool = False) -> list[Path]:
    """Write ``exercises/`` from ``solutions/``; with ``check_only``, list the files that differ."""
    solutions, exercises = Path(solutions), Path(exercises)
    sources = sorted(solutions.glob("ex[0-9][0-9]_*.py"))
    if not sources:
        raise FileNotFoundError(f"no solution notebooks (exNN_*.py) in {solutions}")
    changed = []
    for src in sources:
        dest = exercises / src.name
        text = exercise_text(src)
        if dest.exists() and dest.read_text() == text:
            continue
        changed.append(dest)
        if not check_only:
            exercises.mkdir(parents=True, exist_ok=True)
            dest.write_text(text)
    return changed


@dataclass
class Submission:
    """What the grader needs from a submitted file: its code and the exercise it answers."""

    path: Path
    exercise: str | None
    cells: list[str] = field(default_factory=list)
    error: str | None = None


def read_submission(path: Path, known_exercises: list[str]) -> Submission:
    """Read a ``.ipynb`` or Jupytext ``.py`` submission; problems become ``error``, never exceptions."""
    path = Path(path)
    from_name = _EXERCISE_ID.search(path.name)
    guess = from_name.group(0).lower() if from_name else None
    sub = Submission(path, guess if guess in known_exercises else None)
    try:
        size = path.stat().st_size
        if size > MAX_SUBMISSION_BYTES:
            raise ValueError(f"the file is {size >> 20} MiB; the limit is {MAX_SUBMISSION_BYTES >> 20} MiB")
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".ipynb":
            nb = nbformat.reads(text, as_version=4)
        elif path.suffix == ".py":
            nb = jupytext.reads(text, fmt="py:percent")
        else:
            raise ValueError("expected a .ipynb notebook or a Jupytext .py file")
    except (OSError, UnicodeDecodeError, ValueError, json.JSONDecodeError, nbformat.reader.NotJSONError) as err:
        sub.error = f"not a readable notebook: {type(err).__name__}: {err}"[:300]
        return sub
    except Exception as err:  # a malformed notebook can upset nbformat in many ways
        sub.error = f"not a readable notebook: {type(err).__name__}: {err}"[:300]
        return sub
    meta = nb.metadata.get("vidlearn") if isinstance(nb.metadata, dict) else None
    declared = meta.get("exercise") if isinstance(meta, dict) else None
    if isinstance(declared, str) and declared in known_exercises:
        sub.exercise = declared
    cells = []
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            cells.append("".join(source) if isinstance(source, list) else str(source))
    sub.cells = cells
    if sub.exercise is None:
        sub.error = "cannot tell which exercise this answers (no vidlearn metadata and no exNN in the file name)"
    return sub
