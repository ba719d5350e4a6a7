"""The ``vidlearn`` command: ``build-exercises``, ``grade``, ``summary``, ``progress`` and ``build-site``."""

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
    for out in filter(None, (args.out, args.json, args.summary)):
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
    outputs = [Path(o) for o in filter(None, (args.out, args.json, args.summary))]
    hide = [o.resolve().parent for o in outputs] + ([Path(args.feedback).resolve()] if args.feedback else [])
    reports = grade_submissions([Path(p) for p in args.submissions], limits=limits, jobs=args.jobs, hide=hide,
                                progress=None if args.quiet else print_progress)
    write_gradebook(reports, Path(args.out), Path(args.json) if args.json else None)
    wrote = [args.out] + ([args.json] if args.json else [])
    if args.feedback:
        from vidlearn.grading.reports import write_feedback

        write_feedback(reports, Path(args.feedback))
        wrote.append(f"{args.feedback}/ (one feedback file per submission)")
    if args.summary:
        wrote += _write_summary(Path(args.out), Path(args.summary))
    total = sum(r.seconds for r in reports)
    print(f"vidlearn grade: wrote {', '.join(map(str, wrote))}; "
          f"{total / max(1, len(reports)):.2f} s of worker time per submission", file=sys.stderr)
    return 0


def _write_summary(gradebook: Path, summary: Path) -> list[str]:
    from vidlearn.grading.reports import read_gradebook, summarise, summary_markdown, write_summary

    summaries = summarise(read_gradebook(gradebook))
    plot = summary.with_suffix(".png")
    write_summary(summaries, summary, plot)
    print(summary_markdown(summaries), end="")
    return [str(summary), str(plot)]


def _summary(args) -> int:
    if not Path(args.gradebook).is_file():
        print(f"vidlearn summary: no such file: {args.gradebook}", file=sys.stderr)
        return 2
    try:
        _write_summary(Path(args.gradebook), Path(args.out))
    except ValueError as err:
        print(f"vidlearn summary: {err}", file=sys.stderr)
        return 2
    return 0


def _progress(args) -> int:
    from vidlearn.grading.gradebook import grade_submissions
    from vidlearn.grading.sandbox import Limits

    if args.jobs < 1 or args.timeout <= 0:
        print("vidlearn progress: --jobs must be >= 1 and --timeout > 0", file=sys.stderr)
        return 2
    files = [Path(p) for p in args.files] or sorted(
        p for p in Path("exercises").glob("ex*") if p.suffix in (".py", ".ipynb"))
    if not files:
        print("vidlearn progress: no exercise notebooks found (looked in ./exercises; or name the files)",
              file=sys.stderr)
        return 2
    missing = [p for p in files if not p.is_file()]
    if missing:
        print(f"vidlearn progress: no such file: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    reports = grade_submissions(files, limits=Limits(timeout=args.timeout), jobs=args.jobs)
    total = maximum = 0.0
    for r in reports:
        total, maximum = total + r.score, maximum + r.max_score
        done = sum(o.score == o.max_score for o in r.outcomes)
        print(f"{r.exercise or '?':5s} {Path(r.submission).name:32s} {r.score:5g}/{r.max_score:<3g} "
              f"{done}/{len(r.outcomes)} questions done")
        for o in r.outcomes:
            mark = "✅" if o.score == o.max_score else ("🟡" if o.score > 0 else "⬜")
            extra = f"  ({o.misconception})" if o.misconception else ""
            print(f"      {mark} {o.question} {o.score:g}/{o.max_score:g}{extra}")
        for note in r.notes[:1]:
            print(f"      note: {note}")
    print(f"total {total:g}/{maximum:g} points")
    return 0


def _site(args) -> int:
    import time

    from vidlearn.site import SiteBuildError, build_site, check_site

    if args.cell_timeout <= 0:
        print("vidlearn build-site: --cell-timeout must be > 0", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        index = build_site(args.chapters_dir, args.exercises, args.out, pattern=args.chapters,
                           execute=not args.no_execute, cell_timeout=args.cell_timeout,
                           progress=None if args.quiet else lambda line: print(line, file=sys.stderr, flush=True))
    except SiteBuildError as err:
        print(f"vidlearn build-site: {err}", file=sys.stderr)
        return 1
    # the built site is checked as a reader would meet it: every chapter linked, no dead link
    problems = check_site(Path(args.out), Path(args.chapters_dir), args.chapters, require_plots=not args.no_execute)
    for problem in problems:
        print(f"vidlearn build-site: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"vidlearn build-site: wrote {index} in {time.perf_counter() - started:.0f} s; every chapter linked, "
          "no dead links", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vidlearn", description="The vidlearn course: exercises, grading, progress and the course site.")
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
    g.add_argument("--feedback", help="folder for one Markdown feedback file per submission (for the students)")
    g.add_argument("--summary", help="class summary (Markdown) to write, with a bar chart beside it (.png)")
    g.set_defaults(func=_grade)

    s = sub.add_parser("summary", help="per-question class summary of a gradebook CSV (Markdown + bar chart)")
    s.add_argument("gradebook", help="the CSV written by vidlearn grade --out")
    s.add_argument("--out", default="summary.md", help="Markdown file to write; the chart goes beside it (.png)")
    s.set_defaults(func=_summary)

    p = sub.add_parser("progress", help="which of your exercises pass (grades your own working copies)")
    p.add_argument("files", nargs="*", help="exercise notebooks (default: exercises/ex*.py and .ipynb)")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--timeout", type=float, default=30.0)
    p.set_defaults(func=_progress)

    w = sub.add_parser("build-site", help="execute the chapters and build the course as a static HTML site")
    w.add_argument("--out", type=Path, default=_repo_default("build/site"), help="site folder (replaced as a whole)")
    w.add_argument("--no-execute", action="store_true", help="render the chapters without running them (no outputs)")
    w.add_argument("--chapters", default="[0-9][0-9]_*.py", metavar="GLOB",
                   help="which files of the chapters folder to build (default: all chapters)")
    w.add_argument("--chapters-dir", type=Path, default=_repo_default("chapters"))
    w.add_argument("--exercises", type=Path, default=_repo_default("exercises"))
    w.add_argument("--cell-timeout", type=float, default=600.0, help="seconds a chapter cell may run")
    w.add_argument("--quiet", action="store_true", help="no progress lines")
    w.set_defaults(func=_site)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
