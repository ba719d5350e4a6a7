"""Feedback files and the class summary, from hand-made reports and rows."""

import re
from pathlib import Path

from vidlearn.grading.gradebook import SubmissionReport
from vidlearn.grading.questions import Outcome
from vidlearn.grading.reports import feedback_markdown, feedback_names, summarise, write_feedback


def _row(sub, q, score, top, mis=""):
    return {"submission": sub, "exercise": q.split(".")[0], "question": q, "score": str(score),
            "max_score": str(top), "misconception": mis, "feedback": ""}


def test_summary_counts_means_and_the_most_frequent_misconception():
    rows = [
        _row("a", "ex01.softmax", 2, 2), _row("b", "ex01.softmax", 1, 2, "no shift"),
        _row("c", "ex01.softmax", 0, 2, "wrong axis"), _row("d", "ex01.softmax", 0, 2, "wrong axis"),
        _row("a", "ex01.var_qk", 0, 2, "b"), _row("b", "ex01.var_qk", 0, 2, "a"),  # a tie: alphabetical
    ]
    soft, var = summarise(rows)
    assert (soft.question, soft.submissions, soft.mean_score, soft.full_marks) == ("ex01.softmax", 4, 0.75, 1)
    assert (soft.top_misconception, soft.top_misconception_count) == ("wrong axis", 2)
    assert soft.mean_fraction == 0.375
    assert var.top_misconception == "a" and var.full_marks == 0


def test_feedback_files_have_safe_distinct_names(tmp_path):
    reports = [
        SubmissionReport("/x/alice ex01 (1).ipynb", "ex01", [Outcome("ex01.softmax", 2, 2, "all pass")]),
        SubmissionReport("/y/alice ex01 (1).ipynb", "ex01", [Outcome("ex01.softmax", 0, 2, "wrong", "wrong axis")]),
        SubmissionReport("/z/../../etc.ipynb", None, [], notes=["not a readable notebook: bad JSON"]),
    ]
    paths = write_feedback(reports, tmp_path / "fb")
    names = [p.name for p in paths]
    assert names[2] == "etc.md" and len(set(names)) == 3
    assert all(re.fullmatch(r"alice_ex01_1_-[0-9a-f]{8}\.md", n) for n in names[:2])  # cleaned up: a hash of the path
    assert all(p.parent == tmp_path / "fb" for p in paths)
    assert "could not be graded: `not a readable notebook: bad JSON`" in paths[2].read_text()


def test_a_name_two_submissions_would_share_goes_to_neither():
    # "ex01_bob-.py" must not take the clean name from "ex01_bob.py", nor "EX01_BOB.py" on macOS
    assert feedback_names(["a/ex01_bob-.py", "b/ex01_bob.py"]) == ["ex01_bob-.md", "ex01_bob.md"]
    names = feedback_names(["a/ex01_bob.py", "b/ex01_bob.py", "c/EX01_BOB.py", "d/ex01_bob-002.py"])
    assert "ex01_bob.md" not in names and len({n.lower() for n in names}) == 4, names


def test_feedback_names_the_misconception_and_its_first_hint():
    from vidlearn.grading.questions import get_question

    q = get_question("ex01.softmax")
    m = q.misconceptions[0]
    text = feedback_markdown(SubmissionReport("s.ipynb", "ex01", [Outcome(q.id, 0.5, 2, "3/4 cases fail", m.name)]))
    assert f"*{m.name}*" in text and m.hints[0] in text and "0.5 / 2" in text
    assert Path("s.ipynb").name in text
