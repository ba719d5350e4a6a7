"""Adversarial tests of the sandboxed grader: hostile submissions must score exactly what their honest
parts deserve, must not crash or stall the grader, and must not touch the teacher's files, network or
environment.

All hostile submissions are graded in one batch (module fixture ``batch``); a few things that need a
run of their own (the command line, regressions for crashes once found) have their own tests.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import time
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import (
    FULL,
    JOBS,
    KEY,
    MAX_POINTS,
    MEMORY_MB,
    QUESTIONS,
    ROOT,
    SUBMISSIONS,
    TIMEOUT,
    ZERO,
    ListeningServer,
    file_state,
    install,
    make_teacher_dir,
    new_token,
    outcome,
    processes_with,
    read_csv,
    repo_state,
    require_bwrap,
    run_cli,
    scores,
    to_ipynb,
    tree_state,
)
from vidlearn.grading.gradebook import COLUMNS, grade_submissions, write_gradebook
from vidlearn.grading.sandbox import Limits

LIMITS = Limits(timeout=TIMEOUT, memory_mb=MEMORY_MB)
SECRET_NAME = "VIDLEARN_TEST_SECRET"

# Submission -> exact expected scores (softmax, attention, split_heads, merge_heads, var_qk).
# Each expectation is what the honest parts deserve; see the fixture's own header for the reasoning.
EXPECTED = {
    "ex01_honest.py": FULL,
    "ex01_loop_cell.py": FULL,
    "ex01_loop_function.py": (2.0, 4.0, 1.0, 0.0, 2.0),
    "ex01_memory_hog_cell.py": FULL,
    "ex01_memory_hog_function.py": (2.0, 4.0, 0.0, 0.67, 2.0),  # merge_heads: 2 of 3 cases, round(1 * 2/3, 2)
    "ex01_sys_exit.py": FULL,
    "ex01_os_exit_cell.py": FULL,
    "ex01_exit_in_functions.py": (2.0, 4.0, 0.0, 0.0, 0.0),
    "ex01_segfault_function.py": (2.0, 0.0, 0.0, 1.0, 2.0),
    "ex01_fork_bomb.py": FULL,
    "ex01_fork_count.py": FULL,
    "ex01_daemon.py": FULL,
    "ex01_kill_everything.py": FULL,
    "ex01_monkeypatch.py": (0.0, 4.0, 1.0, 1.0, 2.0),
    "ex01_lying_objects.py": (0.0, 4.0, 1.0, 0.0, 2.0),
    "ex01_fake_output.py": (2.0, 4.0, 0.5, 1.0, 2.0),  # 2 of 4 cases: h == 1 or e == 1
    "ex01_forged_frames.py": ZERO,
    "ex01_filesystem.py": FULL,
    "ex01_other_students.py": FULL,
    "ex01_environment.py": FULL,
    "ex01_network.py": FULL,
    "ex01_output_flood.py": FULL,
    "ex01_tmp_filler.py": FULL,
    "ex01_oversized_answer.py": (2.0, 4.0, 1.0, 0.0, 2.0),
    "ex01_raise_everywhere.py": (2.0, 4.0, 0.0, 0.0, 2.0),
    "ex01_not_callable.py": ZERO,
    # no credit without work: the library, the question bank, torch's own softmax and attention (by any
    # name, or computed by a helper thread or process), the reference solutions, memorised answers
    "ex01_calls_library.py": (0.0, 0.0, 0.0, 0.0, 2.0),
    "ex01_torch_builtins.py": (0.0, 0.0, 1.0, 1.0, 2.0),
    "ex01_softmax_aliases.py": (0.0, 0.0, 1.0, 1.0, 2.0),
    "ex01_helpers_outside.py": (0.0, 0.0, 1.0, 1.0, 2.0),
    "ex01_solutions_file.py": ZERO,
    "ex01_lookup_table.py": (0.0, 0.0, 0.0, 0.0, 2.0),  # made at test time from case()
    # taking the grader's watch apart from inside: the worker's process is sealed before the notebook runs
    "ex01_protocol_takeover.py": (0.0, 0.0, 1.0, 1.0, 2.0),
    "ex01_profile_toctou.py": (0.0, 0.0, 1.0, 1.0, 2.0),
    "ex01_torch_internals.py": (0.0, 0.0, 1.0, 1.0, 2.0),
    "ex01_yaml_bomb_header.py": FULL,
    # what the sandbox sees, neighbours, the trusted side, text aimed at the teacher
    "ex01_snoop.py": FULL,
    "ex01_cpu_starver.py": FULL,
    # var_qk: the step before the exploding one reaches the milestone, worth half its points
    "ex01_bigint_derivation.py": (2.0, 4.0, 1.0, 1.0, 1.0),
    "ex01_hostile_text.py": ZERO,  # its attention is honest, but calls its own (raising) softmax
    "ex01_copycat_link.py": ZERO,  # a symlink to a classmate's file, made at test time
    "ex01_70000_cells.py": ZERO,  # made at test time
    "ex01_50_megabytes.py": ZERO,  # made at test time
    # made at test time
    "ex01_random_bytes.py": ZERO,
    "ex01_broken.ipynb": ZERO,
    "ex01_not_a_notebook.ipynb": ZERO,
    "ex01_honest_nb.ipynb": FULL,
    "ex01_segfault_nb.ipynb": (2.0, 0.0, 0.0, 1.0, 2.0),
    "homework_final.py": FULL,
    "ex02_but_metadata_says_ex01.py": FULL,
}
# Regression: run as root, bwrap kept its capabilities and a submission could remount / read-write
# (fixed by --cap-drop ALL and --disable-userns); see test_mount_escape_*.
ESCAPE = "ex01_mount_escape.py"
VICTIM = "ex01_victim.py"
DUPLICATED = ["ex01_exit_in_functions.py", "ex01_fake_output.py"]  # graded twice: must give identical rows
UNREADABLE = ["ex01_random_bytes.py", "ex01_broken.ipynb", "ex01_not_a_notebook.ipynb", "ex01_copycat_link.py",
              "ex01_70000_cells.py", "ex01_50_megabytes.py"]


def _lookup_table_text() -> str:
    """A notebook whose functions answer check()'s public cases from a table (made with the reference
    functions, as a student could from case()), and whose derivation is honest."""
    from standins import stand_in_code
    from vidlearn.grading.questions import get_question

    cells = [(SUBMISSIONS / "ex01_honest.py").read_text(encoding="utf-8")]
    for qid in QUESTIONS[:4]:
        q = get_question(qid)
        cells.append("# %%\n" + stand_in_code(q.name, q.reference, q.cases()))
    return "\n\n".join(cells)


def _make_generated(subs: Path, honest: Path) -> list[Path]:
    """Submissions made at test time: unreadable files, notebooks converted by jupytext, renamed files,
    a symlink to a classmate's file, files too big or of too many cells, a table of memorised answers."""
    out = []
    p = subs / "ex01_lookup_table.py"
    p.write_text(_lookup_table_text(), encoding="utf-8")
    out.append(p)
    p = subs / "ex01_copycat_link.py"
    p.symlink_to(honest)
    out.append(p)
    p = subs / "ex01_70000_cells.py"
    p.write_text(honest.read_text(encoding="utf-8") + "\n# %%\n" * 70_000, encoding="utf-8")
    out.append(p)
    p = subs / "ex01_50_megabytes.py"
    with open(p, "w", encoding="utf-8") as f:
        f.write(honest.read_text(encoding="utf-8"))
        f.write(("# padding " + "x" * 90 + "\n") * 500_000)
    out.append(p)
    rnd = random.Random(1234)
    p = subs / "ex01_random_bytes.py"
    p.write_bytes(b"\xff\xfe" + rnd.randbytes(8192))
    out.append(p)
    p = subs / "ex01_broken.ipynb"
    p.write_text('{"cells": [{"cell_type": "code", "source": "softmax = 1"', encoding="utf-8")  # truncated JSON
    out.append(p)
    p = subs / "ex01_not_a_notebook.ipynb"
    p.write_text("[1, 2, 3]\n", encoding="utf-8")
    out.append(p)
    out.append(to_ipynb(honest, subs / "ex01_honest_nb.ipynb"))
    out.append(to_ipynb(subs / "ex01_segfault_function.py", subs / "ex01_segfault_nb.ipynb"))
    text = honest.read_text(encoding="utf-8")
    for name in ("homework_final.py", "ex02_but_metadata_says_ex01.py"):
        p = subs / name
        p.write_text(text, encoding="utf-8")
        out.append(p)
    # no metadata header and no exNN in the name: the grader cannot tell the exercise
    assert text.startswith("# ---\n")
    p = subs / "mystery.py"
    p.write_text(text.split("# ---\n", 2)[2], encoding="utf-8")
    out.append(p)
    return out


