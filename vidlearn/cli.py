"""The ``vidlearn`` command: ``build-exercises`` and ``grade``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]


def _repo_default(name: str) -> Path:
    return Path.cwd() / name


def _build(args) -> int:
    from vidlearn.grading.notebooks import build_exercises

    try:
        changed = build_exercises(args.solutions, args.exercises, check_only=args.check)
    except (FileNotFoundError, ValueError) as err:
        print(f"vidlearn build-exercises: {err}", file=sys.stderr)
        return 2
    if args.check:
        for p in changed:
            print(f"out of date: {p}")
        return 1 if changed else 0
    for p in changed:
        print(f"wrote {p}")
    if not changed:
        print("exercises are up to date")
    return 0


def _grade(args) -> int:
    missing = [p for p in args.submissions if not Path(p).is_file()]
    if missing:
        print(f"vidlearn grade: no such file: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    for out in filter(None, (args.out, args.json)):
        if not Path(out).resolve().parent.is_dir():
            print(f"vidlearn grade: the folder for {out} does not exist", file=sys.stderr)
            return 2
    if args.jobs < 1 or args.timeout <= 0 or args.memory < 256:
        print("vidlearn grade: --jobs must be >= 1, --timeout > 0 and --memory >= 256 (MB)", file=sys.stderr)
        return 2

    from vidlearn.grading.gradebook import grade_submissions, print_progress, write_gradebook
    from vidlearn.grading.sandbox import Limits, bwrap_available, isolation_summary

    if not bwrap_available():
        print("vidlearn grade: WARNING: bubblewrap (bwrap) is not available; grading with time, memory and "
              "process limits only. Student code can read and write your files and use the network. "
              "On Debian/Ubuntu: apt install bubblewrap.", file=sys.stderr)
    print(f"vidlearn grade: {len(args.submissions)} submissions, {args.jobs} at a time; isolation: {isolation_summary()}",
          file=sys.stderr)
    limits = Limits(timeout=args.timeout, memory_mb=args.memory)
    hide = [Path(o).resolve().parent for o in filter(None, (args.out, args.json))]
    reports = grade_submissions([Path(p) for p in args.submissions], limits=limits, jobs=args.jobs, hide=hide,
                                progress=None if args.quiet else print_progress)
    write_gradebook(reports, Path(args.out), Path(args.json) if args.json else None)
    total = sum(r.seconds for r in reports)
    print(f"vidlearn grade: wrote {args.out}" + (f" and {args.json}" if args.json else "")
          + f"; {total / max(1, len(reports)):.2f} s of worker time per submission", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vidlearn", description="The vidlearn course: exercises and grading.")
    sub = parser.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build-exercises", help="write exercises/ from solutions/ (solution blocks removed)")
    b.add_argument("--solutions", type=Path, default=_repo_default("solutions"))
    b.add_argument("--exercises", type=Path, default=_repo_default("exercises"))
    b.add_argument("--check", action="store_true", help="only report exercises that are out of date (exit 1)")
    b.set_defaults(func=_build)

    g = sub.add_parser("grade", help="grade submitted exercise notebooks into a gradebook")
    g.add_argument("submissions", nargs="+", help=".ipynb or Jupytext .py files")
    g.add_argument("--out", required=True, help="gradebook CSV to write")
    g.add_argument("--json", help="also write a detailed JSON report")
    g.add_argument("--jobs", type=int, default=1, help="submissions graded at the same time")
    g.add_argument("--timeout", type=float, default=30.0, help="seconds for the notebook, and for each question")
    g.add_argument("--memory", type=int, default=2048, help="memory limit per submission, in MB")
    g.add_argument("--quiet", action="store_true", help="no progress lines")
    g.set_defaults(func=_grade)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
