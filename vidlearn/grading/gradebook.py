"""The teacher's grader: a batch of submissions in, a gradebook (CSV, and JSON) out.

Each submission runs in its own sandboxed worker (:mod:`vidlearn.grading.sandbox`); this
process sends it the test inputs, drawn from the teacher's secret key, and scores what comes
back. Expected values are computed here and never leave this process; the student's objects are
never imported or called here, and derivations are checked in a bounded child process.

Failures are contained as tightly as possible:

* a worker that does not start in time is started once more;
* a cell that hangs or kills the process is skipped and the notebook re-run without it;
* a question that hangs or crashes scores zero ("timed out", "crashed"), and the rest are still
  graded (each question runs in a child of the worker, so the worker itself survives);
* an unreadable file scores zero on every question of its exercise, with the reason;
* one submission never affects another; ``on_report`` sees each report as soon as it is scored,
  so what has been graded survives a crash or Ctrl-C.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from vidlearn.grading import inert, wire
from vidlearn.grading.sandbox import START_SECONDS, Limits, Worker, WorkerDied, WorkerTimeout
from vidlearn.grading.submissions import read_submission

# The question bank (torch, sympy, the course library) is imported only once the first workers
# are starting, so that their start-up and this process's imports overlap.

__all__ = ["SubmissionReport", "grade_submissions", "write_gradebook", "atomic_write", "COLUMNS", "max_seconds", "Interrupted"]

COLUMNS = ["submission", "exercise", "question", "score", "max_score", "misconception", "feedback"]
EXTRA_ATTEMPTS = 3  # restarts for cells that hang or crash the worker
MAX_QUESTIONS = 20  # for the CPU-time rlimit of a worker (no exercise has this many)
GRACE = 5.0  # seconds the grader waits beyond a question's limit (the worker enforces the limit itself)
MAX_CELL_ERRORS = 3  # cell errors quoted in a question's feedback


def max_seconds(limits: Limits, n_questions: int, n_derivations: int = 0) -> float:
    """The longest one submission can take: every attempt's start-up and notebook run, one start-up
    retry, every question once (a question that hangs costs its limit, not a restart), and the
    bounded check of each derivation answer."""
    from vidlearn.bounded import wall_limit
    from vidlearn.grading.scoring import DERIVATION_BUDGET

    attempts = 1 + EXTRA_ATTEMPTS
    return ((attempts + 1) * START_SECONDS + attempts * limits.timeout + n_questions * (limits.timeout + GRACE)
            + n_derivations * wall_limit(DERIVATION_BUDGET + 5))


@dataclass
class SubmissionReport:
    submission: str
    exercise: str | None
    outcomes: list = field(default_factory=list)  # of questions.Outcome
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
    """What running one submission produced, before scoring."""

    path: Path
    exercise: str | None
    case_key: str | None = None  # what this submission's test inputs were drawn from
    answers: dict = field(default_factory=dict)  # question id -> ("results", [...]) | ("fail", reason)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


class Interrupted(Exception):
    """Grading was stopped (Ctrl-C); the reports finished so far went to ``on_report``."""


class _Batch:
    """What the threads of one batch share: the options, the stop flag and the live workers."""

    def __init__(self, limits: Limits, hide: list[Path], key: str | None, sandbox: bool, per_file: bool):
        self.limits, self.hide, self.key, self.sandbox, self.per_file = limits, hide, key, sandbox, per_file
        self.stop = threading.Event()
        self._live: set[Worker] = set()
        self._lock = threading.Lock()
        # tearing a sandbox down (reaping it, removing its cgroup) takes a while: a thread of its own
        # does it, so that the slot starts its next submission at once
        self.reaper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vidlearn-reaper")

    def worker(self) -> Worker:
        if self.stop.is_set():
            raise Interrupted()
        w = Worker(self.limits, self.hide, sandbox=self.sandbox)
        with self._lock:
            self._live.add(w)
        return w

    def done(self, w: Worker) -> None:
        w.stop()  # whatever happened, nothing of the sandbox runs on (SIGKILL now; reaped by the reaper)
        self.reaper.submit(self._reap, w)

    def _reap(self, w: Worker) -> None:
        w.kill()
        with self._lock:
            self._live.discard(w)

    def kill_all(self) -> None:
        self.stop.set()
        with self._lock:
            live = list(self._live)
        for w in live:
            w.kill()


def _encode_calls(question, key) -> list:
    return [[[wire.encode(a) for a in c.args], {k: wire.encode(v) for k, v in c.kwargs.items()}]
            for c in question.cases(key)]


def _decode_results(msg: dict, n_cases: int):
    results = msg.get("results")
    if not isinstance(results, list) or len(results) != n_cases:
        return ("fail", "the grader received a malformed answer")
    decoded = []
    for item in results:
        if not (isinstance(item, list) and len(item) == 2 and item[0] in ("ok", "error", "forbidden")):
            return ("fail", "the grader received a malformed answer")
        status, payload = item
        if status in ("error", "forbidden"):
            decoded.append((status, str(payload)[:500]))
            continue
        try:
            decoded.append(("ok", wire.decode(payload)))
        except wire.WireError as err:
            decoded.append(("error", f"returned a value that cannot be read ({err})"))
        except Exception as err:  # decode validates; anything it did not foresee is still a bad answer
            decoded.append(("error", f"returned a value that cannot be read ({type(err).__name__})"))
    return ("results", decoded)


def known_exercises() -> list[str]:
    """The exercise ids, from the question bank's module names (without importing it)."""
    return sorted(p.stem for p in Path(__file__).parent.glob("ex[0-9][0-9].py"))


