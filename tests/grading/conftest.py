"""Helpers for the adversarial grading suite: installing hostile submissions, watching side effects.

Hostile submissions live in ``tests/grading/submissions/`` as Jupytext percent files. They are
copied into a fresh folder for every run, with the line ``CONFIG = {}  # @vidlearn-test-config@``
replaced by the run's settings (a token, the port of a TCP server the test listens on, the paths of
the teacher's files the submission attacks, ...), and the line ``# @vidlearn-honest-answers@`` by
the honest answers of ``ex01_honest.py`` (a fixture then writes only its hostile parts, after it:
a later definition replaces an earlier one, as in a notebook).

The teacher's folders (submissions, gradebook, canaries) are made under ``/var/tmp``, not ``/tmp``:
the sandbox mounts a private ``/tmp``, so files under the real ``/tmp`` would be invisible to the
student's code anyway and the tests would prove nothing about the read-only filesystem or about the
hiding of the submissions and gradebook folders.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path

import pytest

from vidlearn.grading.sandbox import bwrap_available

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the stand-in helpers

# `vidlearn grade` and `progress` make a grading key in the user's config folder on first use: the tests
# give them one of their own, never the real one.
os.environ["XDG_CONFIG_HOME"] = os.environ.setdefault("VIDLEARN_TEST_CONFIG", tempfile.mkdtemp(prefix="vidlearn-cfg-"))

ROOT = Path(__file__).resolve().parents[2]
SUBMISSIONS = Path(__file__).resolve().parent / "submissions"
CONFIG_LINE = "CONFIG = {}  # @vidlearn-test-config@"
HONEST_LINE = "# @vidlearn-honest-answers@"
TEACHER_BASE = Path("/var/tmp")

KEY = "adversarial-suite-grading-key"  # the grader's cases come from it, as with a teacher's key

# Limits for the hostile batch: short, so that the suite stays fast.
TIMEOUT = 5.0
MEMORY_MB = 1024
JOBS = 2

QUESTIONS = [
    "ex01.softmax",
    "ex01.scaled_dot_product_attention",
    "ex01.split_heads",
    "ex01.merge_heads",
    "ex01.var_qk",
]
MAX_POINTS = {"ex01.softmax": 2.0, "ex01.scaled_dot_product_attention": 4.0, "ex01.split_heads": 1.0,
              "ex01.merge_heads": 1.0, "ex01.var_qk": 2.0}
FULL = (2.0, 4.0, 1.0, 1.0, 2.0)
ZERO = (0.0, 0.0, 0.0, 0.0, 0.0)


def require_bwrap() -> None:
    """The isolation tests mean nothing without the sandbox: fail loudly instead of skipping."""
    assert bwrap_available(), (
        "bubblewrap (bwrap) is not usable here, so student code would run unsandboxed; "
        "the adversarial grading suite needs it (apt install bubblewrap)"
    )


def make_teacher_dir(prefix: str = "vidlearn-adversarial-") -> Path:
    TEACHER_BASE.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=TEACHER_BASE))


def config_literal(config: dict) -> str:
    return f"CONFIG = {config!r}  # set by the test harness"


def install(name: str, dest_dir: Path, config: dict | None = None, new_name: str | None = None) -> Path:
    """Copy the fixture ``name`` into ``dest_dir`` (as ``new_name``), filling in its CONFIG line."""
    text = (SUBMISSIONS / name).read_text(encoding="utf-8")
    if CONFIG_LINE in text:
        assert config is not None, f"{name} needs a config"
        text = text.replace(CONFIG_LINE, config_literal(config))
    if HONEST_LINE in text:
        text = text.replace(HONEST_LINE, honest_answers())
    dest = Path(dest_dir) / (new_name or name)
    dest.write_text(text, encoding="utf-8")
    return dest


def honest_answers() -> str:
    """The code cells of ``ex01_honest.py`` after its imports: the five honest answers and their checks."""
    text = (SUBMISSIONS / "ex01_honest.py").read_text(encoding="utf-8")
    return text[text.index("# %%\ndef softmax"):]


def to_ipynb(py: Path, dest: Path) -> Path:
    """Convert a Jupytext percent file to a notebook with jupytext (at test time; never committed)."""
    import jupytext

    nb = jupytext.read(py)
    jupytext.write(nb, dest, fmt="ipynb")
    return dest


def scores(report) -> tuple[float, ...]:
    by_question = {o.question: o.score for o in report.outcomes}
    return tuple(by_question.get(q) for q in QUESTIONS)


def outcome(report, question: str):
    matches = [o for o in report.outcomes if o.question == question]
    assert len(matches) == 1, f"{report.submission}: {len(matches)} outcomes for {question}"
    return matches[0]


def file_state(path: Path) -> tuple | None:
    """(sha256, size, mtime_ns, mode) of a file, or None if it is gone."""
    try:
        st = path.stat()
        return hashlib.sha256(path.read_bytes()).hexdigest(), st.st_size, st.st_mtime_ns, st.st_mode
    except FileNotFoundError:
        return None


def tree_state(root: Path) -> dict[str, tuple | None]:
    """Every file below ``root`` with its state (names relative to ``root``)."""
    return {str(p.relative_to(root)): file_state(p) for p in sorted(Path(root).rglob("*")) if p.is_file()}


_SKIP_IN_REPO = {".git", ".venv", "build", "__pycache__", ".pytest_cache", ".ipynb_checkpoints"}


def repo_state() -> dict[str, tuple]:
    """Files of the repository (sources, solutions, chapters, tests), without caches and the venv."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_IN_REPO and not d.endswith(".egg-info")]
        for f in filenames:
            p = Path(dirpath) / f
            st = p.stat()
            out[str(p.relative_to(ROOT))] = (st.st_size, st.st_mtime_ns)
    return out


def processes_with(marker: str) -> list[int]:
    """Pids of live processes whose command line contains ``marker``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline and int(entry.name) != os.getpid():
            pids.append(int(entry.name))
    return pids


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


class ListeningServer:
    """A stream server (TCP on 127.0.0.1, or an abstract unix socket) that records every connection."""

    def __init__(self, family: int, address):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind(address)
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.address = self.sock.getsockname()
        self.connections: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            with conn:
                conn.settimeout(1.0)
                try:
                    self.connections.append(conn.recv(1024) or b"<connected, sent nothing>")
                except OSError:
                    self.connections.append(b"<connected>")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def run_cli(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """``vidlearn ...`` in a subprocess, as a teacher would run it."""
    return subprocess.run([sys.executable, "-m", "vidlearn.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def new_token() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture
def teacher_dir():
    d = make_teacher_dir()
    yield d
    shutil.rmtree(d, ignore_errors=True)
