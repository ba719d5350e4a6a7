"""What the teacher and the students read after grading: per-student feedback files and a class summary.

* :func:`write_feedback` — one Markdown file per submission, in the student's words: score per
  question, what went wrong on the first failing case, the misconception it matched and its
  first hint (the same text ``check()`` shows in the notebook).
* :func:`summarise` / :func:`write_summary` — per question: submissions, mean score, share of
  full marks, and the most frequent misconception; as Markdown and as a bar chart, so a teacher
  sees at a glance what the class got wrong.
* :func:`read_gradebook` — the rows of a gradebook CSV (what ``vidlearn grade --out`` wrote),
  so the summary can be rebuilt from the CSV alone.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from vidlearn.grading.gradebook import COLUMNS, SubmissionReport
from vidlearn.grading.questions import get_question
from vidlearn.grading.scoring import misconception as find_misconception

__all__ = ["write_feedback", "QuestionSummary", "summarise", "read_gradebook", "write_summary", "summary_markdown"]


def _safe_stem(name: str) -> str:
    # a submission's file name becomes a file name of ours: keep it to a harmless alphabet
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem).strip("._") or "submission"
    return stem[:100]


def _first_hint(question_id: str, name: str | None) -> str | None:
    try:
        q = get_question(question_id)
    except KeyError:
        return None
    m = find_misconception(q, name)
    tiers = m.hints if m is not None else q.hints
    return tiers[0] if tiers else None


def feedback_markdown(report: SubmissionReport) -> str:
    """A student's feedback for one submission, as Markdown."""
    name = Path(report.submission).name
    lines = [f"# Feedback: {name}", ""]
    if report.exercise is None:
        lines += ["This file could not be graded: " + (report.notes[0] if report.notes else "unknown exercise."), ""]
    lines += [f"**Exercise {report.exercise or '?'}: {report.score:g} / {report.max_score:g} points**", ""]
    for o in report.outcomes:
        mark = "✅" if o.score == o.max_score else "❌"
        lines.append(f"## {mark} {o.question}: {o.score:g} / {o.max_score:g}")
        lines.append("")
        if o.score < o.max_score:
            lines.append(o.feedback)
            if o.misconception:
                lines.append("")
                lines.append(f"This looks like a known mistake: *{o.misconception}*.")
            tip = _first_hint(o.question, o.misconception)
            if tip and tip not in o.feedback:
                lines += ["", f"Hint: {tip}"]
            lines += ["", f'In your notebook, `check("{o.question}", ...)` and `hint("{o.question}")` say more.']
        else:
            lines.append("All test cases pass.")
        lines.append("")
    for note in report.notes:
        lines.append(f"- Note: {note}")
    return "\n".join(lines).rstrip() + "\n"


def write_feedback(reports: list[SubmissionReport], folder: Path) -> list[Path]:
    """Write ``folder/<submission>.md`` for every report; two submissions with the same file name
    (from different folders) get numbered names. Returns the paths written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    used: Counter = Counter()
    written = []
    for r in reports:
        stem = _safe_stem(r.submission)
        used[stem] += 1
        path = folder / (f"{stem}.md" if used[stem] == 1 else f"{stem}-{used[stem]}.md")
        path.write_text(feedback_markdown(r), encoding="utf-8")
        written.append(path)
    return written


@dataclass
class QuestionSummary:
    """How a class did on one question."""

    question: str
    submissions: int
    mean_score: float
    max_score: float
    full_marks: int
    top_misconception: str | None
    top_misconception_count: int

    @property
    def mean_fraction(self) -> float:
        return self.mean_score / self.max_score if self.max_score else 0.0


def _num(text: str) -> float:
    return float(text) if text not in ("", None) else 0.0


def read_gradebook(path: Path) -> list[dict[str, str]]:
    """Rows of a gradebook CSV; a file without the gradebook's columns is an error that says so."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path} is not a vidlearn gradebook: missing columns {missing}")
        return list(reader)


def summarise(rows: list[dict[str, str]]) -> list[QuestionSummary]:
    """Per question, in order of first appearance: counts, mean score and the most common misconception."""
    by_question: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_question.setdefault(row["question"], []).append(row)
    out = []
    for qid, qrows in by_question.items():
        scores = [_num(r["score"]) for r in qrows]
        top = max(_num(r["max_score"]) for r in qrows)
        counts = Counter(r["misconception"] for r in qrows if r["misconception"])
        # ties go to the alphabetically first name, so the summary is deterministic
        name, n = min(counts.items(), key=lambda kv: (-kv[1], kv[0])) if counts else (None, 0)
        out.append(QuestionSummary(qid, len(qrows), sum(scores) / len(scores), top,
                                   sum(s == top for s in scores), name, n))
    return out


def summary_markdown(summaries: list[QuestionSummary]) -> str:
    lines = [
        "| question | submissions | mean score | full marks | most frequent misconception |",
        "|---|---:|---:|---:|---|",
    ]
    for s in summaries:
        mis = f"{s.top_misconception} ({s.top_misconception_count})" if s.top_misconception else "—"
        lines.append(f"| {s.question} | {s.submissions} | {s.mean_score:.2f} / {s.max_score:g} "
                     f"({s.mean_fraction:.0%}) | {s.full_marks} | {mis} |")
    return "\n".join(lines) + "\n"


def write_summary(summaries: list[QuestionSummary], markdown_path: Path, plot_path: Path | None = None) -> None:
    """The class summary as a Markdown table, and (``plot_path``) a bar chart of mean scores
    per question, each bar labelled with its most frequent misconception."""
    Path(markdown_path).write_text("# Class summary\n\n" + summary_markdown(summaries), encoding="utf-8")
    if plot_path is None:
        return
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed on a grading server
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 0.45 * len(summaries) + 1.2))
    names = [s.question for s in summaries][::-1]
    fractions = [s.mean_fraction for s in summaries][::-1]
    bars = ax.barh(names, fractions, color=["tab:green" if f >= 0.8 else "tab:orange" if f >= 0.5 else "tab:red"
                                           for f in fractions])
    for bar, s in zip(bars, summaries[::-1]):
        if s.top_misconception:
            ax.text(0.01, bar.get_y() + bar.get_height() / 2, f"{s.top_misconception} ({s.top_misconception_count})",
                    va="center", fontsize=7, color="black")
    ax.set_xlim(0, 1)
    ax.set_xlabel("mean score (fraction of the points)")
    ax.set_title("What the class got right, and the most frequent mistake per question", fontsize=10)
    fig.tight_layout()
    fig.savefig(plot_path, dpi=100)
    plt.close(fig)
