"""What reaches the teacher from a hostile class: the terminal, the gradebook, the feedback files and the
summary stay inert; file names cannot reconfigure a run or overwrite each other; an interrupted run keeps
what it graded; grading runs only in a sandbox unless the teacher says otherwise; the same key gives the
same gradebook."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import KEY, QUESTIONS, ROOT, install, read_csv, require_bwrap, run_cli

RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
FORMULA_START = re.compile(r"^\s*[=+\-@]")
ESCAPE_NAMES = [
    "ex01_\x1b]0;pwned\x07.py",  # terminal title
    "ex01_\x1b[2J\x1b[H.py",  # clear the screen
    "ex01_\x1b]52;c;ZXZpbA==\x07.py",  # write the clipboard
    "ex01_a\n[9\u22159] everyone.py: 10\u221510 points.py",  # a newline and a fake progress line ("∕": no "/" in a name)
    "ex01_\u202eyp.evil.py",  # right-to-left override
]


def _key_file(folder: Path) -> Path:
    path = folder / "grading-key"
    path.write_text(KEY + "\n")
    return path


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """`vidlearn grade` on file names and texts aimed at the teacher, with every output asked for."""
    require_bwrap()
    base = tmp_path_factory.mktemp("outputs")
    subs, out = base / "subs", base / "out"
    (subs / "other").mkdir(parents=True)
    out.mkdir()
    paths = [install("ex01_hostile_text.py", subs)]
    paths += [install("ex01_honest.py", subs, new_name=name) for name in ESCAPE_NAMES]
    # names that collide with each other and with the "-2" numbering
    paths += [install("ex01_honest.py", subs, new_name="ex01_a.py"), install("ex01_honest.py", subs / "other",
                                                                          new_name="ex01_a.py"),
              install("ex01_honest.py", subs, new_name="ex01_a-2.py"), install("ex01_honest.py", subs,
                                                                                new_name="EX01_A.py")]
    many = subs / "ex01_450_raising_cells.py"
    honest = (subs / "ex01_a.py").read_text()
    many.write_text(honest.replace("def split_heads", "def _not_split_heads")
                    + "".join(f"\n# %%\nraise ValueError('cell {i} ' + 'x' * 30)\n" for i in range(450)))
    paths.append(many)
    gradebook, report, feedback, summary = out / "gradebook.csv", out / "report.json", out / "feedback", out / "summary.md"
    proc = run_cli("grade", "--out", str(gradebook), "--json", str(report), "--feedback", str(feedback),
                   "--summary", str(summary), "--jobs", "2", "--timeout", "10", "--key", str(_key_file(base)),
                   "--", *map(str, paths), timeout=600)
    return dict(proc=proc, paths=paths, gradebook=gradebook, report=report, feedback=feedback, summary=summary,
                out=out)


def test_the_run_succeeds(hostile_run):
    assert hostile_run["proc"].returncode == 0, hostile_run["proc"].stderr


def test_the_terminal_sees_no_escape_and_no_forged_line(hostile_run):
    err = hostile_run["proc"].stderr + hostile_run["proc"].stdout
    assert not RAW_CONTROL.search(err.replace("\n", "")), repr(err)
    lines = err.splitlines()
    assert not [l for l in lines if l.startswith("[9\u22159]")], lines
    assert sum(bool(re.match(r"\[\d+/\d+\] ", l)) for l in lines) == len(hostile_run["paths"])


def test_the_gradebook_is_inert(hostile_run):
    text = hostile_run["gradebook"].read_text(encoding="utf-8")
    rows = read_csv(hostile_run["gradebook"])
    assert len(rows) == len(hostile_run["paths"]) * len(QUESTIONS)
    for row in rows:
        for value in row.values():
            assert not RAW_CONTROL.search(value) and "\n" not in value and "\t" not in value, repr(value)
            assert len(value) <= 32_767
            for field in re.split(r"[;\n\t]", value):
                assert not FORMULA_START.match(field), (value, field)
    assert "\x1b" not in text


def test_the_report_keeps_the_full_text_escaped(hostile_run):
    raw = hostile_run["report"].read_text(encoding="utf-8")
    assert "\x1b" not in raw and "\\u001b" in raw  # JSON escapes, the text itself is all there
    data = json.loads(raw)
    fb = next(q["feedback"] for d in data if d["submission"].endswith("ex01_hostile_text.py") for q in d["questions"]
              if q["question"] == "ex01.softmax")
    assert "\x1b]52;c;ZXZpbA==\x07" in fb


def test_feedback_files_are_distinct_inert_and_cannot_forge_a_score(hostile_run):
    files = sorted(hostile_run["feedback"].iterdir())
    assert len(files) == len(hostile_run["paths"])  # none overwrote another
    assert len({f.name.lower() for f in files}) == len(files)
    for f in files:
        assert re.fullmatch(r"[A-Za-z0-9._-]+\.md", f.name), f.name
        text = f.read_text(encoding="utf-8")
        assert not RAW_CONTROL.search(text.replace("\n", "")), f.name
        bare = re.sub(r"(`+).*?\1", "", text)  # what a student wrote sits in code spans, shown as it is
        assert "<" not in bare and "![" not in bare and "http" not in bare and "evil" not in bare, (f.name, bare)
        headings = [l for l in text.splitlines() if l.startswith("#")]
        assert headings[0].startswith("# Feedback: ") and len(headings) == 1 + len(QUESTIONS), headings
        assert all(re.match(r"## [✅❌] ex01\.\w+: [\d.]+ / \d+$", h) for h in headings[1:]), headings
        assert len(re.findall(r"^\*\*Exercise", text, re.M)) == 1
    assert "ex01_a.md" not in {f.name.lower() for f in files}  # a name three would share goes to none of them
    hostile = next(f for f in files if f.name.startswith("ex01_hostile_text"))
    assert "<script>alert(1)</script>" in hostile.read_text()  # there, as text, inside a code span


def test_the_summary_survives_a_flood_of_cell_errors(hostile_run):
    assert hostile_run["summary"].exists() and hostile_run["summary"].with_suffix(".png").exists()
    rows = [r for r in read_csv(hostile_run["gradebook"]) if r["submission"].endswith("ex01_450_raising_cells.py")]
    fb = next(r["feedback"] for r in rows if r["question"] == "ex01.split_heads")
    assert "split_heads not defined" in fb and "more (see the notes)" in fb and len(fb) < 2000
    # and an old, hand-edited gradebook with a huge cell still summarises
    big = hostile_run["out"] / "big.csv"
    with open(hostile_run["gradebook"], newline="", encoding="utf-8") as f:
        old = list(csv.DictReader(f))
    old[0]["feedback"] = "y" * 300_000
    with open(big, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(old[0]))
        w.writeheader()
        w.writerows(old)
    proc = run_cli("summary", str(big), "--out", str(hostile_run["out"] / "big.md"))
    assert proc.returncode == 0, proc.stderr


def test_an_option_named_file_cannot_reconfigure_a_run(tmp_path):
    install("ex01_honest.py", tmp_path, new_name="--feedback=.py")
    install("ex01_honest.py", tmp_path, new_name="ex01_b.py")
    cmd = [sys.executable, "-m", "vidlearn.cli", "grade", "--out", "gb.csv", "--key", str(_key_file(tmp_path))]
    # as a shell would expand `vidlearn grade --out gb.csv *.py` in that folder
    proc = subprocess.run(cmd + ["--feedback=.py", "ex01_b.py"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2 and "is both an option and a file here; put -- before" in proc.stderr, proc.stderr
    assert not (tmp_path / "gb.csv").exists() and not (tmp_path / ".py").exists()
    require_bwrap()
    proc = subprocess.run(cmd + ["--", "--feedback=.py", "ex01_b.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = read_csv(tmp_path / "gb.csv")
    assert {r["submission"] for r in rows} == {"'--feedback=.py", "ex01_b.py"}  # (a cell never starts with -)
    assert all(r["score"] == r["max_score"] for r in rows)


def test_outputs_cannot_share_the_feedback_folder(tmp_path):
    sub = install("ex01_honest.py", tmp_path, new_name="summary.py")
    (tmp_path / "out").mkdir()
    proc = run_cli("grade", "--out", str(tmp_path / "gb.csv"), "--feedback", str(tmp_path / "out"), "--summary",
                   str(tmp_path / "out" / "summary.md"), "--key", str(_key_file(tmp_path)), "--", str(sub))
    assert proc.returncode == 2 and "out of the --feedback folder" in proc.stderr, proc.stderr


def test_no_sandbox_no_grading_unless_the_teacher_says_so(tmp_path):
    sub = install("ex01_honest.py", tmp_path)
    env = {**os.environ, "VIDLEARN_BWRAP": str(tmp_path / "no-such-bwrap")}
    base = [sys.executable, "-m", "vidlearn.cli", "grade", "--out", str(tmp_path / "gb.csv"), "--key",
            str(_key_file(tmp_path))]
    proc = subprocess.run(base + ["--", str(sub)], env=env, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    assert "refusing to run student code without a sandbox" in proc.stderr
    assert "--no-sandbox" in proc.stderr and "read and write your files" in proc.stderr
    assert not (tmp_path / "gb.csv").exists()
    proc = subprocess.run(base + ["--no-sandbox", "--", str(sub)], env=env, capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "NO SANDBOX" in proc.stderr
    assert all(r["score"] == r["max_score"] for r in read_csv(tmp_path / "gb.csv"))


def test_an_interrupted_run_keeps_what_it_graded(tmp_path):
    require_bwrap()
    first = install("ex01_honest.py", tmp_path, new_name="ex01_first.py")
    slow = install("ex01_loop_cell.py", tmp_path, new_name="ex01_slow.py")
    gradebook, report = tmp_path / "gb.csv", tmp_path / "gb.json"
    proc = subprocess.Popen([sys.executable, "-m", "vidlearn.cli", "grade", "--out", str(gradebook), "--json",
                             str(report), "--timeout", "60", "--key", str(_key_file(tmp_path)), "--", str(first),
                             str(slow)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not gradebook.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert gradebook.exists(), "the first submission's grades never reached the gradebook"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted; 1 of 2 submissions graded" in err
    rows = read_csv(gradebook)
    assert {r["submission"] for r in rows} == {str(first)} and len(rows) == len(QUESTIONS)
    assert len(json.loads(report.read_text())) == 1
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_grading_twice_gives_identical_gradebooks_and_another_key_other_inputs(tmp_path):
    require_bwrap()
    subs = [install(n, tmp_path) for n in ("ex01_honest.py", "ex01_fake_output.py", "ex01_raise_everywhere.py")]
    key = _key_file(tmp_path)
    texts = []
    for run in range(2):
        out = tmp_path / f"gb{run}.csv"
        proc = run_cli("grade", "--out", str(out), "--key", str(key), "--jobs", "2", "--", *map(str, subs), timeout=300)
        assert proc.returncode == 0, proc.stderr
        texts.append(out.read_text())
    assert texts[0] == texts[1]
    from vidlearn.grading.questions import get_question

    q = get_question("ex01.softmax")
    assert not all(a.args[0].equal(b.args[0]) for a, b in zip(q.cases(KEY), q.cases(KEY + "-other")))
    assert all(a.args[0].equal(b.args[0]) for a, b in zip(q.cases(KEY), q.cases(KEY)))


def test_a_fresh_key_is_private(tmp_path):
    from vidlearn.grading.key import load_key

    key, path, made = load_key(tmp_path / "cfg" / "grading-key")
    assert made and len(key) == 64 and (path.stat().st_mode & 0o777) == 0o600
    assert load_key(path) == (key, path, False)