def _run(path: Path, batch: _Batch) -> _Raw:
    """Run one submission in sandboxed workers and collect its raw answers."""
    start = time.monotonic()
    sub = read_submission(path, known_exercises())
    # Each file's inputs come from the key *and* its contents: the same file always gets the same
    # inputs, and a file changed to answer inputs it learned last time gets new ones.
    case_key = f"{batch.key}:{sub.digest}" if batch.key is not None and batch.per_file else batch.key
    raw = _Raw(path, sub.exercise, case_key)
    if sub.error:
        raw.error = sub.error
        raw.seconds = time.monotonic() - start
        return raw
    skip: set[int] = set()
    forbids: list[str] | None = None

    def spawn() -> Worker:
        w = batch.worker()
        try:
            w.start(sub.cells, skip, batch.limits.timeout * (MAX_QUESTIONS + 2))
            if forbids is not None:
                w.send({"forbids": forbids}, deadline=time.monotonic() + START_SECONDS)
        except (WorkerDied, WorkerTimeout):
            pass  # the attempt finds it dead, and says so
        return w

    worker = spawn()  # it starts while this thread reads the question bank
    from vidlearn.grading.questions import questions_for

    questions = questions_for(sub.exercise)
    forbids = list(dict.fromkeys(name for q in questions for name in q.forbids))  # in the order declared
    try:
        worker.send({"forbids": forbids}, deadline=time.monotonic() + START_SECONDS)
    except (WorkerDied, WorkerTimeout):
        pass
    pending = list(questions)
    state = {"start_retries": 1}
    for _attempt in range(1 + EXTRA_ATTEMPTS + 1):
        if not pending:
            break
        if worker is None:
            worker = spawn()
        try:
            done = _attempt_run(worker, sub, questions, pending, skip, raw, batch, state)
        finally:
            batch.done(worker)
            worker = None
        if done:
            break
    if worker is not None:
        batch.done(worker)
    for q in pending:  # attempts exhausted
        raw.answers.setdefault(q.id, ("fail", "the notebook could not be run to the end"))
    raw.seconds = time.monotonic() - start
    return raw