@pytest.fixture(scope="module")
def batch():
    """Grade every hostile submission in one run and record everything the tests look at."""
    require_bwrap()
    base = make_teacher_dir()
    subs, gb_dir, teacher = base / "submissions", base / "gradebook", base / "teacher"
    for d in (subs, gb_dir, teacher):
        d.mkdir()
    token = new_token()
    tcp = ListeningServer(socket.AF_INET, ("127.0.0.1", 0))
    unix_name = f"vidlearn-test-{token}"
    unix = ListeningServer(socket.AF_UNIX, "\0" + unix_name)
    secret = f"s3cret-{token}"
    gradebook, gb_json = gb_dir / "gradebook.csv", gb_dir / "gradebook.json"
    config = {
        "token": token, "port": tcp.address[1], "unix": unix_name, "submissions": str(subs),
        "gradebook": str(gradebook), "teacher": str(teacher), "secret_name": SECRET_NAME, "secret": secret,
    }
    for name in ("canary_fs.txt", "canary_escape.txt"):
        (teacher / name).write_text(f"teacher's file {name}, do not touch\n")
        os.utime(teacher / name, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    gradebook.write_text("OLD GRADEBOOK FROM A PREVIOUS RUN\n")
    old_inode = gradebook.stat().st_ino
    # the README's own layout: last run's gradebook and report in the repository root; a file beside
    # the checkout; one in the teacher's home
    readme_layout = [ROOT / f"gradebook-{token}.csv", ROOT / f"report-{token}.json", ROOT.parent / f"beside-{token}.txt",
                     Path.home() / f".vidlearn-test-secret-{token}"]
    for f in readme_layout:
        f.write_text(f"classmates' grades {token}\n")
    config.update({
        "repo": str(ROOT),
        "secrets": [str(f) for f in readme_layout] + [str(ROOT / ".git" / "HEAD"), str(ROOT / "solutions" / "ex01_attention.py"),
                                                    str(ROOT / "README.md"), str(gradebook), str(teacher / "canary_fs.txt")],
        "folders": [str(ROOT), str(ROOT / "solutions"), str(ROOT / ".git"), str(ROOT.parent), str(Path.home()), str(teacher),
                    str(subs), str(gb_dir)],
        "must_not_see": ["solutions", ".git", "README.md", "tests", "vidlearn", "chapters", f"gradebook-{token}.csv",
                         f"beside-{token}.txt", f".vidlearn-test-secret-{token}", "canary_fs.txt", "ex01_honest.py",
                         "gradebook.csv"],
    })

    hostile = [n for n in EXPECTED if (Path(__file__).parent / "submissions" / n).exists()]
    paths = [install(ESCAPE, subs, config)]  # first, so that it runs long before its victim is read
    paths += [install(n, subs, config) for n in hostile]
    paths += _make_generated(subs, subs / "ex01_honest.py")
    paths += [subs / n for n in DUPLICATED]
    paths.append(install(VICTIM, subs, config))  # last
    names = [p.name for p in paths]
    assert set(EXPECTED) | {ESCAPE, VICTIM, "mystery.py"} == set(names)

    before = SimpleNamespace(teacher=tree_state(teacher), subs=tree_state(subs), repo=repo_state(),
                             host_tmp=set(os.listdir("/tmp")))
    old_env = os.environ.get(SECRET_NAME)
    os.environ[SECRET_NAME] = secret
    start = time.monotonic()
    try:
        reports = grade_submissions(paths, limits=LIMITS, jobs=JOBS, hide=[gb_dir], key=KEY)
    finally:
        elapsed = time.monotonic() - start
        if old_env is None:
            os.environ.pop(SECRET_NAME, None)
        else:
            os.environ[SECRET_NAME] = old_env
    write_gradebook(reports, gradebook, gb_json)
    time.sleep(0.5)  # let the kernel finish tearing sandboxes down before looking for leftovers
    result = SimpleNamespace(
        base=base, subs=subs, gb_dir=gb_dir, teacher=teacher, gradebook=gradebook, gb_json=gb_json,
        token=token, config=config, paths=paths, names=names, reports=reports, elapsed=elapsed,
        before=before, old_inode=old_inode, tcp=list(tcp.connections), unix=list(unix.connections),
        after_repo=repo_state(), after_teacher=tree_state(teacher), after_subs=tree_state(subs),
        host_tmp=set(os.listdir("/tmp")), daemons=processes_with(f"vidlearn-daemon-{token}"),
    )
    result.by_name = {}
    for p, r in zip(paths, reports):
        result.by_name.setdefault(p.name, r)
    yield result
    tcp.close()
    unix.close()
    shutil.rmtree(base, ignore_errors=True)
    for f in readme_layout:
        f.unlink(missing_ok=True)
    for stray in (ROOT / f"fs_{token}.txt", Path(f"/var/tmp/fs_{token}.txt")):
        stray.unlink(missing_ok=True)


def _feedback(batch, name: str, question: str) -> str:
    return outcome(batch.by_name[name], question).feedback


# ----------------------------------------------------------------------------- the whole batch


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_exact_scores(batch, name):
    report = batch.by_name[name]
    assert report.exercise == "ex01", report
    assert [o.question for o in report.outcomes] == QUESTIONS
    got = scores(report)
    details = {o.question: o.feedback for o in report.outcomes}
    assert got == EXPECTED[name], f"{name}: {got} != {EXPECTED[name]}; notes={report.notes}; feedback={details}"
    assert [o.max_score for o in report.outcomes] == [MAX_POINTS[q] for q in QUESTIONS]


def test_batch_finishes_in_bounded_time(batch):
    assert len(batch.reports) == len(batch.paths)
    # 40 submissions, 2 at a time, a handful of 5 s timeouts: far below this bound
    assert batch.elapsed < 240, f"the batch took {batch.elapsed:.0f} s"
    slow = {Path(r.submission).name: r.seconds for r in batch.reports if r.seconds > 8 * TIMEOUT}
    assert not slow, f"submissions that took too long: {slow}"


def test_duplicated_submissions_get_identical_rows(batch):
    for name in DUPLICATED:
        first, second = [r for p, r in zip(batch.paths, batch.reports) if p.name == name]
        assert first is not second
        assert [asdict(o) for o in first.outcomes] == [asdict(o) for o in second.outcomes]
        assert first.notes == second.notes
        assert first.exercise == second.exercise == "ex01"


# ----------------------------------------------------------------------------- no credit without work


@pytest.mark.parametrize("name, question, reason", [
    ("ex01_calls_library.py", "ex01.softmax", "calls vidlearn.attention.softmax, which this exercise asks you to write"),
    ("ex01_calls_library.py", "ex01.scaled_dot_product_attention",
     "calls vidlearn.grading.questions.get_question, which this exercise asks you to write"),
    ("ex01_calls_library.py", "ex01.split_heads", "calls vidlearn.attention.split_heads"),
    ("ex01_calls_library.py", "ex01.merge_heads", "calls vidlearn.attention.merge_heads"),  # caught, still counted
    ("ex01_torch_builtins.py", "ex01.softmax", "calls torch.softmax, which this exercise asks you to write"),
    ("ex01_torch_builtins.py", "ex01.scaled_dot_product_attention",
     "calls torch.nn.functional.scaled_dot_product_attention, which this exercise asks you to write"),
    ("ex01_softmax_aliases.py", "ex01.softmax", "calls torch.softmax (it reached ATen's _softmax)"),
    ("ex01_softmax_aliases.py", "ex01.scaled_dot_product_attention", "calls torch.softmax (it reached ATen's _log_softmax)"),
])
def test_forbidden_calls_score_zero_with_the_reason(batch, name, question, reason):
    o = outcome(batch.by_name[name], question)
    assert o.score == 0 and reason in o.feedback and o.misconception == "calls a forbidden function", o


@pytest.mark.parametrize("name, question, reason", [
    ("ex01_protocol_takeover.py", "ex01.softmax", "calls torch.softmax"),
    ("ex01_protocol_takeover.py", "ex01.scaled_dot_product_attention",
     "calls torch.nn.functional.scaled_dot_product_attention"),
    ("ex01_profile_toctou.py", "ex01.softmax", "calls torch.softmax"),
    ("ex01_torch_internals.py", "ex01.softmax", "torch._refs.softmax"),
    ("ex01_torch_internals.py", "ex01.scaled_dot_product_attention", "flex_attention"),
])
def test_a_sealed_worker_computes_nothing_forbidden(batch, name, question, reason):
    o = outcome(batch.by_name[name], question)
    assert o.score == 0 and reason in o.feedback, o


def test_a_header_that_crashes_yaml_is_just_a_header(batch):
    assert batch.by_name["ex01_yaml_bomb_header.py"].exercise == "ex01"


def test_helpers_outside_the_question_do_not_answer(batch):
    report = batch.by_name["ex01_helpers_outside.py"]
    assert "Empty" in outcome(report, "ex01.softmax").feedback  # the thread is not in the question's process
    fb = outcome(report, "ex01.scaled_dot_product_attention").feedback
    assert "your function raised" in fb, fb  # the helper process is gone (its pipe, its shared memory)


def test_the_reference_solutions_are_not_in_the_sandbox(batch):
    report = batch.by_name["ex01_solutions_file.py"]
    assert all(o.feedback.endswith("not defined") for o in report.outcomes), [o.feedback for o in report.outcomes]


def test_answers_learned_from_a_grading_run_earn_nothing_the_next(teacher_dir):
    """Inputs come from the key and the file's contents: a file changed to answer the inputs its last
    version was graded on (learned through its feedback, say) is graded on new ones."""
    require_bwrap()
    from standins import stand_in_code
    from vidlearn.grading.questions import get_question
    from vidlearn.grading.submissions import read_submission

    first = install("ex01_honest.py", teacher_dir, new_name="ex01_first.py")
    digest = read_submission(first, ["ex01"]).digest
    q = get_question("ex01.softmax")
    learned = q.cases(f"{KEY}:{digest}")  # exactly what that file was graded on
    second = teacher_dir / "ex01_second.py"
    second.write_text(first.read_text() + "\n# %%\n" + stand_in_code("softmax", q.reference, learned))
    before, after = _grade_alone([first, second])
    assert scores(before) == FULL
    o = outcome(after, "ex01.softmax")
    assert o.passed == 0 and "KeyError" in o.feedback, o
    assert _grade_alone([first])[0].outcomes == before.outcomes  # the same file, the same inputs and grade


def test_answers_memorised_from_case_earn_nothing(batch):
    report = batch.by_name["ex01_lookup_table.py"]
    for q in QUESTIONS[:4]:
        o = outcome(report, q)
        assert o.passed == 0 and "KeyError" in o.feedback, o  # not one grading input was among the public ones


# ----------------------------------------------------------------------------- what the sandbox sees


def test_the_sandbox_shows_nothing_of_the_teachers_and_runs_unprivileged(batch):
    fb = _feedback(batch, "ex01_snoop.py", "ex01.softmax")
    assert fb.startswith("all 8 cases pass"), fb


def test_a_cpu_starver_only_slows_itself(batch):
    assert scores(batch.by_name["ex01_cpu_starver.py"]) == FULL
    honest = [n for n, exp in EXPECTED.items() if exp == FULL]
    assert all(scores(batch.by_name[n]) == FULL for n in honest), {n: scores(batch.by_name[n]) for n in honest}


# ----------------------------------------------------------------------------- the trusted side


def test_an_exploding_derivation_is_bounded(batch):
    o = outcome(batch.by_name["ex01_bigint_derivation.py"], "ex01.var_qk")
    assert o.score == 1.0 and "could not be checked: too large" in o.feedback, o


@pytest.mark.parametrize("name, reason", [
    ("ex01_copycat_link.py", "it is a symbolic link; hand in the notebook file itself"),
    ("ex01_70000_cells.py", "it has more than 2000 cells"),
    ("ex01_50_megabytes.py", "MiB; the limit is 16 MiB"),
])
def test_refused_files_say_why(batch, name, reason):
    report = batch.by_name[name]
    assert all(reason in o.feedback for o in report.outcomes), [o.feedback for o in report.outcomes]
    assert report.seconds < 2, f"{name} took {report.seconds} s to refuse"


# ----------------------------------------------------------------------------- hangs, memory, crashes


def test_loop_in_a_cell_is_skipped_and_reported(batch):
    notes = batch.by_name["ex01_loop_cell.py"].notes
    assert any("ran past the time limit; graded without it" in n for n in notes), notes


def test_loop_in_a_function_times_out_only_that_question(batch):
    fb = _feedback(batch, "ex01_loop_function.py", "ex01.merge_heads")
    assert fb == f"merge_heads ran past the {TIMEOUT:g} s limit"
    assert _feedback(batch, "ex01_loop_function.py", "ex01.var_qk").startswith("all 2 steps follow")


def test_memory_hogs_in_cells_fail_with_memory_errors(batch):
    notes = " | ".join(batch.by_name["ex01_memory_hog_cell.py"].notes)
    assert "MemoryError" in notes, notes


def test_memory_hogs_in_functions_fail_only_their_cases(batch):
    split = outcome(batch.by_name["ex01_memory_hog_function.py"], "ex01.split_heads")
    assert split.passed == 0 and split.total == 4 and "your function raised" in split.feedback
    merge = outcome(batch.by_name["ex01_memory_hog_function.py"], "ex01.merge_heads")
    assert (merge.passed, merge.total, merge.failed_case) == (2, 3, 0)
    assert "MemoryError" in merge.feedback


def test_exits_in_cells_are_errors_of_those_cells(batch):
    report = batch.by_name["ex01_sys_exit.py"]
    notes = " | ".join(report.notes)
    assert "SystemExit: bye" in notes and "KeyboardInterrupt" in notes, notes
    notes = batch.by_name["ex01_os_exit_cell.py"].notes
    assert any("stopped the grader's process; graded without it" in n for n in notes), notes


def test_exits_in_functions_cost_only_those_questions(batch):
    name = "ex01_exit_in_functions.py"
    assert "crashed the grader's process" in _feedback(batch, name, "ex01.split_heads")
    assert "crashed the grader's process" in _feedback(batch, name, "ex01.merge_heads")
    assert _feedback(batch, name, "ex01.var_qk") == "your function raised SystemExit: 0"


def test_segfault_and_recursion(batch):
    name = "ex01_segfault_function.py"
    assert "crashed the grader's process" in _feedback(batch, name, "ex01.scaled_dot_product_attention")
    assert "RecursionError" in _feedback(batch, name, "ex01.split_heads")
    assert "crashed the grader's process" in _feedback(batch, "ex01_segfault_nb.ipynb",
                                                        "ex01.scaled_dot_product_attention")


def test_fork_bomb_is_contained(batch):
    notes = batch.by_name["ex01_fork_bomb.py"].notes
    assert any("ran past the time limit; graded without it" in n for n in notes), notes
    assert batch.by_name["ex01_fork_bomb.py"].seconds < 4 * TIMEOUT


def test_no_process_outlives_its_sandbox(batch):
    assert batch.daemons == [], f"processes left behind by ex01_daemon.py: {batch.daemons}"


def test_oversized_answer_costs_only_that_question(batch):
    fb = _feedback(batch, "ex01_oversized_answer.py", "ex01.merge_heads")
    assert "crashed the grader's process" in fb or "your function raised" in fb, fb


# ----------------------------------------------------------------------------- lying to the checker


def test_monkeypatching_the_checker_changes_nothing(batch):
    softmax = outcome(batch.by_name["ex01_monkeypatch.py"], "ex01.softmax")
    assert (softmax.passed, softmax.total) == (0, 8)
    assert "values differ" in softmax.feedback


def test_lying_objects_are_judged_by_their_data(batch):
    name = "ex01_lying_objects.py"
    softmax = outcome(batch.by_name[name], "ex01.softmax")
    assert softmax.passed == 0 and "values differ" in softmax.feedback
    merge = outcome(batch.by_name[name], "ex01.merge_heads")
    assert merge.passed == 0 and "expected a tensor, got" in merge.feedback


def test_fake_output_is_ignored_and_the_real_mistake_recognised(batch):
    split = outcome(batch.by_name["ex01_fake_output.py"], "ex01.split_heads")
    assert split.misconception == "channels interleaved across heads"
    assert split.passed < split.total


def test_forged_frames_only_hurt_the_forger(batch):
    report = batch.by_name["ex01_forged_frames.py"]
    assert all(o.score == 0 for o in report.outcomes)
    # nobody graded at the same time was affected: every honest submission has full marks
    honest = [n for n, exp in EXPECTED.items() if exp == FULL]
    assert all(scores(batch.by_name[n]) == FULL for n in honest), {n: scores(batch.by_name[n]) for n in honest}


# ----------------------------------------------------------------------------- files, network, environment


def test_teacher_files_survive_plain_filesystem_attacks(batch):
    assert batch.after_teacher["canary_fs.txt"] == batch.before.teacher["canary_fs.txt"]
    assert not [k for k in batch.after_teacher if k.startswith("fs_")]
    assert batch.after_subs["ex01_honest.py"] == batch.before.subs["ex01_honest.py"]
    assert not [k for k in batch.after_subs if k.startswith("fs_")]
    assert not (ROOT / f"fs_{batch.token}.txt").exists()
    assert not Path(f"/var/tmp/fs_{batch.token}.txt").exists()
    assert f"fs_{batch.token}.txt" not in batch.host_tmp  # the sandbox's /tmp is private
    assert not [f for f in os.listdir(batch.gb_dir) if f.startswith("fs_")]
    assert "fs,ex01" not in batch.gradebook.read_text()


def test_repository_untouched(batch):
    changed = {k for k in set(batch.before.repo) | set(batch.after_repo)
               if batch.before.repo.get(k) != batch.after_repo.get(k)}
    assert not changed, f"files in the repository changed during grading: {sorted(changed)}"


def test_submissions_do_not_change_during_grading(batch):
    # (the victim of the mount escape has its own test: test_mount_escape_cannot_change_another_students_grade)
    changed = {k for k in set(batch.before.subs) | set(batch.after_subs)
               if k in batch.before.subs and k != VICTIM and batch.before.subs.get(k) != batch.after_subs.get(k)}
    assert not changed, f"submissions changed while being graded: {sorted(changed)}"
    new = set(batch.after_subs) - set(batch.before.subs)
    assert not new, f"files appeared among the submissions: {sorted(new)}"


def test_mount_escape_is_refused(batch):
    """Regression: as root, bubblewrap kept the worker's capabilities, so student code could remount / rw."""
    fb = _feedback(batch, ESCAPE, "ex01.softmax")
    assert scores(batch.by_name[ESCAPE]) == FULL, f"the submission got out of the sandbox: {fb}"


def test_mount_escape_cannot_touch_teacher_files(batch):
    assert batch.after_teacher.get("canary_escape.txt") == batch.before.teacher["canary_escape.txt"], \
        "a submission deleted or changed the teacher's canary file"
    planted = [f for f in os.listdir(batch.gb_dir) if f.startswith("escape_")]
    assert not planted, f"a submission wrote into the (hidden) gradebook folder: {planted}"


def test_mount_escape_cannot_change_another_students_grade(batch):
    victim = batch.by_name[VICTIM]
    assert scores(victim) == FULL, f"an honest submission lost points: {[o.feedback for o in victim.outcomes]}"
    assert batch.after_subs[VICTIM] == batch.before.subs[VICTIM], "another submission rewrote this file"


def test_other_students_files_are_invisible(batch):
    fb = _feedback(batch, "ex01_other_students.py", "ex01.softmax")
    assert fb.startswith("all 8 cases pass"), fb


def test_grader_environment_is_invisible(batch):
    fb = _feedback(batch, "ex01_environment.py", "ex01.softmax")
    assert fb.startswith("all 8 cases pass"), fb
    assert all(batch.config["secret"] not in o.feedback for r in batch.reports for o in r.outcomes)


def test_no_network_connection_reaches_the_grader_machine(batch):
    assert batch.tcp == [], f"the TCP server saw connections: {batch.tcp}"
    assert batch.unix == [], f"the unix socket server saw connections: {batch.unix}"
    assert _feedback(batch, "ex01_network.py", "ex01.softmax").startswith("all 8 cases pass")


def test_tmp_filler_stays_in_the_sandbox(batch):
    assert not [f for f in batch.host_tmp - batch.before.host_tmp if batch.token in f]


# ----------------------------------------------------------------------------- unreadable and renamed files


@pytest.mark.parametrize("name", UNREADABLE)
def test_unreadable_files_score_zero_with_a_reason(batch, name):
    report = batch.by_name[name]
    assert report.exercise == "ex01"  # from the file name
    assert len(report.outcomes) == len(QUESTIONS)
    for o in report.outcomes:
        assert o.score == 0 and o.feedback.startswith("not a readable notebook"), o


def test_raise_everywhere_reasons(batch):
    report = batch.by_name["ex01_raise_everywhere.py"]
    fb = outcome(report, "ex01.split_heads").feedback
    assert fb.startswith("split_heads not defined") and "RuntimeError: before the heads" in fb, fb
    notes = " | ".join(report.notes)
    for err in ("RuntimeError: cell before the answers", "RuntimeError: after softmax",
                "ValueError: after attention", "ZeroDivisionError"):
        assert err in notes, notes


def test_not_callable_reasons(batch):
    name = "ex01_not_callable.py"
    assert _feedback(batch, name, "ex01.softmax") == "softmax is a int, not a function"
    assert _feedback(batch, name, "ex01.scaled_dot_product_attention").startswith(
        "scaled_dot_product_attention is a str, not a function")
    assert _feedback(batch, name, "ex01.split_heads") == "split_heads not defined"
    assert _feedback(batch, name, "ex01.merge_heads") == "merge_heads is a list, not a function"
    assert _feedback(batch, name, "ex01.var_qk") == "var_qk_steps is a Tensor, not a function"


def test_renamed_files_follow_their_metadata(batch):
    assert batch.by_name["homework_final.py"].exercise == "ex01"
    assert batch.by_name["ex02_but_metadata_says_ex01.py"].exercise == "ex01"
    mystery = batch.by_name["mystery.py"]
    assert mystery.exercise is None
    assert [(o.question, o.score, o.max_score) for o in mystery.outcomes] == [("unknown", 0.0, 0.0)]
    assert "cannot tell which exercise" in mystery.outcomes[0].feedback


# ----------------------------------------------------------------------------- the gradebook


def test_gradebook_has_one_row_per_submission_and_question(batch):
    rows = read_csv(batch.gradebook)
    with open(batch.gradebook, encoding="utf-8") as f:
        assert f.readline().strip() == ",".join(COLUMNS)
    assert len(rows) == sum(len(r.outcomes) for r in batch.reports)
    for path, report in zip(batch.paths, batch.reports):
        mine = [r for r in rows if r["submission"] == str(path)]
        expected = ["unknown"] if report.exercise is None else QUESTIONS
        # a file graded twice appears twice, with identical rows
        copies = batch.paths.count(path)
        assert [r["question"] for r in mine] == expected * copies
        assert [float(r["score"]) for r in mine[: len(expected)]] == [o.score for o in report.outcomes]
    assert "OLD GRADEBOOK" not in batch.gradebook.read_text()
    assert "fs,ex01" not in batch.gradebook.read_text()


def test_gradebook_is_replaced_atomically(batch):
    assert batch.gradebook.stat().st_ino != batch.old_inode  # a new file renamed over the old one
    assert not [f for f in os.listdir(batch.gb_dir) if f.endswith(".tmp")]
    data = json.loads(batch.gb_json.read_text())
    assert [d["submission"] for d in data] == [str(p) for p in batch.paths]
    assert [d["score"] for d in data] == [r.score for r in batch.reports]


# ----------------------------------------------------------------------------- runs of their own


def _grade_alone(paths):
    try:
        return grade_submissions(paths, limits=LIMITS, jobs=JOBS, key=KEY)
    except Exception as err:  # the regression: one submission taking the whole batch down
        pytest.fail(f"grade_submissions crashed on a hostile submission: {type(err).__name__}: {err}")


def test_bad_derivation_call_does_not_crash_the_grader(teacher_dir):
    """Regression: a TypeError from sympy while parsing a step escapes scoring and kills the whole batch."""
    require_bwrap()
    paths = [install("ex01_crash_bad_derivation_call.py", teacher_dir), install("ex01_honest.py", teacher_dir)]
    bad, honest = _grade_alone(paths)
    assert scores(honest) == FULL
    assert scores(bad) == (2.0, 4.0, 1.0, 1.0, 0.0)
    assert outcome(bad, "ex01.var_qk").feedback.startswith("cannot read your steps")


def test_forged_ready_frame_does_not_crash_the_grader(teacher_dir):
    """Regression: a cell number like "²" (str.isdigit() but not int()) in the worker's "ready" frame.
    The worker now writes its frames with functions it holds from before the notebook ran, and notices
    that the notebook replaced one of its own: no points, with that reason."""
    require_bwrap()
    paths = [install("ex01_crash_forged_ready_frame.py", teacher_dir), install("ex01_honest.py", teacher_dir)]
    forged, honest = _grade_alone(paths)
    assert scores(honest) == FULL
    assert scores(forged) == ZERO
    assert all("changed the grader's own machinery (wire.write_frame)" in o.feedback for o in forged.outcomes)


def test_unhashable_dtype_in_an_answer_does_not_crash_the_grader(teacher_dir):
    """Regression: wire.decode raised TypeError (not WireError) for a list as the tensor dtype."""
    require_bwrap()
    paths = [install("ex01_crash_unhashable_dtype.py", teacher_dir), install("ex01_honest.py", teacher_dir)]
    forged, honest = _grade_alone(paths)
    assert scores(honest) == FULL
    assert scores(forged) == ZERO  # it replaced the worker's wire.encode: that is tampering with the grader
    assert all("changed the grader's own machinery (wire.encode)" in o.feedback for o in forged.outcomes)


def test_cli_grades_a_hostile_batch_and_exits_zero(teacher_dir):
    require_bwrap()
    subs, out_dir, teacher = teacher_dir / "subs", teacher_dir / "out", teacher_dir / "teacher"
    for d in (subs, out_dir, teacher):
        d.mkdir()
    token = new_token()
    gradebook, report = out_dir / "gb.csv", out_dir / "gb.json"
    (teacher / "canary_fs.txt").write_text("teacher's canary\n")
    canary = file_state(teacher / "canary_fs.txt")
    config = {"token": token, "submissions": str(subs), "gradebook": str(gradebook), "teacher": str(teacher)}
    names = ["ex01_os_exit_cell.py", "ex01_exit_in_functions.py", "ex01_not_callable.py", "ex01_filesystem.py",
             "ex01_honest.py"]
    paths = [install(n, subs, config) for n in names]
    (subs / "ex01_garbage.py").write_bytes(bytes(range(256)) * 4)
    paths.append(subs / "ex01_garbage.py")
    expected = [FULL, (2.0, 4.0, 0.0, 0.0, 0.0), ZERO, FULL, FULL, ZERO]

    proc = run_cli("grade", *map(str, paths), "--out", str(gradebook), "--json", str(report),
                   "--jobs", str(JOBS), "--timeout", f"{TIMEOUT:g}", "--memory", str(MEMORY_MB))
    assert proc.returncode == 0, proc.stderr
    assert "isolation: bubblewrap" in proc.stderr
    assert proc.stderr.count("points (") == len(paths), proc.stderr  # one progress line each
    rows = read_csv(gradebook)
    assert len(rows) == len(paths) * len(QUESTIONS)
    for path, exp in zip(paths, expected):
        mine = [r for r in rows if r["submission"] == str(path)]
        assert [r["question"] for r in mine] == QUESTIONS
        assert tuple(float(r["score"]) for r in mine) == exp, (path.name, mine)
    assert file_state(teacher / "canary_fs.txt") == canary
    assert sorted(os.listdir(out_dir)) == ["gb.csv", "gb.json"]  # the forged files never landed
    assert not [f for f in os.listdir(subs) if f.startswith("fs_")]
    assert len(json.loads(report.read_text())) == len(paths)


def test_cli_missing_file_is_a_clear_error(teacher_dir):
    honest = install("ex01_honest.py", teacher_dir)
    gradebook = teacher_dir / "gb.csv"
    proc = run_cli("grade", str(honest), str(teacher_dir / "nope.py"), "--out", str(gradebook))
    assert proc.returncode == 2
    assert "no such file" in proc.stderr and "nope.py" in proc.stderr
    assert not gradebook.exists()


@pytest.mark.parametrize(
    "options, message",
    [
        (["--jobs", "0"], "--jobs must be >= 1"),
        (["--timeout", "0"], "--timeout > 0"),
        (["--memory", "100"], "--memory >= 256"),
        (["--jobs", "two"], "invalid int value"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_cli_bad_options_are_clear_errors(teacher_dir, options, message):
    honest = install("ex01_honest.py", teacher_dir)
    gradebook = teacher_dir / "gb.csv"
    proc = run_cli("grade", str(honest), "--out", str(gradebook), *options)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert not gradebook.exists()


def test_cli_missing_output_folder_is_a_clear_error(teacher_dir):
    honest = install("ex01_honest.py", teacher_dir)
    proc = run_cli("grade", str(honest), "--out", str(teacher_dir / "no" / "such" / "gb.csv"))
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr


def test_every_fixture_is_graded_somewhere():
    fixtures = {p.name for p in (Path(__file__).parent / "submissions").glob("*.py")}
    used = set(EXPECTED) | {ESCAPE, VICTIM, "ex01_crash_bad_derivation_call.py", "ex01_crash_forged_ready_frame.py",
                            "ex01_crash_unhashable_dtype.py"}
    assert fixtures <= used, f"fixtures no test grades: {sorted(fixtures - used)}"
    assert len(fixtures) >= 15
