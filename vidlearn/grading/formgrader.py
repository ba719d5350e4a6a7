"""Writing the sandboxed grader's results into an nbgrader gradebook, for formgrader and its exports.

``vidlearn grade ... --nbgrader COURSE_DIR ASSIGNMENT`` grades as usual, then writes every graded
submission into ``COURSE_DIR/gradebook.db`` through nbgrader's own API (:class:`nbgrader.api.Gradebook`),
so a teacher can browse, override and export grades in formgrader while the grade of record comes
from the sandbox, not from the student's kernel (where ``check`` can be rebound to pass everything).

What is written, per submission:

* the **assignment**, its **notebook** (the exercise's notebook file stem, e.g. ``ex07_contrastive``)
  and its cells, created from the question registry when ``nbgrader generate_assignment`` has not
  made them: one autograder test cell per question, named by :func:`~vidlearn.grading.nbgrader.test_cell_id`
  (``ex07-symmetric_info_nce``) with the question's points as ``max_score``, and the answer cell
  (``ex07-symmetric_info_nce-answer``, the solution cell the release carries) that holds our comment.
  An existing notebook must carry exactly our test cells with our points, or nothing is written;
* the **student**: exactly the folder name above ``<ASSIGNMENT>/`` in nbgrader's collect layout
  ``.../<student>/<ASSIGNMENT>/<notebook>`` (``submitted/alice@uni.edu/a1/ex01_attention.ipynb`` is
  ``alice@uni.edu``), never guessed and never mapped. A submission outside that layout (the folder
  it sits in is not named ``ASSIGNMENT``) is not written to the gradebook, nor is one whose student
  folder nbgrader could not have made or that is unsafe to show (:func:`student_id_problem`: empty,
  ``.``/``..``, leading or trailing whitespace, control, format or BiDi characters, path separators,
  HTML's ``<>&"'`` and backtick, over 128 characters); each is reported with the reason (it is still in the CSV).
  Two submissions of one notebook by one student in a batch are written for neither;
* the **submission** and, per test cell, the **grade**: our score is the **auto_score** (what
  formgrader shows as the autograded score) with ``needs_manual_grade`` false. ``manual_score`` is
  the teacher's: it is never written, so an override made in formgrader survives a re-run (and, as
  nbgrader's own autograder does, a grade that has a manual score is flagged for review again);
* per answer cell, a **comment**: our feedback as the ``auto_comment`` (formgrader shows it as the
  comment box's placeholder; ``nbgrader generate_feedback`` renders it as Markdown into HTML). What
  came from the submission (error texts, returned values, notes) is an inert Markdown code span
  (:func:`vidlearn.grading.inert.markdown`): no HTML, link or image reaches the teacher's or the
  student's browser; each text is bounded and so is the whole comment. ``manual_comment`` is the
  teacher's and is never written. A question without an answer cell of its own (``merge_heads`` is
  answered in ``split_heads``' cell) adds its feedback to the comment of the answer cell before it.

Run ``nbgrader generate_assignment`` before the first ``vidlearn grade --nbgrader`` if the course
also uses nbgrader's release and collect: the gradebook then has the release's cells, which ours
agree with. A notebook made here has only the graded and answer cells, and nbgrader will not change
the cells of a notebook that has submissions.

Re-running updates the same rows (nbgrader's ``find_*``/``update_or_create_*``), never duplicates them.
Everything is checked before anything is written: an unsafe assignment name, a course folder without
a gradebook that cannot be made, a ``gradebook.db`` that is a symlink, not a file, empty, not SQLite
or not nbgrader's (inspected read-only, before nbgrader's API, which adds its tables to any SQLite
file, opens it), or an existing notebook whose cells disagree with ours is refused by
:class:`FormgraderError`, naming the problem.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import sys
import urllib.parse
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from vidlearn.grading import inert
from vidlearn.grading.nbgrader import question_of, test_cell_id

__all__ = ["FormgraderError", "NbgraderResult", "NOTEBOOKS", "write_nbgrader", "check_nbgrader", "open_gradebook", "student_id",
           "student_id_problem", "NotInGradebookLayout", "safe_name", "answer_cell_id", "comment_text", "gradebook_path"]

# The exercises' notebook file stems (nbgrader names a notebook by its file stem);
# tests/test_formgrader.py checks them against solutions/.
NOTEBOOKS = {
    "ex01": "ex01_attention",
    "ex02": "ex02_positional_encoding",
    "ex03": "ex03_temporal_attention",
    "ex04": "ex04_tubelets",
    "ex05": "ex05_vivit",
    "ex06": "ex06_cross_modal",
    "ex07": "ex07_contrastive",
}
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # assignment names (ours to choose)
MAX_STUDENT_ID = 128  # characters of a student folder name
_STUDENT_UNSAFE = set("/\\<>&\"'`")  # path separators; HTML (formgrader builds pages and URLs from ids)
# nbgrader's gradebook tables (nbgrader/api.py, 0.9.6) and the alembic_version table it adds
GRADEBOOK_TABLES = frozenset({"alembic_version", "assignment", "notebook", "base_cell", "grade_cells", "solution_cells",
                              "task_cells", "source_cell", "student", "submitted_assignment", "submitted_notebook",
                              "grade", "comment", "course"})
MAX_FEEDBACK = 1500  # characters of one question's feedback in a comment
MAX_NOTES = 5  # submission notes in the first question's comment
MAX_COMMENT = 4000  # characters of one comment, all in
COURSE_ID = ""  # nbgrader's default course id (CourseDirectory.course_id), so formgrader sees the same rows


class FormgraderError(Exception):
    """The gradebook cannot take our results; the message names the problem. Nothing was written."""


@dataclass
class NbgraderResult:
    """What :func:`write_nbgrader` did."""

    gradebook: Path
    assignment: str
    written: list[tuple[str, str, str]] = field(default_factory=list)  # (submission, student id, notebook)
    skipped: list[str] = field(default_factory=list)  # why a submission was not written (inert text)
    created: list[str] = field(default_factory=list)  # notebooks we created in the gradebook


def safe_name(name: str) -> bool:
    """Whether ``name`` is safe as an nbgrader assignment name (student ids: :func:`student_id_problem`)."""
    return isinstance(name, str) and bool(_SAFE.fullmatch(name)) and ".." not in name


class NotInGradebookLayout(ValueError):
    """A submission whose student the gradebook cannot be told: the message says why (inert text)."""


def student_id_problem(name: str) -> str | None:
    """Why the folder name ``name`` cannot be an nbgrader student id as it is (``None``: it can).
    nbgrader takes a student id as the folder's name with surrounding whitespace stripped; an id must
    also be safe to show in formgrader's pages and URLs and in a terminal."""
    if not name:
        return "the student folder name is empty"
    if name in (".", ".."):
        return "the student folder name is . or .."
    if name != name.strip():
        return "the student folder name has leading or trailing whitespace (nbgrader would strip it)"
    if len(name) > MAX_STUDENT_ID:
        return f"the student folder name is longer than {MAX_STUDENT_ID} characters"
    if inert.text(name) != name:  # what inert would escape: Cc, Cf (BiDi overrides, zero-width), Zl, Zp, ...
        return "the student folder name has control, format or BiDi characters"
    if any(c in _STUDENT_UNSAFE for c in name):
        return "the student folder name has a path separator or one of the HTML characters < > & \" ' `"
    return None


