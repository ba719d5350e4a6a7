"""The teacher's grading key: the secret the grader draws its test inputs from.

``check()`` and ``case()`` use the public, reproducible cases; ``vidlearn grade`` uses cases drawn
from this key, so a table of answers copied from ``case()`` earns nothing, while grading the same
files twice with the same key gives the same gradebook. The key lives outside the course folder
(which students may have whole), by default in ``$XDG_CONFIG_HOME/vidlearn/grading-key`` (else
``~/.config/vidlearn/grading-key``), made on first use with mode 0600; ``--key FILE`` names another.
The sandbox never sees it: inputs are drawn here and only the inputs are sent.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["default_key_path", "load_key", "GradingKeyError"]


class GradingKeyError(ValueError):
    """The key file exists but cannot be used."""


def default_key_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "vidlearn" / "grading-key"


def load_key(path: Path | None = None, *, create: bool = True) -> tuple[str, Path, bool]:
    """(the key, its file, whether it was made just now)."""
    path = Path(path) if path is not None else default_key_path()
    if not path.exists():
        if not create:
            raise GradingKeyError(f"no grading key at {path}")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        made = True
    else:
        made = False
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as err:
        raise GradingKeyError(f"cannot read the grading key {path}: {err}") from None
    if len(text) < 16 or not text.isprintable():
        raise GradingKeyError(f"{path} is not a grading key (expected at least 16 printable characters)")
    return text, path, made