def _attempt_run(worker: Worker, sub, questions, pending: list, skip: set, raw: _Raw, batch: _Batch,
                 state: dict) -> bool:
    """One worker's go at the notebook and the pending questions (``pending`` shrinks as they
    are answered). True when grading is finished, False when a fresh worker must go on."""
    limits = batch.limits
    current_cell, cell_errors, started = None, {}, False
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            msg = worker.receive(deadline)
            event = msg.get("event")
            if event == "started" and not started:
                started = True
                deadline = time.monotonic() + limits.timeout  # the notebook's clock starts now
            elif event == "cell" and started and isinstance(msg.get("index"), int):
                current_cell = msg["index"]
            elif event == "ready" and started and isinstance(msg.get("errors"), dict):
                # keys are cell indices; anything else (forged by the submission) is dropped
                cell_errors = {k: inert.text(v, 300) for k, v in msg["errors"].items()
                               if isinstance(k, str) and k.isascii() and k.isdigit() and int(k) < len(sub.cells)}
                break
            else:
                raise WorkerDied("the worker broke the protocol")
    except (WorkerTimeout, WorkerDied) as err:
        if not started and state["start_retries"] > 0:  # the machine was busy, not the notebook: once more
            state["start_retries"] -= 1
            raw.notes.append("the grader's sandbox was slow to start; started it again")
            return False
        what = "ran past the time limit" if isinstance(err, WorkerTimeout) else "stopped the grader's process"
        if current_cell is not None and current_cell not in skip and 0 <= current_cell < len(sub.cells):
            skip.add(current_cell)
            raw.notes.append(f"cell {current_cell + 1} {what}; graded without it")
            return False
        if not started:
            what = "could not start the grader's sandbox" if isinstance(err, WorkerDied) else \
                "did not start in time (the grading machine may be overloaded)"
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
            worker.send({"cmd": "call", "name": q.name, "calls": _encode_calls(q, raw.case_key),
                         "forbids": list(q.forbids), "seconds": limits.timeout})
            msg = worker.receive(time.monotonic() + limits.timeout + GRACE)
        except WorkerTimeout:
            raw.answers[q.id] = ("fail", f"{q.name} ran past the {limits.timeout:g} s limit")
            return False
        except WorkerDied as err:
            raw.answers[q.id] = ("fail", f"{q.name} crashed the grader's process ({err})")
            return False
        event = msg.get("event")
        if event == "missing":
            why = inert.text(msg.get("why", f"{q.name} is not defined"), 200)
            # the errors of the cells that define the function first: those are why it is missing
            ordered = sorted(cell_errors.items(), key=lambda kv: (f"def {q.name}(" not in sub.cells[int(kv[0])],
                                                                 int(kv[0])))
            errs = "; ".join(f"cell {int(k) + 1}: {v}" for k, v in ordered[:MAX_CELL_ERRORS])
            if len(cell_errors) > MAX_CELL_ERRORS:
                errs += f"; and {len(cell_errors) - MAX_CELL_ERRORS} more (see the notes)"
            raw.answers[q.id] = ("fail", why + (f" (errors while running the notebook: {errs})" if errs else ""))
        elif event == "results":
            raw.answers[q.id] = _decode_results(msg, len(q.cases(raw.case_key)))
        elif event == "timeout":
            raw.answers[q.id] = ("fail", f"{q.name} ran past the {limits.timeout:g} s limit")
        elif event == "crashed":
            raw.answers[q.id] = ("fail", f"{q.name} crashed the grader's process ({inert.text(msg.get('why'), 100)})")
        else:
            raw.answers[q.id] = ("fail", "the grader received a malformed answer")
    return True


def _score(raw: _Raw) -> SubmissionReport:
    from vidlearn.grading.questions import Outcome, questions_for
    from vidlearn.grading.scoring import score, zero

    report = SubmissionReport(str(raw.path), raw.exercise, notes=list(raw.notes), seconds=round(raw.seconds, 2))
    if raw.exercise is None:
        report.outcomes = [Outcome("unknown", 0.0, 0.0, raw.error or "unknown exercise")]
        return report
    for q in questions_for(raw.exercise):
        if raw.error:
            report.outcomes.append(zero(q, raw.error))
            continue
        kind, value = raw.answers.get(q.id, ("fail", "not graded"))
        report.outcomes.append(zero(q, value) if kind == "fail" else score(q, value, key=raw.case_key))
    return report