def student_id(submission: str | Path, assignment: str) -> str:
    """The student id of a submission: exactly the name of the folder above ``<ASSIGNMENT>/`` in
    nbgrader's collect layout ``.../<student>/<ASSIGNMENT>/<notebook>``. Raises
    :class:`NotInGradebookLayout` (naming the expected layout or the problem with the name) for a file
    outside that layout or a folder name that cannot be an id; nothing is guessed or mapped."""
    path = Path(submission).absolute()
    if path.parent.name != assignment:
        raise NotInGradebookLayout(
            f"not in nbgrader's collect layout .../STUDENT/{assignment}/NOTEBOOK (it is in a folder named "
            f'"{inert.text(path.parent.name, 80)}", not "{assignment}"), so it has no student id')
    name = path.parent.parent.name
    problem = student_id_problem(name)
    if problem:
        raise NotInGradebookLayout(f'{problem} ("{inert.text(name, 200)}"), so it is not a student id nbgrader '
                                   "would use; rename the folder")
    return name


def answer_cell_id(question) -> str:
    """The grade_id of the answer (solution) cell of a question: ``ex07-symmetric_info_nce-answer``."""
    return f"{question.id.split('.')[0]}-{question.name}-answer"


def gradebook_path(course_dir: Path) -> Path:
    return Path(course_dir) / "gradebook.db"


