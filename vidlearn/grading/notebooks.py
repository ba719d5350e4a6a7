"""Exercise notebooks: generating the student versions from the solutions (reading what students
hand in is :mod:`vidlearn.grading.submissions`).

Solutions hold their answers between nbgrader-style markers::

    def softmax(x, dim=-1):
        ### BEGIN SOLUTION
        ...
        ### END SOLUTION

``build_exercises`` replaces each marked block by ``# YOUR CODE HERE`` / ``raise NotImplementedError()``
(at the block's indentation; nbgrader's default code stub, so nbgrader's release of a solution is the
exercise) and records the exercise id in the notebook metadata, so the grader knows what a submission
answers even after a student renames the file.

Cells keep their metadata, nbgrader's included (``# %% nbgrader={...}`` in the percent header; the
scheme is in :mod:`vidlearn.grading.nbgrader`). As nbgrader's ``generate_assignment`` does with its
default settings, a solution region is refused in a cell not marked ``"solution": true``.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["BEGIN", "END", "strip_solutions", "exercise_text", "build_exercises"]

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
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
    import jupytext

    nb = jupytext.read(solution)
    for i, cell in enumerate(nb.cells, start=1):
        if cell.cell_type == "code":
            if BEGIN in cell.source and not cell.metadata.get("nbgrader", {}).get("solution"):
                raise ValueError(f'{solution.name}, cell {i}: a solution region in a cell without nbgrader '
                                 f'metadata "solution": true (nbgrader would refuse it); start the cell with '
                                 f'# %% nbgrader={{"grade": false, "grade_id": "<exNN>-<name>-answer", '
                                 f'"locked": false, "schema_version": 3, "solution": true}}')
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
