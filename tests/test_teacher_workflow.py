"""A teacher's term, end to end through the ``vidlearn`` command: release the exercises, collect
three students' notebooks, grade them, hand back feedback files, read the class summary; and a
student's own ``vidlearn progress``.

The students: alice hands in the reference solution, bob makes a known mistake (divides the
logits by d_k instead of √d_k), carol hands the exercise back untouched.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import jupytext
import pytest

from vidlearn.cli import main
from vidlearn.grading.questions import get_question, questions_for
from vidlearn.grading.reports import read_gradebook

# `vidlearn grade` and `progress` make a grading key in the user's config folder on first use: the tests
# give them one of their own, never the real one.
os.environ["XDG_CONFIG_HOME"] = os.environ.setdefault("VIDLEARN_TEST_CONFIG", tempfile.mkdtemp(prefix="vidlearn-cfg-"))

ROOT = Path(__file__).resolve().parents[1]
SDPA = "ex01.scaled_dot_product_attention"
STUB = "def scaled_dot_product_attention(q, k, v, mask=None):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"
BOB = (
    "def scaled_dot_product_attention(q, k, v, mask=None):\n"
    "    logits = q @ k.transpose(-2, -1) / q.shape[-1]  # the mistake: d_k, not its square root\n"
    "    if mask is not None:\n"
    "        logits = logits.masked_fill(~mask, float('-inf'))\n"
    "    top = logits.amax(-1, keepdim=True)\n"
    "    e = (logits - top.masked_fill(top == float('-inf'), 0)).exp()\n"
    "    s = e.sum(-1, keepdim=True)\n"
    "    return e / s.masked_fill(s == 0, 1) @ v\n"
)


def _as_notebook(text: str, path: Path) -> Path:
    jupytext.write(jupytext.reads(text, fmt="py:percent"), path, fmt="ipynb")
    return path


@pytest.fixture(scope="module")
def term(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("term")
    release, collected, out = tmp / "release", tmp / "collected", tmp / "out"
    collected.mkdir()
    out.mkdir()
    # 1. release: the student notebooks are generated from the reference solutions
    assert main(["build-exercises", "--solutions", str(ROOT / "solutions"), "--exercises", str(release)]) == 0
    exercise = (release / "ex01_attention.py").read_text()
    assert STUB in exercise  # the part bob fills in is there, empty
    # 2. collect: each student's saved notebook, renamed as students do
    _as_notebook((ROOT / "solutions" / "ex01_attention.py").read_text(), collected / "alice_ex01.ipynb")
    _as_notebook(exercise.replace(STUB, BOB), collected / "bob-ex01-final.ipynb")
    _as_notebook(exercise, collected / "carol_ex01.ipynb")
    # 3. grade, with feedback files and a class summary
    gradebook, feedback, summary = out / "gradebook.csv", out / "feedback", out / "summary.md"
    rc = main(["grade", *map(str, sorted(collected.glob("*.ipynb"))), "--out", str(gradebook), "--feedback",
               str(feedback), "--summary", str(summary), "--jobs", "2", "--quiet"])
    assert rc == 0
    return dict(gradebook=gradebook, feedback=feedback, summary=summary, release=release)


def _scores(rows, who):
    return {r["question"]: (float(r["score"]), float(r["max_score"]), r["misconception"])
            for r in rows if Path(r["submission"]).name.startswith(who)}


def test_gradebook_scores_each_student(term):
    rows = read_gradebook(term["gradebook"])
    questions = [q.id for q in questions_for("ex01")]
    alice, bob, carol = (_scores(rows, who) for who in ("alice", "bob", "carol"))
    assert set(alice) == set(bob) == set(carol) == set(questions)
    assert all(score == top for score, top, _ in alice.values())
    assert all(score == 0 for score, _, _ in carol.values())
    score, top, mistake = bob[SDPA]
    assert score < top and mistake == "divides by d_k"
    assert all(s == 0 for q, (s, _, _) in bob.items() if q != SDPA)  # bob only did part 2


def test_every_student_gets_a_readable_feedback_file(term):
    files = sorted(p.name for p in term["feedback"].glob("*.md"))
    assert files == ["alice_ex01.md", "bob-ex01-final.md", "carol_ex01.md"]
    bob = (term["feedback"] / "bob-ex01-final.md").read_text()
    first_hint = next(m for m in get_question(SDPA).misconceptions if m.name == "divides by d_k").hints[0]
    assert "divides by d_k" in bob and first_hint in bob
    assert f"❌ {SDPA}" in bob
    alice = (term["feedback"] / "alice_ex01.md").read_text()
    assert "❌" not in alice and alice.count("✅") == len(questions_for("ex01"))


def test_class_summary_names_the_most_frequent_mistake(term):
    rows = [r for r in read_gradebook(term["gradebook"]) if r["question"] == SDPA]
    mean = sum(float(r["score"]) for r in rows) / len(rows)
    text = term["summary"].read_text()
    line = next(l for l in text.splitlines() if l.startswith(f"| {SDPA} |"))
    assert f"| 3 | {mean:.2f} / 4 " in line and "divides by d_k (1)" in line
    assert "| 1 |" in line  # one student with full marks
    png = term["summary"].with_suffix(".png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # the summary can be rebuilt from the CSV alone
    again = term["summary"].with_name("again.md")
    assert main(["summary", str(term["gradebook"]), "--out", str(again)]) == 0
    assert again.read_text() == text


def test_summary_rejects_a_file_that_is_not_a_gradebook(tmp_path, capsys):
    bad = tmp_path / "marks.csv"
    bad.write_text("name,mark\nalice,10\n")
    assert main(["summary", str(bad), "--out", str(tmp_path / "s.md")]) == 2
    assert "not a vidlearn gradebook" in capsys.readouterr().err


def test_student_progress_marks_what_passes(term, tmp_path, capsys, monkeypatch):
    work = tmp_path / "exercises"
    work.mkdir()
    (work / "ex01_attention.py").write_text((ROOT / "solutions" / "ex01_attention.py").read_text())
    (work / "ex02_positional_encoding.py").write_text((term["release"] / "ex02_positional_encoding.py").read_text())
    monkeypatch.chdir(tmp_path)  # the default: ./exercises, as a student runs it from the course folder
    assert main(["progress"]) == 0
    out = capsys.readouterr().out
    ex01 = [l for l in out.splitlines() if l.strip().startswith(("✅", "⬜", "🟡")) and "ex01." in l]
    ex02 = [l for l in out.splitlines() if l.strip().startswith(("✅", "⬜", "🟡")) and "ex02." in l]
    assert len(ex01) == len(questions_for("ex01")) and all(l.strip().startswith("✅") for l in ex01)
    assert len(ex02) == len(questions_for("ex02")) and all(l.strip().startswith("⬜") for l in ex02)
    total = sum(q.points for q in questions_for("ex01"))
    assert f"total {total:g}/{total + sum(q.points for q in questions_for('ex02')):g} points" in out


def test_progress_explains_what_is_missing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["progress"]) == 2
    assert "no exercise notebooks found" in capsys.readouterr().err
    assert main(["progress", "nowhere/ex01_attention.py"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["progress", "--jobs", "0"]) == 2
    assert "--jobs must be >= 1" in capsys.readouterr().err
