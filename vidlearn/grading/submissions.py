"""Reading a submitted notebook on the trusted side: bounded, linear in its size, never trusting it.

A submission is a ``.ipynb`` file or a Jupytext percent ``.py`` file. Both are read here without
jupytext or nbformat (whose percent reader is quadratic in the number of cells, and whose import
alone costs seconds): ``.ipynb`` with :mod:`json`, ``.py`` with a one-pass splitter that follows
jupytext's rules for what starts a cell (``# %%`` outside a string; ``[markdown]`` and ``[raw]``
cells are not code). ``tests/test_submissions.py`` checks that both agree with jupytext on every
notebook of the course.

Refused at once, with the reason: symbolic links (a link to a classmate's file is not your work),
anything that is not a regular file (a FIFO would block the grader), files over
``MAX_SUBMISSION_BYTES``, more than ``MAX_CODE_BYTES`` of code, notebooks of more than ``MAX_CELLS``
cells, and text that is not UTF-8. Within those caps a submission reads in well under a second.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Submission", "read_submission", "split_percent", "MAX_SUBMISSION_BYTES", "MAX_CODE_BYTES", "MAX_CELLS",
           "exercise_from_name"]

MAX_SUBMISSION_BYTES = 16 << 20  # a saved .ipynb carries its outputs (plots) too
MAX_CODE_BYTES = 2 << 20  # the code itself (a whole .py file; the code cells of a .ipynb): ~100 times an exercise
MAX_CELLS = 2000
MAX_HEADER_BYTES = 64 << 10
_EXERCISE_ID = re.compile(r"ex\d\d", re.I)
# jupytext's percent markers: "# %%" (with options after a space), or a bare "# %%" / "# <codecell>"
_MARKER = re.compile(r"^\s*#\s*%%(%*)(\s.*)?$")
_ALT_MARKER = re.compile(r"^\s*#\s*(%%|<codecell>|In\[[0-9 ]*\]:?)\s*$")
_NOT_CODE = re.compile(r"\[(markdown|md|raw)\]")


@dataclass
class Submission:
    """What the grader needs from a submitted file: its code and the exercise it answers."""

    path: Path
    exercise: str | None
    cells: list[str] = field(default_factory=list)
    error: str | None = None
    digest: str = ""  # sha256 of the file's bytes


def exercise_from_name(name: str) -> str | None:
    m = _EXERCISE_ID.search(name)
    return m.group(0).lower() if m else None


class _Refused(ValueError):
    pass


def _read_bytes(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        if os.path.islink(path):
            raise _Refused("it is a symbolic link; hand in the notebook file itself") from None
        raise _Refused(f"cannot open it ({err.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _Refused("it is not a regular file")
        if st.st_size > MAX_SUBMISSION_BYTES:
            raise _Refused(f"the file is {st.st_size / 2**20:.1f} MiB; the limit is {MAX_SUBMISSION_BYTES >> 20} MiB")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > MAX_SUBMISSION_BYTES:  # it grew while being read
                raise _Refused(f"the file is over the {MAX_SUBMISSION_BYTES >> 20} MiB limit")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------- the percent format


_TOKEN = re.compile(r"\\.|'{3}|\"{3}|'|\"|#")  # an escape, a triple quote, a quote, a comment
_ANY_TOKEN = re.compile(r"[\\'\"#]")


class _Strings:
    """Whether a line ends inside a Python string: single, double and triple quotes, ``#`` comments.
    Scans with a regular expression, so a line costs C time, not a Python loop per character."""

    def __init__(self):
        self.open: str | None = None  # the quote that is open at the end of the last line

    def feed(self, line: str) -> None:
        if self.open is None and not _ANY_TOKEN.search(line):
            return
        for m in _TOKEN.finditer(line):
            tok = m.group()
            if tok[0] == "\\":
                continue  # an escaped character (or a line continuation)
            if self.open:
                if tok == self.open or (len(self.open) == 1 and tok[0] == self.open):
                    self.open = None  # a triple quote after a one-quote string closes it, then "" is empty
                continue
            if tok == "#":
                break
            self.open = tok
        if self.open in ("'", '"'):  # a one-quote string cannot continue on the next line
            self.open = None


def split_percent(text: str) -> tuple[dict, list[str]]:
    """``(metadata, code cells)`` of a Jupytext percent script, in one pass."""
    lines = text.split("\n")
    start, meta = 0, {}  # (the header may be anything: only the vidlearn entry is read, by a line scan)
    while start < len(lines) and lines[start].startswith("#!"):
        start += 1
    if start < len(lines) and lines[start].rstrip() == "# ---":
        end = next((i for i in range(start + 1, len(lines)) if lines[i].rstrip() == "# ---"), None)
        if end is not None:
            meta = _header(lines[start + 1 : end])
            start = end + 1
    cells: list[str] = []
    current: list[str] = []
    is_code, strings = True, _Strings()

    def close() -> None:
        if is_code and any(line.strip() for line in current):
            while current and not current[-1].strip():
                current.pop()
            cells.append("\n".join(current))

    markers = 0
    for line in lines[start:]:
        if strings.open is None and "#" in line and (_MARKER.match(line) or _ALT_MARKER.match(line)):
            markers += 1
            if markers > MAX_CELLS:  # counted as they come: refused before the rest is even split
                raise _Refused(f"it has more than {MAX_CELLS} cells")
            close()
            m = _MARKER.match(line)
            is_code = not (m and _NOT_CODE.search(m.group(2) or ""))
            current = []
            continue
        current.append(line)
        if is_code:
            strings.feed(line)
    close()
    return meta, cells


_VIDLEARN_KEY = re.compile(r"^(\s*)vidlearn:\s*$")
_EXERCISE_KEY = re.compile(r"^(\s*)exercise:\s*['\"]?(ex\d\d)['\"]?\s*$", re.I)


def _header(lines: list[str]) -> dict:
    """The ``vidlearn: exercise: exNN`` entry of a Jupytext header, found by a line scan. No YAML
    parser reads student text: its recursion, dates and big integers have crashed one before."""
    for i, line in enumerate(lines[:2000]):
        m = _VIDLEARN_KEY.match(line[1:] if line.startswith("#") else line)
        if not m:
            continue
        for inner in lines[i + 1 : i + 50]:
            inner = inner[1:] if inner.startswith("#") else inner
            e = _EXERCISE_KEY.match(inner)
            if e and len(e.group(1)) > len(m.group(1)):
                return {"vidlearn": {"exercise": e.group(2).lower()}}
            if inner.strip() and len(inner) - len(inner.lstrip()) <= len(m.group(1)):
                break  # left the vidlearn block
    return {}


def _ipynb(text: str) -> tuple[dict, list[str]]:
    try:
        nb = json.loads(text)
    except RecursionError:
        raise _Refused("its JSON is nested too deeply") from None
    except ValueError as err:
        raise _Refused(f"it is not valid JSON ({err})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise _Refused("it is not a notebook (no list of cells)")
    if len(nb["cells"]) > MAX_CELLS:
        raise _Refused(f"it has more than {MAX_CELLS} cells")
    cells = []
    for cell in nb["cells"]:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(s, str) for s in source):
            cells.append("".join(source))
        elif isinstance(source, str):
            cells.append(source)
        else:
            raise _Refused("a code cell's source is neither text nor a list of lines")
    if sum(len(c) for c in cells) > MAX_CODE_BYTES:
        raise _Refused(f"its code cells hold more than {MAX_CODE_BYTES >> 20} MiB of code")
    meta = nb.get("metadata")
    return (meta if isinstance(meta, dict) else {}), cells


def read_submission(path: Path, known_exercises: list[str]) -> Submission:
    """Read a ``.ipynb`` or Jupytext ``.py`` submission; problems become ``error``, never exceptions."""
    path = Path(path)
    guess = exercise_from_name(path.name)
    sub = Submission(path, guess if guess in known_exercises else None)
    try:
        if path.suffix not in (".ipynb", ".py"):
            raise _Refused("expected a .ipynb notebook or a Jupytext .py file")
        data = _read_bytes(path)
        sub.digest = hashlib.sha256(data).hexdigest()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise _Refused(f"it is not UTF-8 text (byte {err.start})") from None
        if path.suffix == ".py" and len(data) > MAX_CODE_BYTES:
            raise _Refused(f"the file is {len(data) / 2**20:.1f} MiB of code; the limit is {MAX_CODE_BYTES >> 20} MiB")
        meta, cells = _ipynb(text) if path.suffix == ".ipynb" else split_percent(text)
    except _Refused as why:
        sub.error = f"not a readable notebook: {why}"
        return sub
    except Exception as err:  # never an exception out of here: a file the grader chokes on scores zero
        sub.error = f"not a readable notebook: {type(err).__name__}"
        return sub
    own = meta.get("vidlearn")
    declared = own.get("exercise") if isinstance(own, dict) else None
    if isinstance(declared, str) and declared in known_exercises:
        sub.exercise = declared
    sub.cells = cells
    if sub.exercise is None:
        sub.error = "cannot tell which exercise this answers (no vidlearn metadata and no exNN in the file name)"
    return sub