def _failed(path: Path, reason: str) -> SubmissionReport:
    """Zero on every question, with the reason: for a submission the grader itself choked on (its
    exercise from the file name: the file is not read again)."""
    from vidlearn.grading.submissions import exercise_from_name

    exercise = exercise_from_name(path.name)
    raw = _Raw(path, exercise if exercise in known_exercises() else None, error=reason)
    try:
        return _score(raw)
    except Exception:
        return SubmissionReport(str(path), None, [], notes=[reason])


def grade_submissions(
    paths: list[Path], *, limits: Limits = Limits(), jobs: int = 1, hide: list[Path] = (), key: str | None = None,
    sandbox: bool = True, per_file: bool = True, progress: Callable | None = None, on_report: Callable | None = None,
) -> list[SubmissionReport]:
    """Grade every submission; reports come back in the order of ``paths``.

    ``key``: the teacher's secret, from which the grading inputs are drawn (``None``: the public
    cases ``check()`` uses); with ``per_file``, each file's inputs are drawn from the key and the
    file's contents. ``on_report(index, report)`` is called as each one is scored.
    """
    from vidlearn import bounded

    bounded.warm()  # the derivation checker's server imports sympy while the first notebooks run
    paths = [Path(p) for p in paths]
    batch = _Batch(limits, list(hide) + sorted({p.resolve().parent for p in paths}), key, sandbox, per_file)
    reports: dict[int, SubmissionReport] = {}
    # Scoring waits on the bounded derivation checker: in a pool of its own, so that a sandbox slot
    # goes on to the next submission at once.
    runs, scorers = ThreadPoolExecutor(max_workers=max(1, jobs)), ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        pending = {runs.submit(_run, p, batch): ("run", i) for i, p in enumerate(paths)}
        done_count = 0
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                stage, i = pending.pop(fut)
                if stage == "run":
                    try:
                        pending[scorers.submit(_score, fut.result())] = ("score", i)
                        continue
                    except Exception as err:  # a grader bug must cost one submission its grade, not the batch
                        reports[i] = _failed(paths[i], f"internal grader error: {type(err).__name__}: {err}")
                else:
                    try:
                        reports[i] = fut.result()
                    except Exception as err:
                        reports[i] = _failed(paths[i], f"internal grader error: {type(err).__name__}: {err}")
                done_count += 1
                if on_report:
                    on_report(i, reports[i])
                if progress:
                    progress(done_count, len(paths), reports[i])
    except BaseException:  # Ctrl-C: stop the sandboxes now; what was scored has gone to on_report
        batch.kill_all()
        runs.shutdown(wait=True, cancel_futures=True)
        scorers.shutdown(wait=True, cancel_futures=True)
        batch.reaper.shutdown(wait=True)
        raise
    runs.shutdown(wait=True)
    scorers.shutdown(wait=True)
    batch.reaper.shutdown(wait=True)  # no sandbox, process or cgroup outlives the batch
    return [reports[i] for i in range(len(paths))]


def atomic_write(path: Path, text: str) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_gradebook(reports: list[SubmissionReport], csv_path: Path, json_path: Path | None = None) -> None:
    """One CSV row per submission and question (every cell inert: escaped, no formulas, at most 32,767
    characters); the JSON report adds notes and timings, and the full text."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    for r in reports:
        for o in r.outcomes:
            writer.writerow({
                "submission": inert.csv_cell(r.submission), "exercise": r.exercise or "", "question": o.question,
                "score": f"{o.score:g}", "max_score": f"{o.max_score:g}",
                "misconception": inert.csv_cell(o.misconception or ""), "feedback": inert.csv_cell(o.feedback),
            })
    atomic_write(csv_path, buf.getvalue())
    if json_path is not None:
        data = [
            {**{k: v for k, v in asdict(r).items() if k != "outcomes"}, "score": r.score, "max_score": r.max_score,
             "questions": [asdict(o) for o in r.outcomes]}
            for r in reports
        ]
        atomic_write(json_path, json.dumps(data, indent=2))  # ensure_ascii: control characters escaped


def print_progress(done: int, total: int, report: SubmissionReport) -> None:
    name = inert.text(Path(report.submission).name, 120)
    print(f"[{done}/{total}] {name}: {report.score:g}/{report.max_score:g} points ({report.seconds:.1f} s)",
          file=sys.stderr, flush=True)
