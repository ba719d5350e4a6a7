"""Seconds per submission for the teacher's grader on a class-sized batch.

Makes ``--n`` submissions (half reference solutions of exercise 1, half untouched exercise 2
notebooks) in a temporary folder, grades them with ``vidlearn grade --jobs J``, and prints the
wall time per submission and the worker (sandboxed process) time per submission.

    python benchmarks/grading.py            # 50 submissions, --jobs 2
    python benchmarks/grading.py --n 20 --jobs 1
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from vidlearn.grading.gradebook import grade_submissions, write_gradebook
from vidlearn.grading.sandbox import Limits, isolation_summary

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        paths = []
        for i in range(args.n):
            src = ROOT / ("solutions/ex01_attention.py" if i % 2 == 0 else "exercises/ex02_positional_encoding.py")
            dest = tmp / "in" / f"student{i:03d}_{src.name}"
            shutil.copy(src, dest)
            paths.append(dest)
        start = time.perf_counter()
        reports = grade_submissions(paths, limits=Limits(), jobs=args.jobs)
        write_gradebook(reports, tmp / "gradebook.csv")
        wall = time.perf_counter() - start
    worker = sum(r.seconds for r in reports) / len(reports)
    full = sum(r.score == r.max_score for r in reports)
    print(f"isolation: {isolation_summary()}")
    print(f"{'submissions':>12} {'jobs':>5} {'wall s':>8} {'wall s/sub':>11} {'worker s/sub':>13} {'full marks':>11}")
    print(f"{args.n:>12} {args.jobs:>5} {wall:>8.1f} {wall / args.n:>11.2f} {worker:>13.2f} {full:>11}")


if __name__ == "__main__":
    main()
