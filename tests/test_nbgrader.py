"""The exercises as an nbgrader course: cell metadata that agrees with the question registry, ``check()``
as an autograder test, and nbgrader 0.9.6 itself releasing the solutions and autograding submissions.

Scheme (py:percent cell headers, ``# %% nbgrader={...}``, kept by ``vidlearn build-exercises``):

* the code cell holding a ``### BEGIN SOLUTION`` region is an "autograded answer" cell:
  ``solution: true, grade: false, locked: false``, grade_id ``exNN-<first function answered>-answer``;
* each ``check("exNN.name", f)`` cell, one check a cell and the call its last statement, is an
  "autograder tests" cell: ``grade: true, solution: false, locked: true``, grade_id
  ``test_cell_id(question id)``, ``points`` the question's points in the registry;
* every other cell carries no nbgrader metadata.
"""

from __future__ import annotations

import ast
import re
import shutil
import sys
import time
import warnings
from pathlib import Path

import jupytext
import nbformat
import pytest

from vidlearn.grading.formgrader import _alembic_on_path
from vidlearn.grading.nbgrader import question_of
from vidlearn.grading.nbgrader import test_cell_id as grade_id_of  # not collected as a test
from vidlearn.grading.notebooks import BEGIN
from vidlearn.grading.questions import exercises, get_question, questions_for

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("ex[0-9][0-9]_*.py"))
EXERCISES = sorted((ROOT / "exercises").glob("ex[0-9][0-9]_*.py"))
CHECK_CALL = re.compile(r"""\bcheck\(\s*["']([^"']+)["']""")
GRADE_ID = re.compile(r"^[A-Za-z0-9_-]+$")
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"  # what build-exercises writes, and nbgrader's default


def _points(p) -> float:
    return float(p)


def _answer_meta(grade_id: str) -> dict:
    return {"grade": False, "grade_id": grade_id, "locked": False, "schema_version": 3, "solution": True}


def _test_meta(qid: str) -> dict:
    return {"grade": True, "grade_id": grade_id_of(qid), "locked": True, "points": get_question(qid).points,
            "schema_version": 3, "solution": False}


def _last_statement_is_the_check(source: str, qid: str) -> bool:
    body = ast.parse(source).body
    last = body[-1] if body else None
    return (isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)
            and isinstance(last.value.func, ast.Name) and last.value.func.id == "check"
            and isinstance(last.value.args[0], ast.Constant) and last.value.args[0].value == qid)


