"""The teacher's grader: a batch of submissions in, a gradebook (CSV, and JSON) out.

Each submission runs in its own sandboxed worker (:mod:`vidlearn.grading.sandbox`); this
process sends it the test inputs and scores what comes back. Expected values are computed
here and never leave this process; the student's objects are never imported or called here.

Failures are contained as tightly as possible:

* a cell that hangs or kills the process is skipped and the notebook re-run without it;
* a question that hangs or crashes scores zero ("timed out", "crashed"), and a fresh
  worker grades the remaining questions;
* an unreadable file scores zero on every question of its exercise, with the reason;
* one submission never affects another, and the gradebook is written atomically.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vidlearn.grading import wire
from vidlearn.grading.notebooks import read_submission
from vidlearn.grading.questions import Outcome, exercises, questions_for
from vidlearn.grading.sandbox import Limits, Worker, WorkerDied, WorkerTimeout
from vidlearn.grading.scoring import score, zero

__all__ = ["SubmissionReport", "grade_submissions", "write_gradebook", "COLUMNS"]

COLUMNS = ["submission", "exercise", "question", "score", "max_score", "misconception", "feedback"]
EXTRA_ATTEMPTS = 3  # restarts beyond one per question: cells that hang or crash the process


@dataclass
class SubmissionReport:
    submission: str
    exercise: str | None
    outcomes: list[Outcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def score(self) -> float:
        return round(sum(o.score for o in self.outcomes), 2)

    @property
    def max_score(self) -> float:
        return sum(o.max_score for o in self.outcomes)


@dataclass
class _Raw:
    """What running one submission produced, before scoring (scoring happens in the main thread)."""

    path: Path
    exercise: str | None
    answers: dict = field(default_factory=dict)  # question id -> ("results", [...]) | ("fail", reason)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


def _encode_calls(question) -> list:
    return [[[wire.encode(a) for a in c.args], {k: wire.encode(v) for k, v in c.kwargs.items()}] for c in question.cases()]


def _decode_results(msg: dict, n_cases: int):
    results = msg.get("results")
    if not isinstance(results, list) or len(results) != n_cases:
        return ("fail", "the grader received a malformed answer")
    decoded = []
    for item in results:
        if not (isinstance(item, list) and len(item) == 2 and item[0] in ("ok", "error")):
            return ("fail", "the grader received a malformed answer")
        status, payload = item
        if status == "error":
            decoded.append(("error", str(payload)[:500]))
            continue
        try:
            decoded.append(("ok", wire.decode(payload)))
        except wire.WireError as err:
            decoded.append(("error", f"returned a value that cannot be read ({err})"))
        except Exception as err:  # decode validates; anything it did not foresee is still a bad answer
            decoded.append(("error", f"returned a value that cannot be read ({type(err).__name__})"))
    return ("results", decoded)


def _run(path: Path, limits: Limits, hide: list[Path]) -> _Raw:
    """Run one submission in sandboxed workers and collect its raw answers (a worker thread)."""
    start = time.monotonic()
    sub = read_submission(path, exercises())
    raw = _Raw(path, sub.exercise)
    if sub.error:
        raw.error = sub.error
        raw.seconds = time.monotonic() - start
        return raw
    questions = questions_for(sub.exercise)
    pending = list(questions)
    skip: set[int] = set()
    for _attempt in range(len(questions) + EXTRA_ATTEMPTS):
        if not pending:
            break
        worker = Worker(limits, hide)
        try:
            done = _attempt_run(worker, sub, questions, pending, skip, raw, limits)
        finally:
            worker.kill()  # whatever happened, no process or cgroup outlives the attempt
        if done:
            break
    for q in pending:  # attempts exhausted
        raw.answers.setdefault(q.id, ("fail", "the notebook could not be run to the end"))
    raw.seconds = time.monotonic() - start
    return raw


def _attempt_run(worker: Worker, sub, questions, pending: list, skip: set, raw: _Raw, limits: Limits) -> bool:
    """One worker's go at the notebook and the pending questions (``pending`` shrinks as they
    are answered). True when grading is finished, False when a fresh worker must go on."""
    current_cell, cell_errors = None, {}
    try:
        worker.start(sub.cells, skip, limits.timeout * (len(questions) + 2))
        deadline = time.monotonic() + limits.timeout
        while True:
            msg = worker.receive(deadline)
            if msg.get("event") == "cell" and isinstance(msg.get("index"), int):
                current_cell = msg["index"]
            elif msg.get("event") == "ready" and isinstance(msg.get("errors"), dict):
                # keys are cell indices; anything else (forged by the submission) is dropped
                cell_errors = {k: str(v)[:300] for k, v in msg["errors"].items()
                               if isinstance(k, str) and k.isascii() and k.isdigit() and int(k) < len(sub.cells)}
                break
            else:
                raise WorkerDied("the worker broke the protocol")
    except (WorkerTimeout, WorkerDied) as err:
        what = "ran past the time limit" if isinstance(err, WorkerTimeout) else "stopped the grader's process"
        if current_cell is not None and current_cell not in skip and 0 <= current_cell < len(sub.cells):
            skip.add(current_cell)
            raw.notes.append(f"cell {current_cell + 1} {what}; graded without it")
            return False
        for q in pending:
            raw.answers[q.id] = ("fail", f"the notebook {what} before it finished")
        pending.clear()
        return True
    for index, text in sorted(cell_errors.items(), key=lambda kv: int(kv[0])):
        note = f"cell {int(index) + 1}: {text}"
        if note not in raw.notes:
            raw.notes.append(note)
    for q in list(pending):
        pending.remove(q)
        try:
            worker.send({"cmd": "call", "name": q.name, "calls": _encode_calls(q)})
            msg = worker.receive(time.monotonic() + limits.timeout)
        except WorkerTimeout:
            raw.answers[q.id] = ("fail", f"{q.name} ran past the {limits.timeout:g} s limit")
            return False
        except WorkerDied as err:
            raw.answers[q.id] = ("fail", f"{q.name} crashed the grader's process ({err})")
            return False
        if msg.get("event") == "missing":
            why = str(msg.get("why", f"{q.name} is not defined"))[:200]
            errs = "; ".join(f"cell {int(k) + 1}: {v}" for k, v in cell_errors.items())
            raw.answers[q.id] = ("fail", why + (f" (errors while running the notebook: {errs})" if errs else ""))
        elif msg.get("event") == "results":
            raw.answers[q.id] = _decode_results(msg, len(q.cases()))
        else:
            raw.answers[q.id] = ("fail", "the grader received a malformed answer")
    worker.close()
    return True


def _score(raw: _Raw) -> SubmissionReport:
    report = SubmissionReport(str(raw.path), raw.exercise, notes=list(raw.notes), seconds=round(raw.seconds, 2))
    if raw.exercise is None:
        report.outcomes = [Outcome("unknown", 0.0, 0.0, raw.error or "unknown exercise")]
        return report
    for q in questions_for(raw.exercise):
        if raw.error:
            report.outcomes.append(zero(q, raw.error))
            continue
        kind, value = raw.answers.get(q.id, ("fail", "not graded"))
        report.outcomes.append(zero(q, value) if kind == "fail" else score(q, value))
    return report


def _failed(path: Path, reason: str) -> SubmissionReport:
    """Zero on every question, with the reason: for a submission the grader itself choked on."""
    sub_exercise = read_submission(path, exercises()).exercise
    raw = _Raw(path, sub_exercise, error=reason)
    return _score(raw)


def grade_submissions(
    paths: list[Path], *, limits: Limits = Limits(), jobs: int = 1, hide: list[Path] = (), progress=None
) -> list[SubmissionReport]:
    """Grade every submission; reports come back in the order of ``paths``."""
    paths = [Path(p) for p in paths]
    hide = list(hide) + sorted({p.resolve().parent for p in paths})
    reports: dict[int, SubmissionReport] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(_run, p, limits, hide): i for i, p in enumerate(paths)}
        for done, fut in enumerate(as_completed(futures), start=1):
            i = futures[fut]
            try:
                reports[i] = _score(fut.result())  # scoring (sympy, time limits) stays in this thread
            except Exception as err:  # a grader bug must cost one submission its grade, not the batch
                reports[i] = _failed(paths[i], f"internal grader error: {type(err).__name__}: {err}")
            if progress:
                progress(done, len(paths), reports[i])
    return [reports[i] for i in range(len(paths))]


def _atomic_write(path: Path, text: str) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _cell(text: str) -> str:
    """Neutralise spreadsheet formulas: a feedback text that begins with = + - @ stays text."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def write_gradebook(reports: list[SubmissionReport], csv_path: Path, json_path: Path | None = None) -> None:
    """One CSV row per submission and question; the JSON report adds notes and timings."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    for r in reports:
        for o in r.outcomes:
            writer.writerow({
                "submission": _cell(r.submission), "exercise": r.exercise or "", "question": o.question,
                "score": f"{o.score:g}", "max_score": f"{o.max_score:g}",
                "misconception": o.misconception or "", "feedback": _cell(o.feedback),
            })
    _atomic_write(csv_path, buf.getvalue())
    if json_path is not None:
        data = [
            {**{k: v for k, v in asdict(r).items() if k != "outcomes"}, "score": r.score, "max_score": r.max_score,
             "questions": [asdict(o) for o in r.outcomes]}
            for r in reports
        ]
        _atomic_write(json_path, json.dumps(data, indent=2))


def print_progress(done: int, total: int, report: SubmissionReport) -> None:
    name = Path(report.submission).name
    print(f"[{done}/{total}] {name}: {report.score:g}/{report.max_score:g} points ({report.seconds:.1f} s)",
          file=sys.stderr, flush=True)
