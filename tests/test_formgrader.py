"""The bridge to nbgrader's formgrader: the sandboxed grader's scores and feedback written into an
nbgrader gradebook through nbgrader's own API, and read back through it.

Five students hand in exercise 1 in nbgrader's collect layout (``submitted/<student>/a1/``): alice
the reference solution, bob a known mistake, carol the blank exercise, eve@uni.edu (an e-mail
username, as JupyterHub often has) whose softmax raises an error with HTML and Markdown links in it,
and a student whose folder name is HTML with a BiDi override: nbgrader would not show that name
safely, so that submission is refused for the gradebook (never written under a made-up id).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from nbconvert.filters.markdown import markdown2html
from nbgrader.api import Gradebook  # nbgrader is in the test extra: without it, these tests fail, not skip

from vidlearn.cli import main
from vidlearn.grading import inert
from vidlearn.grading.formgrader import (NOTEBOOKS, FormgraderError, NotInGradebookLayout, check_nbgrader,
                                         open_gradebook, student_id, student_id_problem, write_nbgrader)
from vidlearn.grading.gradebook import grade_submissions, write_gradebook
from vidlearn.grading.nbgrader import test_cell_id as cell_of
from vidlearn.grading.questions import exercises, questions_for
from vidlearn.grading.reports import read_gradebook
from vidlearn.grading.sandbox import Limits, bwrap_available

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_teacher_workflow import BOB, STUB  # noqa: E402  (bob's known mistake, and the blank answer)

os.environ["XDG_CONFIG_HOME"] = os.environ.setdefault("VIDLEARN_TEST_CONFIG", tempfile.mkdtemp(prefix="vidlearn-cfg-"))

ROOT = Path(__file__).resolve().parents[1]
A = "a1"
NB = "ex01_attention"
HOSTILE_TEXT = "<script>alert(1)</script> <img src=x onerror=alert(2)> [click](javascript:alert(3)) **bold**"
HOSTILE_CELL = f"\n# %%\ndef softmax(x, dim=-1):\n    raise ValueError({HOSTILE_TEXT!r})\n"
HOSTILE_NAME = "<img src=x onerror=alert(4)>\u202e;rm -rf ~ 'eve'"
EVE = "eve@uni.edu"
STUDENTS = ["alice", "bob", "carol", EVE]  # the ids written; HOSTILE_NAME's submission is refused


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("formgrader")
    course = tmp / "course"
    solution = (ROOT / "solutions" / f"{NB}.py").read_text()
    exercise = (ROOT / "exercises" / f"{NB}.py").read_text()
    assert STUB in exercise
    texts = {"alice": solution, "bob": exercise.replace(STUB, BOB), "carol": exercise,
             EVE: solution + HOSTILE_CELL, HOSTILE_NAME: solution}
    paths = []
    for who, text in texts.items():
        folder = course / "submitted" / who / A
        folder.mkdir(parents=True)
        (folder / f"{NB}.py").write_text(text)
        paths.append(folder / f"{NB}.py")
    reports = grade_submissions(paths, limits=Limits(timeout=30.0, memory_mb=2048), jobs=2, key="formgrader-test-key",
                                sandbox=bwrap_available())
    write_gradebook(reports, tmp / "gradebook.csv")
    empty = tmp / "empty"
    empty.mkdir()
    open_gradebook(empty, create=True).close()
    return dict(tmp=tmp, course=course, reports=reports, paths=paths, csv=tmp / "gradebook.csv",
                empty=empty / "gradebook.db")


def _fresh_course(graded, name: str) -> Path:
    """A course folder with an empty gradebook (a copy of one nbgrader made: making one runs alembic,
    seconds each time)."""
    course = graded["tmp"] / name
    course.mkdir()
    shutil.copyfile(graded["empty"], course / "gradebook.db")
    return course


def _counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as con:
        return {t: con.execute(f"select count(*) from {t}").fetchone()[0]
                for t in ("assignment", "notebook", "base_cell", "student", "submitted_assignment",
                          "submitted_notebook", "grade", "comment")}


def test_notebook_names_are_the_course_notebooks():
    assert sorted(f"{stem}.py" for stem in NOTEBOOKS.values()) == sorted(p.name for p in (ROOT / "solutions").glob("ex*.py"))
    assert set(NOTEBOOKS) == set(exercises())


def test_the_student_id_is_the_collect_folder_exactly():
    assert student_id("/c/submitted/alice/a1/ex01_attention.ipynb", "a1") == "alice"
    for name in (EVE, "al ce", "al_ce-9df66b70", "名前", "-rf", ".hidden", "x" * 128):  # never mapped
        assert student_id(f"/c/submitted/{name}/a1/ex01_attention.py", "a1") == name
    for outside in ("/c/bob_ex01.py", "/c/submitted/alice/ex01_attention.py", "/c/submitted/alice/a2/ex01_attention.py"):
        with pytest.raises(NotInGradebookLayout, match=r"collect layout \.\.\./STUDENT/a1/NOTEBOOK"):
            student_id(outside, "a1")


@pytest.mark.parametrize("name", ["", ".", "..", " alice", "alice ", "al\tce", "a\u202eb", "a\u200bb", "a\x1b[31mb",
                                  "a\u2028b", "a\\b", "<b>x</b>", 'a"b', "a'b", "a&b", "a`b", "x" * 129, HOSTILE_NAME])
def test_student_folder_names_nbgrader_could_not_use_are_refused(name):
    assert student_id_problem(name)
    if name not in ("", ".", ".."):  # a path cannot have these as a folder name
        with pytest.raises(NotInGradebookLayout, match="rename the folder") as err:
            student_id(f"/c/submitted/{name}/a1/ex01_attention.py", "a1")
        assert inert.text(str(err.value)) == str(err.value)  # reported escaped


def test_scores_and_comments_reach_nbgrader(graded):
    course = _fresh_course(graded, "fresh")
    result = write_nbgrader(graded["reports"], course, A)
    assert result.created == [NB]
    assert [sid for _, sid, _ in result.written] == STUDENTS
    [why] = result.skipped  # the hostile folder name: refused, reported escaped
    assert "control, format or BiDi characters" in why and "\\u202e" in why and "\u202e" not in why
    csv_rows = read_gradebook(graded["csv"])
    questions = questions_for("ex01")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assignment = gb.find_assignment(A)
        assert [nb.name for nb in assignment.notebooks] == [NB]
        assert assignment.max_score == sum(q.points for q in questions)
        assert {s.id for s in gb.students} == set(STUDENTS)
        for path, report in zip(graded["paths"][:4], graded["reports"][:4]):
            sid = student_id(path, A)
            rows = {r["question"]: float(r["score"]) for r in csv_rows if r["submission"] == inert.csv_cell(str(path))}
            assert set(rows) == {q.id for q in questions}
            for q in questions:
                grade = gb.find_grade(cell_of(q.id), NB, A, sid)
                assert grade.auto_score == rows[q.id] and grade.score == rows[q.id]
                assert grade.manual_score is None and not grade.needs_manual_grade
                assert grade.max_score == q.points
            submission = gb.find_submission(A, sid)
            assert submission.score == pytest.approx(report.score) == pytest.approx(sum(rows.values()))
        alice, bob, carol = (gb.find_submission(A, s).score for s in ("alice", "bob", "carol"))
        assert alice == assignment.max_score and carol == 0 and bob < alice
        sdpa = gb.find_comment(f"ex01-{questions[1].name}-answer", NB, A, "bob").auto_comment
        assert "divides by d_k" in sdpa and "/ 4 points" in sdpa
        # the student's error text reaches formgrader and generate_feedback's HTML only as text
        comment = gb.find_comment("ex01-softmax-answer", NB, A, EVE).auto_comment
        assert "alert(1)" in comment and len(comment) <= 4000
        html = markdown2html(comment)
        for bad in ("<script", "<img", "<a ", "href", "<strong>bold"):
            assert bad not in html, (bad, html)
        assert "&lt;script&gt;" in html
        assert gb.find_comment("ex01-softmax-answer", NB, A, "alice").auto_comment.endswith("All test cases pass.")


def test_rerun_updates_without_duplicating_and_keeps_the_teachers_override(graded):
    course = _fresh_course(graded, "rerun")
    write_nbgrader(graded["reports"], course, A)
    before = _counts(course / "gradebook.db")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        grade = gb.find_grade(cell_of("ex01.softmax"), NB, A, "carol")
        grade.auto_score, grade.manual_score = 1.5, 2.0  # a stale score, and the teacher's override
        comment = gb.find_comment("ex01-softmax-answer", NB, A, "carol")
        comment.manual_comment = "see me"
        gb.db.commit()
    again = write_nbgrader(graded["reports"], course, A)
    assert again.created == [] and len(again.written) == 4
    assert _counts(course / "gradebook.db") == before
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        grade = gb.find_grade(cell_of("ex01.softmax"), NB, A, "carol")
        assert grade.auto_score == 0 and grade.manual_score == 2.0 and grade.needs_manual_grade
        assert gb.find_comment("ex01-softmax-answer", NB, A, "carol").manual_comment == "see me"


def test_a_second_exercise_joins_the_assignment(graded):
    course = _fresh_course(graded, "two")
    write_nbgrader(graded["reports"][:1], course, A)
    ex02 = course / "submitted" / "alice" / A / "ex02_positional_encoding.py"
    ex02.parent.mkdir(parents=True)
    ex02.write_text((ROOT / "solutions" / "ex02_positional_encoding.py").read_text())
    reports = grade_submissions([ex02], limits=Limits(timeout=30.0, memory_mb=2048), key="formgrader-test-key",
                                sandbox=bwrap_available())
    result = write_nbgrader(reports, course, A)
    assert result.created == ["ex02_positional_encoding"]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        submission = gb.find_submission(A, "alice")
        assert submission.score == submission.max_score == sum(q.points for e in ("ex01", "ex02")
                                                               for q in questions_for(e))


def test_a_disagreeing_assignment_is_refused_and_nothing_written(graded):
    course = _fresh_course(graded, "mismatch")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        gb.add_assignment(A)
        gb.add_notebook(NB, A)
        for q in questions_for("ex01"):
            gb.add_grade_cell(cell_of(q.id), NB, A, max_score=3.0 if q.id == "ex01.softmax" else q.points,
                              cell_type="code")
    before = _counts(course / "gradebook.db")
    with pytest.raises(FormgraderError, match=r"ex01-softmax is worth 3 points, ours 2"):
        check_nbgrader(course, A, ["ex01"])
    with pytest.raises(FormgraderError, match=r"ex01-softmax is worth 3 points, ours 2"):
        write_nbgrader(graded["reports"], course, A)
    assert _counts(course / "gradebook.db") == before
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        gb.add_grade_cell("ex01-not_a_question", NB, A, max_score=1.0, cell_type="code")
    with pytest.raises(FormgraderError, match="ex01-not_a_question that the course does not have"):
        write_nbgrader(graded["reports"], course, A)


@pytest.mark.parametrize("name", ["../a1", "a1/b", "", ".a1", "-a1", "a 1", "a1\n", "<b>a1</b>", "x" * 65])
def test_unsafe_assignment_names_are_refused(graded, name):
    course = _fresh_course(graded, f"unsafe{abs(hash(name))}")
    with pytest.raises(FormgraderError, match="not a safe nbgrader assignment name"):
        write_nbgrader(graded["reports"], course, name)
    assert _counts(course / "gradebook.db")["assignment"] == 0


def test_a_course_folder_without_a_gradebook_is_refused(graded, tmp_path):
    with pytest.raises(FormgraderError, match="does not exist"):
        write_nbgrader(graded["reports"], tmp_path / "nowhere", A)
    (tmp_path / "gradebook.db").mkdir()
    with pytest.raises(FormgraderError, match="is not a file"):
        write_nbgrader(graded["reports"], tmp_path, A)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "gradebook.db").write_text("not a database")
    with pytest.raises(FormgraderError, match="cannot open .* not an SQLite database"):
        write_nbgrader(graded["reports"], bad, A)


def _foreign(db: Path) -> None:
    with sqlite3.connect(db) as con:
        con.execute("create table things (id integer primary key, name text)")
        con.execute("insert into things (name) values ('kept')")
    con.close()


@pytest.mark.parametrize("kind, why", [("empty", "it is empty"), ("foreign", "not an nbgrader gradebook"),
                                       ("partial", "lacks the tables alembic_version")])
def test_an_empty_or_foreign_database_is_refused_and_left_as_it_was(graded, tmp_path, kind, why):
    db = tmp_path / "gradebook.db"
    if kind == "empty":
        db.write_bytes(b"")
    elif kind == "foreign":
        _foreign(db)
    else:  # nbgrader's tables, but not the alembic_version nbgrader adds: not a gradebook nbgrader made
        shutil.copyfile(graded["empty"], db)
        with sqlite3.connect(db) as con:
            con.execute("drop table alembic_version")
        con.close()
    before = db.read_bytes()
    for attempt in (lambda: check_nbgrader(tmp_path, A, ["ex01"]), lambda: write_nbgrader(graded["reports"], tmp_path, A)):
        with pytest.raises(FormgraderError, match=why):
            attempt()
        assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gradebook.db"]  # no journal either


def test_a_symlinked_gradebook_is_refused(graded, tmp_path):
    course = _fresh_course(graded, "symlinked")
    (tmp_path / "gradebook.db").symlink_to(course / "gradebook.db")
    for attempt in (lambda: check_nbgrader(tmp_path, A), lambda: write_nbgrader(graded["reports"], tmp_path, A)):
        with pytest.raises(FormgraderError, match="symbolic link"):
            attempt()
    (tmp_path / "gradebook.db").unlink()
    (tmp_path / "gradebook.db").symlink_to(tmp_path / "nowhere.db")  # dangling: nothing made through it
    with pytest.raises(FormgraderError, match="symbolic link"):
        write_nbgrader(graded["reports"], tmp_path, A)
    assert not (tmp_path / "nowhere.db").exists()


def test_two_students_with_the_same_file_name_stay_apart_across_runs(graded):
    course = _fresh_course(graded, "same-stem")
    alice, bob = graded["reports"][:2]
    assert Path(alice.submission).name == Path(bob.submission).name == f"{NB}.py"
    for report in (alice, bob):  # one run each
        assert [sid for _, sid, _ in write_nbgrader([report], course, A).written] == [Path(report.submission).parts[-3]]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assert {s.id for s in gb.students} == {"alice", "bob"}
        assert gb.find_submission(A, "alice").score == pytest.approx(alice.score)
        assert gb.find_submission(A, "bob").score == pytest.approx(bob.score)
        assert bob.score < alice.score


def test_a_folder_named_like_a_former_mapped_id_is_its_own_student(graded):
    course = _fresh_course(graded, "former-mapped")
    alice, bob = graded["reports"][:2]
    reports = [dataclasses.replace(alice, submission=str(course / "submitted" / "al ce" / A / f"{NB}.py")),
               dataclasses.replace(bob, submission=str(course / "submitted" / "al_ce-9df66b70" / A / f"{NB}.py"))]
    result = write_nbgrader(reports, course, A)
    assert [sid for _, sid, _ in result.written] == ["al ce", "al_ce-9df66b70"] and not result.skipped
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assert gb.find_submission(A, "al ce").score == pytest.approx(alice.score)
        assert gb.find_submission(A, "al_ce-9df66b70").score == pytest.approx(bob.score)


def test_a_submission_outside_the_collect_layout_is_not_written(graded):
    course = _fresh_course(graded, "outside")
    alice = graded["reports"][0]
    loose = dataclasses.replace(alice, submission=str(graded["tmp"] / f"{NB}.py"))
    result = write_nbgrader([loose], course, A)
    assert result.written == [] and "collect layout .../STUDENT/a1/NOTEBOOK" in result.skipped[0]
    mistyped = write_nbgrader(graded["reports"], course, "a2")  # the README's layout, ASSIGNMENT mistyped
    assert mistyped.written == [] and len(mistyped.skipped) == len(graded["reports"])
    assert all('not "a2"' in why for why in mistyped.skipped)
    assert _counts(course / "gradebook.db")["student"] == 0


def test_one_student_twice_in_a_batch_is_written_for_neither(graded):
    course = _fresh_course(graded, "twice")
    alice = graded["reports"][0]
    elsewhere = dataclasses.replace(alice, submission=str(graded["tmp"] / "other" / "alice" / A / f"{NB}.py"))
    for reports in ([alice, alice], [alice, elsewhere]):
        result = write_nbgrader(reports, course, A)
        assert result.written == [] and len(result.skipped) == 2 and "more than one" in result.skipped[0]


def test_an_assignment_made_by_nbgrader_generate_assignment_takes_our_grades(graded):
    """nbgrader's own release of the exercise (its cells from the solutions' nbgrader metadata) agrees
    with the registry; our grades and comments land on its cells."""
    import jupytext

    course = graded["tmp"] / "generated"
    source = course / "source" / A
    source.mkdir(parents=True)
    jupytext.write(jupytext.read(ROOT / "solutions" / f"{NB}.py"), source / f"{NB}.ipynb", fmt="ipynb")
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    run = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", A], cwd=course, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    check_nbgrader(course, A, ["ex01"])
    result = write_nbgrader(graded["reports"], course, A)
    assert result.created == [] and len(result.written) == 4
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assert gb.find_submission(A, "alice").score == gb.find_assignment(A).max_score
        assert gb.find_submission(A, "carol").score == 0
        shared = gb.find_comment("ex01-split_heads-answer", NB, A, "carol").auto_comment
        assert "ex01.split_heads" in shared and "ex01.merge_heads" in shared  # one answer cell, two questions


def test_vidlearn_grade_nbgrader_fills_the_gradebook(graded, capsys):
    course = graded["tmp"] / "cli"
    files = []
    for name in (EVE, HOSTILE_NAME, None):  # None: a file outside the collect layout
        folder = course / "submitted" / name / A if name else course / "loose"
        folder.mkdir(parents=True)
        shutil.copy(graded["paths"][0], folder / f"{NB}.py")
        files.append(str(folder / f"{NB}.py"))
    out = graded["tmp"] / "cli.csv"
    sandbox = [] if bwrap_available() else ["--no-sandbox"]
    rc = main(["grade", "--out", str(out), "--quiet", *sandbox, "--nbgrader", str(course), A, "--", *files])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert err.count("not written") == 2 and "\\u202e" in err and "\u202e" not in err
    assert f"collect layout .../STUDENT/{A}/NOTEBOOK" in err
    rows = read_gradebook(out)
    assert {r["submission"] for r in rows} == {inert.csv_cell(f) for f in files}  # all three in the CSV
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assert [s.id for s in gb.students] == [EVE]
        submission = gb.find_submission(A, EVE)
        assert submission.score == submission.max_score == sum(float(r["score"]) for r in rows
                                                               if r["submission"] == inert.csv_cell(files[0]))


def test_vidlearn_grade_nbgrader_refuses_before_grading(graded, capsys):
    course = _fresh_course(graded, "cli-mismatch")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        gb.add_assignment(A)
        gb.add_notebook(NB, A)
        gb.add_grade_cell("ex01-softmax", NB, A, max_score=5.0, cell_type="code")
    out = graded["tmp"] / "refused.csv"
    for assignment, why in ((A, "ex01-softmax is worth 5 points, ours 2"), ("../a1", "not a safe nbgrader assignment")):
        rc = main(["grade", "--out", str(out), "--quiet", "--nbgrader", str(course), assignment, "--",
                   str(graded["paths"][0])])
        assert rc == 2 and why in capsys.readouterr().err
        assert not out.exists()  # refused before any grading
