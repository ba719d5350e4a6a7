"""Reading submissions on the trusted side: the same code cells jupytext reads, in one linear pass,
and refusals (links, FIFOs, huge files, too many cells, not UTF-8, deep JSON) that say why, at once."""

import json
import os
import time
from pathlib import Path

import jupytext
import pytest

from vidlearn.grading.gradebook import known_exercises
from vidlearn.grading.questions import exercises
from vidlearn.grading.submissions import MAX_CELLS, MAX_CODE_BYTES, MAX_SUBMISSION_BYTES, read_submission, split_percent

ROOT = Path(__file__).resolve().parents[1]
YAML_BOMB = ROOT / "tests/grading/submissions/ex01_yaml_bomb_header.py"  # a header jupytext itself cannot read
NOTEBOOKS = sorted({*ROOT.glob("chapters/*.py"), *ROOT.glob("exercises/*.py"), *ROOT.glob("solutions/*.py"),
                    *ROOT.glob("tests/grading/submissions/*.py")} - {YAML_BOMB})


def _jupytext_code(path: Path) -> list[str]:
    cells = [c.source for c in jupytext.read(path).cells if c.cell_type == "code"]
    return [c for c in cells if c.strip()]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_the_percent_reader_finds_the_code_cells_jupytext_finds(path):
    meta, cells = split_percent(path.read_text(encoding="utf-8"))
    assert cells == _jupytext_code(path)
    if path.parent.name in ("exercises", "solutions"):
        assert meta["vidlearn"]["exercise"] == path.name[:4]


def test_a_header_that_crashes_yaml_is_read_by_a_line_scan():
    text = YAML_BOMB.read_text(encoding="utf-8")
    with pytest.raises(RecursionError):
        jupytext.reads(text, fmt="py:percent")
    meta, cells = split_percent(text)
    body = text.split("# ---\n", 2)[2]  # the same notebook without its header
    assert meta == {"vidlearn": {"exercise": "ex01"}} and cells == _jupytext_code_of(body)


def test_strings_and_markdown_do_not_start_cells():
    text = 'x = """\n# %%\nstill x\n"""\n# %% [markdown]\n# text\n# %%\ny = 1  # a "# %%" in a comment\n'
    assert split_percent(text)[1] == ['x = """\n# %%\nstill x\n"""', 'y = 1  # a "# %%" in a comment']
    assert split_percent(text)[1] == _jupytext_code_of(text)


def _jupytext_code_of(text: str) -> list[str]:
    return [c.source for c in jupytext.reads(text, fmt="py:percent").cells if c.cell_type == "code" and c.source.strip()]


def test_the_known_exercises_are_the_question_banks():
    assert known_exercises() == exercises()


def test_reading_is_linear_and_bounded(tmp_path):
    per_cell = "# %%\nx = 1\n"
    timings = []
    for n in (MAX_CELLS // 4, MAX_CELLS):
        p = tmp_path / f"ex01_{n}.py"
        p.write_text(per_cell * n)
        t = time.perf_counter()
        sub = read_submission(p, exercises())
        timings.append(time.perf_counter() - t)
        assert sub.error is None and len(sub.cells) == n
    assert timings[1] < 0.5 and timings[1] < 10 * timings[0] + 0.05, timings  # 4x the cells, not 16x the time
    for name, line in (("plain", "y = 2\n"), ("quotes", "s = 'a' + \"b\"  # c\n")):
        big = tmp_path / f"ex01_big_{name}.py"  # as much code as is allowed, in one cell
        big.write_text("# %%\n" + line * ((MAX_CODE_BYTES - 100) // len(line)))
        t = time.perf_counter()
        assert read_submission(big, exercises()).error is None
        assert time.perf_counter() - t < 1, name


@pytest.mark.parametrize("make, reason", [
    (lambda d: (d / "ex01_x.py").write_text("# %%\n" * 100_000), f"more than {MAX_CELLS} cells"),
    (lambda d: (d / "ex01_x.ipynb").write_text(json.dumps({"cells": [{"cell_type": "code", "source": ""}] * 3000})),
     f"more than {MAX_CELLS} cells"),
    (lambda d: (d / "ex01_x.py").write_bytes(b"# %%\n" + b" " * (MAX_SUBMISSION_BYTES + 1)), "the limit is 16 MiB"),
    (lambda d: (d / "ex01_x.py").write_bytes(b"# %%\n" + b"x = 1\n" * (MAX_CODE_BYTES // 6 + 1)), "the limit is 2 MiB"),
    (lambda d: (d / "ex01_x.ipynb").write_text(json.dumps({"cells": [{"cell_type": "code", "source": "x" * (1 << 20)}] * 3})),
     "more than 2 MiB of code"),
    (lambda d: (d / "ex01_x.py").write_bytes(b"\xff\xfe\x00x = 1"), "not UTF-8"),
    (lambda d: (d / "ex01_x.ipynb").write_text("[" * 100_000 + "]" * 100_000), "nested too deeply"),
    (lambda d: (d / "ex01_x.ipynb").write_text('{"cells": [{"cell_type": "code", "source": 3}]}'), "neither text"),
    (lambda d: os.symlink(ROOT / "solutions" / "ex01_attention.py", d / "ex01_x.py"), "symbolic link"),
    (lambda d: os.mkfifo(d / "ex01_x.py"), "not a regular file"),
    (lambda d: (d / "ex01_x.txt").write_text("x"), "expected a .ipynb notebook"),
])
def test_refusals_say_why_at_once(tmp_path, make, reason):
    make(tmp_path)
    path = next(tmp_path.iterdir())
    t = time.perf_counter()
    sub = read_submission(path, exercises())
    assert time.perf_counter() - t < 1
    assert sub.exercise == "ex01" and sub.error.startswith("not a readable notebook") and reason in sub.error, sub.error