def comment_text(outcome, notes: list[str] = ()) -> str:
    """Our feedback on one question, as Markdown whose student-derived parts are inert code spans."""
    head = f"**vidlearn grade (sandboxed): {outcome.score:g} / {outcome.max_score:g} points.**"
    if outcome.score >= outcome.max_score:
        parts = [head + " All test cases pass."]
    else:
        parts = [head, "What happened: " + inert.markdown(outcome.feedback, MAX_FEEDBACK)]
        if outcome.misconception:
            parts.append("This looks like a known mistake: " + inert.markdown(outcome.misconception, 200))
        parts.append(f'In the notebook, `hint("{outcome.question}")` says more.')
    for note in list(notes)[:MAX_NOTES]:
        parts.append("Note: " + inert.markdown(note, 300))
    if len(notes) > MAX_NOTES:
        parts.append(f"… and {len(notes) - MAX_NOTES} more notes (in the grader's JSON report).")
    return _bounded("\n\n".join(parts))


def _bounded(text: str) -> str:
    if len(text) > MAX_COMMENT:  # cut at a paragraph, so that no code span is left open
        while len(text) > MAX_COMMENT - 40 and "\n\n" in text:
            text = text.rsplit("\n\n", 1)[0]
        text = (text if len(text) <= MAX_COMMENT - 40 else "**vidlearn grade (sandboxed)**: the feedback is too long "
                "for a comment") + "\n\n… (more in the grader's report)"
    return text


# ----------------------------------------------------------------------------- the gradebook


def open_gradebook(course_dir: Path, create: bool):
    course_dir = Path(course_dir)
    if not course_dir.is_dir():
        raise FormgraderError(f"the nbgrader course folder {inert.text(course_dir)} does not exist")
    db = gradebook_path(course_dir)
    if db.is_symlink():
        raise FormgraderError(f"{inert.text(db)} is a symbolic link; use the gradebook file itself")
    if not db.exists():
        if not create:
            return None
        if not os.access(course_dir, os.W_OK | os.X_OK):
            raise FormgraderError(f"{inert.text(course_dir)} has no gradebook.db and cannot have one made "
                                  "(the folder is not writable)")
    elif not db.is_file():
        raise FormgraderError(f"{inert.text(db)} is not a file")
    else:
        _inspect_gradebook(db)  # read-only, before nbgrader's Gradebook adds its tables to whatever is there
    try:
        from nbgrader.api import Gradebook
    except ImportError:
        raise FormgraderError("nbgrader is not installed (pip install nbgrader==0.9.6)") from None
    try:
        if db.exists():
            return Gradebook(f"sqlite:///{db.resolve()}", COURSE_ID)
        with _alembic_on_path():  # a new gradebook asks the `alembic` command for its schema version
            return Gradebook(f"sqlite:///{db.resolve()}", COURSE_ID)
    except Exception as err:
        raise FormgraderError(f"cannot open {inert.text(db)} as an nbgrader gradebook "
                              f"({type(err).__name__}: {inert.text(err, 200)})") from None


def _inspect_gradebook(db: Path) -> None:
    """Refuse an existing ``gradebook.db`` that is not nbgrader's, having opened it read-only."""
    uri = f"file:{urllib.parse.quote(str(db.resolve()))}?mode=ro"
    why = None
    try:
        con = sqlite3.connect(uri, uri=True)
        try:
            tables = {row[0] for row in con.execute("select name from sqlite_master where type = 'table'")}
        finally:
            con.close()
    except sqlite3.Error as err:
        why = f"not an SQLite database: {inert.text(err, 200)}"
    else:
        if not tables:
            why = "it is empty (no tables); delete it to have a new gradebook made"
        elif GRADEBOOK_TABLES - tables:
            why = ("it is not an nbgrader gradebook (it lacks the tables "
                   + ", ".join(sorted(GRADEBOOK_TABLES - tables)) + ")")
    if why:
        raise FormgraderError(f"cannot open {inert.text(db)} as an nbgrader gradebook: {why}; nothing was written")