@pytest.mark.parametrize("path", SOLUTIONS + EXERCISES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_cells_carry_nbgrader_metadata_that_agrees_with_the_registry(path):
    from nbgrader.nbgraderformat import MetadataValidator

    nb = jupytext.read(path)
    ex = path.name[:4]
    tests: dict[str, dict] = {}
    answers = 0
    for i, cell in enumerate(nb.cells, start=1):
        meta = cell.metadata.get("nbgrader")
        where = f"{path.name}, cell {i}"
        if cell.cell_type != "code":
            assert meta is None, where
            continue
        calls = CHECK_CALL.findall(cell.source)
        assert len(calls) <= 1, f"{where}: one check() a cell, not {calls}"
        is_answer = BEGIN in cell.source if path.parent.name == "solutions" else "# YOUR CODE HERE" in cell.source
        if calls:
            qid = calls[0]
            assert not is_answer, where
            assert qid.startswith(ex + "."), where
            assert _last_statement_is_the_check(cell.source, qid), f"{where}: the check must be the cell's value"
            want = _test_meta(qid)
            assert meta == want, f"{where}: {meta} != {want}"
            assert _points(meta["points"]) == _points(get_question(qid).points) > 0
            assert question_of(meta["grade_id"]) == qid
            assert qid not in tests, f"{where}: a second test cell for {qid}"
            tests[qid] = meta
        elif is_answer:
            answers += 1
            assert meta is not None and meta["grade_id"].startswith(ex + "-") and meta["grade_id"].endswith("-answer")
            assert meta == _answer_meta(meta["grade_id"]), where
            assert question_of(meta["grade_id"]) is None  # never taken for a question's test cell
        else:
            assert meta is None, where
    assert sorted(tests) == sorted(q.id for q in questions_for(ex)), "every question has exactly one test cell"
    assert answers >= 1
    ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
    assert len(ids) == len(set(ids)) and all(GRADE_ID.match(g) for g in ids)
    ipynb = nbformat.reads(jupytext.writes(nb, fmt="ipynb"), as_version=4)
    MetadataValidator().validate_nb(ipynb)  # nbgrader's own check (schema 3, points, unique ids)


def test_exercises_keep_the_solutions_metadata_cell_for_cell():
    for sol, exe in zip(SOLUTIONS, EXERCISES, strict=True):
        a, b = jupytext.read(sol), jupytext.read(exe)
        assert [c.cell_type for c in a.cells] == [c.cell_type for c in b.cells]
        assert [c.metadata.get("nbgrader") for c in a.cells] == [c.metadata.get("nbgrader") for c in b.cells]


def test_every_exercise_has_a_notebook():
    assert [p.name[:4] for p in SOLUTIONS] == exercises()


# ------------------------------------------------------------------ check() as an autograder test

VAR_QK_RIGHT = [("Sum(1, (i, 1, d_k))", "diagonal"), ("d_k", "d_k ones")]
VAR_QK_HALF = [("Sum(1, (i, 1, d_k))", "diagonal"), ("d_k**2", "count")]


@pytest.mark.parametrize("mode", ["autograde", "validate"])
def test_check_is_an_autograder_test_under_nbgrader(monkeypatch, capsys, mode):
    from vidlearn.grading import check

    monkeypatch.delenv("VIDLEARN_CHECK_STRICT", raising=False)
    monkeypatch.setenv("NBGRADER_EXECUTION", mode)
    assert check("ex01.var_qk", lambda: VAR_QK_RIGHT) == 2.0  # the cell's value: nbgrader's score for it
    assert check("ex01.var_qk", lambda: VAR_QK_HALF) == 1.0  # partial credit, as nbgrader reads it
    with pytest.raises(AssertionError, match="ex01.var_qk: 0/2 points"):
        check("ex01.var_qk", lambda: [("d_k", "trust me")])

    def blank(x, dim=-1):
        raise NotImplementedError()

    with pytest.raises(AssertionError, match="ex01.softmax: 0/2"):
        check("ex01.softmax", blank)
    out = capsys.readouterr()
    assert "✅" in out.out and "❌" in out.out and out.err == ""


def test_check_keeps_the_autograders_stderr_clean(monkeypatch, capsys):
    """nbgrader gives a test cell nothing once its output has stderr: a warning from the answer must
    not cost the points it earned."""
    from vidlearn.grading import check

    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")

    def noisy():
        warnings.warn("a student's own warning", UserWarning)
        print("debug output", file=sys.stderr)
        return VAR_QK_RIGHT

    def show(message, category, filename, lineno, file=None, line=None):  # as in a kernel: to sys.stderr
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        monkeypatch.setattr(warnings, "showwarning", show)
        assert check("ex01.var_qk", noisy) == 2.0
    assert capsys.readouterr().err == ""


def test_check_outside_the_autograder_only_prints(monkeypatch, capsys):
    from vidlearn.grading import check

    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("VIDLEARN_CHECK_STRICT", raising=False)
    assert check("ex01.var_qk", lambda: VAR_QK_HALF) is None
    assert check("ex01.var_qk", lambda: [("d_k", "trust me")]) is None
    assert "❌" in capsys.readouterr().out


# ------------------------------------------------------------------ nbgrader itself

NBGRADED = "ex03"  # one exercise keeps the run near 30 s on 2 cores; all seven take minutes
# a student's own later cells, each right after the answer cell it redoes
MISTAKES = {
    "causal_mask": "def causal_mask(T):  # inverted: a frame sees itself and the future\n"
                   "    return torch.ones(T, T, dtype=torch.bool).triu()",
    "causal_pairs_steps": "def causal_pairs_steps():  # the first step is right, the last is not\n"
                          "    return [('Sum(t, (t, 1, T))', 'frame t attends to t frames'), ('T**2/2', 'arithmetic series')]",
}
# what check() (and so nbgrader) and vidlearn grade give the mistakes, question by question: the inverted
# mask passes a quarter of causal_mask's cases and of causal_attention's (which uses it); the chain
# earns its milestone's share
MISTAKE_SCORES = {"ex03-causal_mask": 0.25, "ex03-causal_attention": 0.75, "ex03-kv_cache_step": 3.0,
                  "ex03-causal_pairs": 1.0}


def _ipynb(nb, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    jupytext.write(nb, dest, fmt="ipynb")
    return dest


def _mistake(solution: Path):
    nb = jupytext.read(solution)
    for name, code in MISTAKES.items():
        i = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and f"def {name}(" in c.source)
        nb.cells.insert(i + 1, nbformat.v4.new_code_cell(code))
    return nb


@pytest.fixture(scope="module")
def nbgrader_course(tmp_path_factory):
    """A course directory: the solution released by ``generate_assignment`` (default settings), then three
    submissions autograded: the solution, the blank release and a notebook with known mistakes."""
    from traitlets.config import Config
    from nbgrader.apps import NbGraderAPI
    from nbgrader.api import Gradebook

    root = tmp_path_factory.mktemp("nbgrader-course")
    solution = next(p for p in SOLUTIONS if p.name.startswith(NBGRADED))
    name = solution.stem + ".ipynb"
    _ipynb(jupytext.read(solution), root / "source" / "ps" / name)
    config = Config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.db_assignments = [{"name": "ps"}]
    config.CourseDirectory.db_students = [{"id": s} for s in ("solution", "blank", "mistake")]
    # nothing else: ClearSolutions keeps enforce_metadata and its default code stub, which is what
    # build-exercises writes
    times = {}
    with _alembic_on_path():  # nbgrader runs `alembic`, installed beside this Python
        api = NbGraderAPI(config=config)
        t = time.perf_counter()
        result = api.generate_assignment("ps")
        times["generate_assignment"] = time.perf_counter() - t
        assert result["success"], result.get("log")
        release = root / "release" / "ps" / name
        submissions = {"solution": nbformat.read(root / "source" / "ps" / name, as_version=4),
                       "blank": nbformat.read(release, as_version=4), "mistake": _mistake(solution)}
        for student, nb in submissions.items():
            _ipynb(nb, root / "submitted" / student / "ps" / name)
            (root / "submitted" / student / "ps" / "timestamp.txt").write_text("2026-01-05 12:00:00.000000 UTC")
            t = time.perf_counter()
            result = api.autograde("ps", student)
            times[f"autograde {student}"] = time.perf_counter() - t
            assert result["success"], result.get("log")
    scores = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for student in submissions:
            notebook = gb.find_submission_notebook(solution.stem, "ps", student)
            scores[student] = {g.name: (g.score, g.max_score) for g in notebook.grades}
    print("nbgrader seconds:", {k: round(v, 1) for k, v in times.items()})
    return root, release, scores, times


def test_generate_assignment_releases_the_exercise_unchanged(nbgrader_course):
    _, release, *_ = nbgrader_course
    released = nbformat.read(release, as_version=4)
    exercise = jupytext.read(next(p for p in EXERCISES if p.name.startswith(NBGRADED)))
    assert len(released.cells) == len(exercise.cells)
    for i, (a, b) in enumerate(zip(released.cells, exercise.cells), start=1):
        assert (a.cell_type, a.source) == (b.cell_type, b.source), f"cell {i}"
        ours = b.metadata.get("nbgrader")
        theirs = a.metadata.get("nbgrader")
        assert (theirs is None) == (ours is None), f"cell {i}"
        if ours is not None:  # nbgrader adds its checksum and the cell's type
            assert {k: theirs[k] for k in ours} == ours, f"cell {i}"
    assert released.metadata["vidlearn"]["exercise"] == NBGRADED


def test_nbgrader_autograde_scores_solution_blank_and_mistake(nbgrader_course):
    _, _, scores, _ = nbgrader_course
    questions = {grade_id_of(q.id): float(q.points) for q in questions_for(NBGRADED)}
    # nbgrader's grades: the test cells only (the answer cells are not graded)
    assert {k: v[1] for k, v in scores["solution"].items()} == questions
    assert {k: v[0] for k, v in scores["solution"].items()} == questions
    assert {k: v[0] for k, v in scores["blank"].items()} == dict.fromkeys(questions, 0.0)
    assert {k: v[0] for k, v in scores["mistake"].items()} == MISTAKE_SCORES


def test_nbgrader_agrees_with_vidlearn_grade_on_the_mistake(nbgrader_course):
    from vidlearn.grading.gradebook import grade_submissions
    from vidlearn.grading.sandbox import Limits

    root, _, scores, _ = nbgrader_course
    submitted = root / "submitted" / "mistake" / "ps" / (next(p for p in SOLUTIONS if p.name.startswith(NBGRADED)).stem + ".ipynb")
    # key=None: the public cases, which check() runs in the student's kernel and so under nbgrader. With a
    # teacher's key the grader draws inputs of its own (for this notebook `vidlearn grade` gave 4.75/9:
    # the inverted mask passes one of causal_mask's four public cases and none of the drawn ones); the
    # grade of record comes from there, not from the kernel
    (report,) = grade_submissions([submitted], limits=Limits(timeout=20, memory_mb=2048), key=None)
    assert {grade_id_of(o.question): o.score for o in report.outcomes} == {k: v[0] for k, v in scores["mistake"].items()}


def test_build_exercises_refuses_a_solution_region_outside_a_solution_cell(tmp_path):
    from vidlearn.grading.notebooks import build_exercises

    solutions = tmp_path / "solutions"
    solutions.mkdir()
    (solutions / "ex01_plain.py").write_text("# %%\ndef f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n")
    with pytest.raises(ValueError, match='cell 1: a solution region in a cell without nbgrader metadata "solution": true'):
        build_exercises(solutions, tmp_path / "exercises")
    meta = '{"grade": false, "grade_id": "ex01-f-answer", "locked": false, "schema_version": 3, "solution": true}'
    (solutions / "ex01_plain.py").write_text(f"# %% nbgrader={meta}\ndef f():\n    ### BEGIN SOLUTION\n"
                                             "    return 1\n    ### END SOLUTION\n")
    (written,) = build_exercises(solutions, tmp_path / "exercises")
    text = written.read_text()
    assert f"# %% nbgrader={meta}\ndef f():\n    # YOUR CODE HERE\n    raise NotImplementedError()\n" in text
