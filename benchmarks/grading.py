"""Where the teacher's grader spends its time, against the notebooks' own run time.

Three tables:

1. one submission alone (``solutions/ex01_attention.py``): ``vidlearn grade`` end to end beside the
   notebook's own run time (``python`` on the Jupytext file: ``import torch``, the cells, its
   ``check()`` calls), and the phases inside the grader: its start-up (Python, imports), the
   bubblewrap probe, the worker's start-up in its sandbox (``import torch``), the cells, the
   questions, scoring;
2. ``vidlearn progress`` over the six exercises (the reference solutions) beside the six notebooks
   run two at a time;
3. throughput on a class-sized batch (half reference solutions of exercise 1, half untouched exercise
   2 notebooks) with ``--jobs J``: seconds per submission once the grader is warm, and end to end.

    python benchmarks/grading.py                 # all three, 26 submissions, --jobs 2
    python benchmarks/grading.py --n 50 --jobs 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EX01 = ROOT / "solutions" / "ex01_attention.py"


def _wall(cmd: list[str], **kw) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, **kw)
    return time.perf_counter() - start


def _notebook_seconds(path: Path) -> float:
    """A notebook's own run time: the Jupytext file run by plain Python (its check() calls included)."""
    return _wall([sys.executable, str(path)], cwd=path.parent, env={**os.environ, "MPLBACKEND": "Agg"})


def _phases(key: str) -> dict[str, float]:
    """The grader's phases for one submission, timed from inside (in a fresh interpreter)."""
    code = f"""
import time, json
t0 = time.perf_counter()
from pathlib import Path
from vidlearn.grading.bwrap import find_bwrap
t1 = time.perf_counter(); find_bwrap(); t2 = time.perf_counter()
import vidlearn.grading.sandbox as S, vidlearn.grading.gradebook as G
marks = {{}}
receive = S.Worker.receive
def timed(self, deadline):
    msg = receive(self, deadline)
    marks.setdefault(msg.get("event"), time.perf_counter()); marks["last"] = time.perf_counter()
    return msg
S.Worker.receive = timed
born = []
init = S.Worker.__init__
S.Worker.__init__ = lambda self, *a, **k: (born.append(time.perf_counter()), init(self, *a, **k))[1]
score = G._score
done = {{}}
G._score = lambda raw: (done.setdefault("run", time.perf_counter()), score(raw))[1]
G.grade_submissions([Path({str(EX01)!r})], key={key!r})
t3 = time.perf_counter()
print(json.dumps({{"interpreter and imports": t1 - t0, "bubblewrap probe": t2 - t1,
    "worker start-up (import torch in the sandbox)": marks["started"] - born[0],
    "the notebook's cells": marks["ready"] - marks["started"], "the questions": done["run"] - marks["ready"],
    "scoring": t3 - done["run"]}}))
"""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    import json

    phases = json.loads(out.strip().splitlines()[-1])
    phases["whole run, from a fresh interpreter"] = time.perf_counter() - start
    return phases


def one_submission(key_file: Path) -> None:
    own = _notebook_seconds(EX01)
    with tempfile.TemporaryDirectory() as tmp:
        cli = _wall([sys.executable, "-m", "vidlearn.cli", "grade", "--out", f"{tmp}/gb.csv", "--key", str(key_file),
                     "--quiet", "--", str(EX01)])
    print("\n1. One submission alone (solutions/ex01_attention.py)")
    print(f"{'':4}{'notebook run by plain Python':52s} {own:6.2f} s")
    print(f"{'':4}{'vidlearn grade, end to end':52s} {cli:6.2f} s   (beyond the notebook: {cli - own:+.2f} s)")
    for name, seconds in _phases(key_file.read_text().strip()).items():
        print(f"{'':6}{name:50s} {seconds:6.2f} s")


def progress(key_dir: Path) -> None:
    solutions = sorted((ROOT / "solutions").glob("ex*.py"))
    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(_notebook_seconds, solutions))
    own = time.perf_counter() - start
    env = {**os.environ, "XDG_CONFIG_HOME": str(key_dir)}
    wall = _wall([sys.executable, "-m", "vidlearn.cli", "progress", *map(str, solutions)], env=env, cwd=ROOT)
    print("\n2. vidlearn progress over the six exercises (the reference solutions), 2 at a time")
    print(f"{'':4}{'the six notebooks, two at a time, by plain Python':52s} {own:6.2f} s")
    print(f"{'':4}{'vidlearn progress':52s} {wall:6.2f} s   (beyond the notebooks: {wall - own:+.2f} s)")


def throughput(n: int, jobs: int, key: str) -> None:
    from vidlearn import bounded
    from vidlearn.grading.gradebook import grade_submissions, write_gradebook
    from vidlearn.grading.questions import questions_for
    from vidlearn.grading.sandbox import Limits, isolation_summary

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        paths = []
        for i in range(n):
            src = EX01 if i % 2 == 0 else ROOT / "exercises" / "ex02_positional_encoding.py"
            dest = tmp / "in" / f"student{i:03d}_{src.name}"
            shutil.copy(src, dest)
            paths.append(dest)
        cold = time.perf_counter()
        questions_for("ex01"), bounded.warm(), isolation_summary()  # the one-time start-up, outside the timing
        start = time.perf_counter()
        reports = grade_submissions(paths, limits=Limits(), jobs=jobs, key=key)
        write_gradebook(reports, tmp / "gradebook.csv")
        end = time.perf_counter()
    wall, warm_up = end - start, start - cold
    worker = sum(r.seconds for r in reports) / len(reports)
    full = sum(r.score == r.max_score for r in reports)
    print(f"\n3. Throughput: {n} submissions, --jobs {jobs}; isolation: {isolation_summary()}")
    print(f"{'wall s':>10} {'wall s/sub':>11} {'+ start-up s':>13} {'end to end s/sub':>17} {'worker s/sub':>13} "
          f"{'full marks':>11}")
    print(f"{wall:>10.1f} {wall / n:>11.2f} {warm_up:>13.1f} {(wall + warm_up) / n:>17.2f} {worker:>13.2f} {full:>11}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=26)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", choices=["one", "progress", "throughput"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cfg:
        key_file = Path(cfg) / "vidlearn" / "grading-key"
        key_file.parent.mkdir()
        key_file.write_text("benchmark-grading-key-0123456789\n")
        if args.only in (None, "one"):
            one_submission(key_file)
        if args.only in (None, "progress"):
            progress(Path(cfg))
        if args.only in (None, "throughput"):
            throughput(args.n, args.jobs, key_file.read_text().strip())


if __name__ == "__main__":
    main()