@contextlib.contextmanager
def _alembic_on_path():
    """nbgrader makes a new gradebook by running ``alembic`` from ``PATH``: the one installed beside
    this Python (in its virtual environment, which need not be activated) goes first, for that call."""
    here = Path(sys.executable).parent
    if shutil.which("alembic") or not (here / "alembic").is_file():
        yield
        return
    old = os.environ.get("PATH")
    os.environ["PATH"] = os.pathsep.join([str(here)] + ([old] if old else []))
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = old


def _our_notebook(gb, assignment: str, exercise: str) -> str:
    """The notebook of the assignment that holds the exercise's test cells, else the course's name for it."""
    from nbgrader.api import MissingEntry

    try:
        a = gb.find_assignment(assignment)
    except MissingEntry:
        return NOTEBOOKS[exercise]
    for nb in a.notebooks:
        if any(question_of(c.name) and question_of(c.name).split(".")[0] == exercise for c in nb.grade_cells):
            return nb.name
    return NOTEBOOKS[exercise]


def _disagreements(gb, assignment: str, exercise: str) -> list[str]:
    """What the gradebook's notebook for ``exercise`` has that differs from the registry (empty: it
    agrees, or it is not there yet)."""
    from nbgrader.api import MissingEntry

    from vidlearn.grading.questions import questions_for

    name = _our_notebook(gb, assignment, exercise)
    try:
        nb = gb.find_notebook(name, assignment)
    except MissingEntry:
        return []
    ours = {test_cell_id(q.id): float(q.points) for q in questions_for(exercise)}
    theirs = {c.name: float(c.max_score) for c in nb.grade_cells
              if question_of(c.name) and question_of(c.name).split(".")[0] == exercise}
    problems = []
    for cell, points in ours.items():
        if cell not in theirs:
            problems.append(f"it has no test cell {cell}")
        elif theirs[cell] != points:
            problems.append(f"its cell {cell} is worth {theirs[cell]:g} points, ours {points:g}")
    problems += [f"it has a test cell {c} that the course does not have" for c in sorted(set(theirs) - set(ours))]
    return [f"assignment {assignment}, notebook {inert.text(name)}: {p}" for p in problems]


def check_nbgrader(course_dir: Path, assignment: str, exercises=()) -> None:
    """Refuse (:class:`FormgraderError`) what :func:`write_nbgrader` would refuse, before any grading:
    an unsafe assignment name, no gradebook and no way to make one, cells that disagree with ours."""
    if not safe_name(assignment):
        raise FormgraderError(f"{inert.text(assignment, 100)} is not a safe nbgrader assignment name (letters, "
                              "digits, '.', '_' and '-', starting with a letter or digit, at most 64)")
    gb = open_gradebook(course_dir, create=False)
    if gb is None:
        if not os.access(course_dir, os.W_OK | os.X_OK):
            raise FormgraderError(f"{inert.text(course_dir)} has no gradebook.db and cannot have one made "
                                  "(the folder is not writable)")
        return
    with gb:
        problems = [p for e in sorted(set(exercises)) if e in NOTEBOOKS for p in _disagreements(gb, assignment, e)]
    if problems:
        raise FormgraderError("the gradebook's assignment disagrees with the course: " + "; ".join(problems))


def _ensure_notebook(gb, assignment: str, exercise: str) -> tuple[str, bool]:
    from nbgrader.api import MissingEntry

    from vidlearn.grading.questions import questions_for

    name = _our_notebook(gb, assignment, exercise)
    try:
        gb.find_notebook(name, assignment)
        return name, False
    except MissingEntry:
        pass
    gb.update_or_create_assignment(assignment)
    gb.add_notebook(name, assignment)
    for q in questions_for(exercise):
        gb.add_grade_cell(test_cell_id(q.id), name, assignment, max_score=float(q.points), cell_type="code")
        gb.add_solution_cell(answer_cell_id(q), name, assignment)
    return name, True


