"""Feedback files and the class summary, from hand-made reports and rows."""

from pathlib import Path

from vidlearn.grading.gradebook import SubmissionReport
from vidlearn.grading.questions import Outcome
from vidlearn.grading.reports import feedback_markdown, summarise, write_feedback


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
    assert [p.name for p in paths] == ["alice_ex01_1.md", "alice_ex01_1-2.md", "etc.md"]
    assert all(p.parent == tmp_path / "fb" for p in paths)
    assert "could not be graded: not a readable notebook" in paths[2].read_text()


def test_feedback_names_the_misconception_and_its_first_hint():
    from vidlearn.grading.questions import get_question

    q = get_question("ex01.softmax")
    m = q.misconceptions[0]
    text = feedback_markdown(SubmissionReport("s.ipynb", "ex01", [Outcome(q.id, 0.5, 2, "3/4 cases fail", m.name)]))
    assert f"*{m.name}*" in text and m.hints[0] in text and "0.5 / 2" in text
    assert Path("s.ipynb").name in text
