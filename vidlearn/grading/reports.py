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
import hashlib
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from vidlearn.grading import inert
from vidlearn.grading.gradebook import COLUMNS, SubmissionReport, atomic_write
from vidlearn.grading.questions import get_question
from vidlearn.grading.scoring import misconception as find_misconception

__all__ = ["write_feedback", "feedback_names", "QuestionSummary", "summarise", "read_gradebook", "write_summary",
           "summary_markdown"]


def _safe_stem(name: str) -> str:
    # a submission's file name becomes a file name of ours: a harmless alphabet, no hidden file
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem).lstrip(".-") or "submission"
    return stem[:100]


def feedback_names(submissions: list[str]) -> list[str]:
    """One feedback file name per submission, all different (also to a case-insensitive file system),
    and never one that another submission could take from its owner: a name that had to be cleaned
    up carries a hash of the path, and a name that two submissions would share goes to neither (each
    gets its position in the batch added)."""
    names = []
    for sub in submissions:
        stem = _safe_stem(sub)
        if stem != Path(sub).stem:
            stem += "-" + hashlib.sha256(sub.encode("utf-8", "surrogateescape")).hexdigest()[:8]
        names.append(stem)
    while True:
        seen = Counter(n.lower() for n in names)
        if all(c == 1 for c in seen.values()):
            return [f"{n}.md" for n in names]
        names = [f"{n}-{i + 1:03d}" if seen[n.lower()] > 1 else n for i, n in enumerate(names)]


def _first_hint(question_id: str, name: str | None) -> str | None:
    try:
        q = get_question(question_id)
    except KeyError:
        return None
    m = find_misconception(q, name)
    tiers = m.hints if m is not None else q.hints
    return tiers[0] if tiers else None


MAX_NOTES = 20  # notes listed in a feedback file (the JSON report has them all)


def feedback_markdown(report: SubmissionReport) -> str:
    """A student's feedback for one submission, as Markdown. Everything that came from the submission
    (its name, error texts, what its code returned) is escaped: it cannot add HTML, images, links,
    headings or a score line of its own."""
    md = inert.markdown
    lines = [f"# Feedback: {md(Path(report.submission).name, 200)}", ""]
    if report.exercise is None:
        why = report.notes[0] if report.notes else (report.outcomes[0].feedback if report.outcomes else "unknown exercise")
        lines += ["This file could not be graded: " + md(why, 2000), ""]
    lines += [f"**Exercise {report.exercise or '?'}: {report.score:g} / {report.max_score:g} points**", ""]
    for o in report.outcomes:
        mark = "✅" if o.score == o.max_score else "❌"
        lines.append(f"## {mark} {o.question}: {o.score:g} / {o.max_score:g}")
        lines.append("")
        if o.score < o.max_score:
            lines.append("What happened: " + md(o.feedback, 4000))
            if o.misconception:
                lines.append("")
                lines.append(f"This looks like a known mistake: *{o.misconception}*.")  # the bank's own words
            tip = _first_hint(o.question, o.misconception)
            if tip and tip not in o.feedback:
                lines += ["", f"Hint: {tip}"]
            lines += ["", f'In your notebook, `check("{o.question}", ...)` and `hint("{o.question}")` say more.']
        else:
            lines.append("All test cases pass.")
        lines.append("")
    for note in report.notes[:MAX_NOTES]:
        lines.append(f"- Note: {md(note, 500)}")
    if len(report.notes) > MAX_NOTES:
        lines.append(f"- … and {len(report.notes) - MAX_NOTES} more notes")
    return "\n".join(lines).rstrip() + "\n"


def write_feedback(reports: list[SubmissionReport], folder: Path, names: list[str] | None = None) -> list[Path]:
    """Write one Markdown file per report into ``folder``, named by :func:`feedback_names` (or
    ``names``, computed from the whole batch, so a file never overwrites another's). Returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = names or feedback_names([r.submission for r in reports])
    written = []
    for r, name in zip(reports, names):
        path = folder / name
        atomic_write(path, feedback_markdown(r))
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
    """Rows of a gradebook CSV; a file without the gradebook's columns, or one that is not CSV, is an
    error that says so. Cells may be long (an older gradebook, or one edited by hand)."""
    csv.field_size_limit(min(sys.maxsize, 1 << 30))
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"{path} is not a vidlearn gradebook: missing columns {missing}")
            return list(reader)
    except (csv.Error, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not a readable gradebook: {err}") from None


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
        mis = f"{inert.table_cell(s.top_misconception, 200)} ({s.top_misconception_count})" if s.top_misconception else "—"
        lines.append(f"| {inert.table_cell(s.question, 100)} | {s.submissions} | {s.mean_score:.2f} / {s.max_score:g} "
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
    names = [inert.text(s.question, 60).replace("$", r"\$") for s in summaries][::-1]
    fractions = [s.mean_fraction for s in summaries][::-1]
    bars = ax.barh(names, fractions, color=["tab:green" if f >= 0.8 else "tab:orange" if f >= 0.5 else "tab:red"
                                           for f in fractions])
    for bar, s in zip(bars, summaries[::-1]):
        if s.top_misconception:
            label = inert.text(s.top_misconception, 80).replace("$", r"\$")  # no mathtext from a gradebook cell
            ax.text(0.01, bar.get_y() + bar.get_height() / 2, f"{label} ({s.top_misconception_count})",
                    va="center", fontsize=7, color="black")
    ax.set_xlim(0, 1)
    ax.set_xlabel("mean score (fraction of the points)")
    ax.set_title("What the class got right, and the most frequent mistake per question", fontsize=10)
    fig.tight_layout()
    fig.savefig(plot_path, dpi=100)
    plt.close(fig)
