"""The worker kit: the only part of the course the grader's sandbox can see.

A folder holding a ``vidlearn`` package with just what a worker needs to run a notebook and answer
test calls (the worker, the wire format, the call guard and ``check``/``hint``/``case``, which do
nothing while grading), and none of the answer keys: not the library (``vidlearn.attention``, ...),
whose functions the grader compares with, not the question bank, not ``solutions/``. Any other
``vidlearn.*`` module imports inside the sandbox as a tripwire (see
:func:`vidlearn.grading.seal.install_tripwires`), and the worker seals its process before the
notebook runs (:func:`vidlearn.grading.seal.seal`).

The files are copied from this package, so there is one implementation of each; the kit is made
once per grading process, readable by the sandbox's unprivileged user, and removed at exit.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path

import vidlearn

__all__ = ["KIT_MODULES", "build_kit", "KIT_MOUNT"]

# The package's own files that go into the sandbox (paths relative to the vidlearn package).
KIT_MODULES = ("grading/__init__.py", "grading/worker.py", "grading/wire.py", "grading/calls.py",
               "grading/forbidden.py", "grading/seal.py")
KIT_MOUNT = "/vidlearn-kit"  # where the sandbox sees it (and what its PYTHONPATH names)

_INIT = '''"""vidlearn as the grader's sandbox sees it: the worker, and nothing of the course's answers."""

__version__ = {version!r}

from vidlearn.grading.seal import install_tripwires as _install_tripwires

_install_tripwires(__name__)
'''


@functools.lru_cache(maxsize=None)
def build_kit() -> Path:
    """The kit's folder (made on first use): ``<kit>/vidlearn/...``."""
    root = Path(tempfile.mkdtemp(prefix="vidlearn-kit-"))
    atexit.register(shutil.rmtree, root, True)
    source = Path(vidlearn.__file__).resolve().parent
    package = root / "vidlearn"
    (package / "grading").mkdir(parents=True)
    (package / "__init__.py").write_text(_INIT.format(version=vidlearn.__version__), encoding="utf-8")
    for rel in KIT_MODULES:
        shutil.copyfile(source / rel, package / rel)
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o644)
    return root