def _submitted_notebook(gb, notebook: str, assignment: str, student: str):
    """The student's submitted notebook, made (with a grade and a comment per cell) if the submission
    predates the notebook or its cells."""
    from nbgrader.api import Comment, Grade, MissingEntry, SubmittedNotebook

    with warnings.catch_warnings():  # nbgrader's add_submission builds its rows before adding them: SQLAlchemy warns
        warnings.simplefilter("ignore", category=Warning)
        submission = gb.update_or_create_submission(assignment, student)
    try:
        snb = gb.find_submission_notebook(notebook, assignment, student)
    except MissingEntry:
        snb = SubmittedNotebook(notebook=gb.find_notebook(notebook, assignment), assignment=submission)
        gb.db.add(snb)
        gb.db.commit()
    have_grades = {g.cell_id for g in snb.grades}
    have_comments = {c.cell_id for c in snb.comments}
    for cell in snb.notebook.grade_cells:
        if cell.id not in have_grades:
            gb.db.add(Grade(cell_id=cell.id, notebook=snb))
    for cell in snb.notebook.solution_cells:
        if cell.id not in have_comments:
            gb.db.add(Comment(cell_id=cell.id, notebook=snb))
    gb.db.commit()
    return snb


def write_nbgrader(reports, course_dir: Path, assignment: str) -> NbgraderResult:
    """Write graded submissions (:class:`~vidlearn.grading.gradebook.SubmissionReport`) into the
    nbgrader gradebook of ``course_dir`` as the assignment ``assignment``; see the module's docstring."""
    from vidlearn.grading.questions import get_question

    if not safe_name(assignment):
        check_nbgrader(course_dir, assignment)  # raises, naming the problem
    gb = open_gradebook(course_dir, create=True)
    result = NbgraderResult(gradebook_path(course_dir), assignment)
    with gb:
        # what goes where, and the checks, before anything is written
        plan = []
        for r in reports:
            if r.exercise not in NOTEBOOKS:
                result.skipped.append(f"{inert.text(r.submission, 200)}: not graded as an exercise of the course")
                continue
            try:
                sid = student_id(r.submission, assignment)
            except NotInGradebookLayout as err:
                result.skipped.append(f"{inert.text(r.submission, 200)}: {err}")
                continue
            plan.append((r, sid, _our_notebook(gb, assignment, r.exercise)))
        problems = [p for e in sorted({r.exercise for r, *_ in plan}) for p in _disagreements(gb, assignment, e)]
        if problems:
            raise FormgraderError("the gradebook's assignment disagrees with the course, nothing written: "
                                  + "; ".join(problems))
        twice = Counter((sid, nb) for _, sid, nb in plan)
        for r, sid, nb in plan:
            if twice[(sid, nb)] > 1:
                result.skipped.append(f"{inert.text(r.submission, 200)}: student {inert.text(sid)} has more than "
                                      f"one submission of {nb} in this batch; none of them was written")
        plan = [p for p in plan if twice[(p[1], p[2])] == 1]
        for r, sid, _ in plan:
            name, created = _ensure_notebook(gb, assignment, r.exercise)
            if created:
                result.created.append(name)
            gb.update_or_create_student(sid)
            snb = _submitted_notebook(gb, name, assignment, sid)
            grades = {g.cell.name: g for g in snb.grades}
            comments = {c.cell.name: c for c in snb.comments}
            texts: dict[str, list[str]] = {}
            cell = None
            for i, o in enumerate(r.outcomes):
                grade = grades[test_cell_id(o.question)]
                grade.auto_score = float(o.score)
                # as nbgrader's autograder does: a teacher's manual score is kept, and flagged for review
                grade.needs_manual_grade = grade.manual_score is not None
                # a question without an answer cell of its own (merge_heads is answered in split_heads'
                # cell) shares the comment of the answer cell before it
                own = answer_cell_id(get_question(o.question))
                cell = own if own in comments else cell
                if cell is not None:
                    texts.setdefault(cell, []).append(comment_text(o, r.notes if i == 0 else ()))
            for cell, parts in texts.items():
                comments[cell].auto_comment = _bounded("\n\n---\n\n".join(parts))
            gb.db.commit()
            result.written.append((r.submission, sid, name))
    return result
