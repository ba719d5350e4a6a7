"""Running a worker (student code) in a sandbox, with limits, and talking to it safely.

Isolation, strongest available first:

* **bubblewrap** (``bwrap``): the whole filesystem read-only, a private empty ``/tmp``,
  the submissions and the gradebook's folder hidden, no network, fresh PID/IPC/UTS
  namespaces, an empty environment, the sandbox killed with its parent;
* **cgroups** (when this process may create them, e.g. as root): a cap on the number of
  processes (fork bombs) and on memory, files in ``/tmp`` included;
* **rlimits**, always: address space, CPU seconds, file size, no core dumps, and (for a
  non-root user) a process count;
* **wall-clock deadlines**, always, enforced here: a worker that does not answer in time is
  killed with its whole process tree.

Without bwrap (macOS, Windows, minimal Linux) grading still runs, with limits only, and a
warning says so.
"""

from __future__ import annotations

import functools
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from vidlearn.grading import wire

__all__ = ["Limits", "Worker", "WorkerDied", "WorkerTimeout", "bwrap_available", "isolation_summary"]


@dataclass(frozen=True)
class Limits:
    timeout: float = 30.0  # seconds for running the notebook, and again for each question
    memory_mb: int = 2048
    file_mb: int = 16
    max_processes: int = 64


class WorkerTimeout(Exception):
    """The worker did not answer before its deadline (it has been killed)."""


class WorkerDied(Exception):
    """The worker exited or closed its channel (it has been reaped)."""


# Run as root, bwrap would keep its capabilities inside the sandbox (and a process could
# remount "/" read-write): drop them all, and forbid new user namespaces that could regain them.
_HARDENING = (("--unshare-user", "--disable-userns", "--cap-drop", "ALL"), ("--cap-drop", "ALL"))


@functools.lru_cache(maxsize=None)
def _bwrap_flags() -> tuple[str, ...] | None:
    """The hardening flags this bwrap accepts (probed once), or None if bwrap cannot run here."""
    exe = shutil.which("bwrap")
    if not exe or not sys.platform.startswith("linux"):
        return None
    for flags in _HARDENING:
        try:
            probe = subprocess.run(
                [exe, "--ro-bind", "/", "/", "--unshare-all", *flags, "--die-with-parent", "true"],
                capture_output=True,
                timeout=20,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        if probe.returncode == 0:
            return flags
    return None


def bwrap_available() -> bool:
    """Whether ``bwrap`` exists and can create a hardened sandbox here."""
    return _bwrap_flags() is not None


# Readable-by-owner secrets that a process running as the grader's user could otherwise read
# (and leak through its feedback): masked inside the sandbox.
_SECRET_FILES = ["/etc/shadow", "/etc/gshadow", "~/.netrc", "~/.git-credentials", "~/.pypirc"]
_SECRET_DIRS = ["/etc/ssh", "~/.ssh", "~/.gnupg", "~/.aws", "~/.config", "~/.docker", "~/.kube", "~/.jupyter"]


def _mask_secrets() -> list[str]:
    args = []
    for f in _SECRET_FILES:
        p = Path(f).expanduser()
        if p.is_file():
            args += ["--ro-bind", "/dev/null", str(p)]
    for d in _hideable([Path(d).expanduser() for d in _SECRET_DIRS]):
        args += ["--tmpfs", d]
    return args


class _Cgroup:
    """A throw-away cgroup capping processes and memory, where this process may make one."""

    def __init__(self, limits: Limits):
        self.dirs: list[Path] = []
        name = f"vidlearn-{uuid.uuid4().hex[:12]}"
        root = Path("/sys/fs/cgroup")
        try:
            if (root / "cgroup.controllers").exists():  # cgroup v2
                d = root / name
                d.mkdir()
                self.dirs.append(d)
                (d / "pids.max").write_text(str(limits.max_processes))
                (d / "memory.max").write_text(str(limits.memory_mb << 20))
            else:  # cgroup v1: one hierarchy per controller
                for ctrl, file, value in (
                    ("pids", "pids.max", limits.max_processes),
                    ("memory", "memory.limit_in_bytes", limits.memory_mb << 20),
                ):
                    d = root / ctrl / name
                    d.mkdir()
                    self.dirs.append(d)
                    (d / file).write_text(str(value))
        except OSError:
            self.remove()

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def kill(self) -> None:
        for d in self.dirs:
            try:
                for pid in (d / "cgroup.procs").read_text().split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except (ProcessLookupError, ValueError):
                        pass
            except OSError:
                pass

    def remove(self) -> None:
        for d in self.dirs:
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except OSError:
                    time.sleep(0.02)
        self.dirs = []


def _user_process_count() -> int:
    uid, n = os.getuid(), 0
    for entry in Path("/proc").iterdir() if Path("/proc").exists() else []:
        if entry.name.isdigit():
            try:
                n += entry.stat().st_uid == uid
            except OSError:
                pass
    return n


def isolation_summary() -> str:
    if bwrap_available():
        return ("bubblewrap sandbox (read-only filesystem, private /tmp, no network, own PID namespace, "
                "no capabilities) + limits")
    return "limits only (no bubblewrap): time, memory, file size and process limits, but no filesystem or network isolation"


def _needed() -> list[Path]:
    """Folders the worker needs to start: the interpreter, its environment, and this package."""
    import vidlearn

    return sorted({Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path(sys.executable).resolve().parent,
                   Path(vidlearn.__file__).resolve().parent})


def _hideable(paths) -> list[str]:
    """Folders that may be masked in the sandbox: never one the worker itself needs to run."""
    needed = _needed() + [Path("/tmp")]
    out = set()
    for p in paths:
        p = Path(p).resolve()
        if p.is_dir() and p != Path("/") and not any(n == p or p in n.parents for n in needed):
            out.add(str(p))
    return sorted(out)


def _rebind_under_tmp() -> list[str]:
    """The sandbox gets an empty /tmp; a checkout or environment living under /tmp is bound back in,
    read-only and whole (its top folder under /tmp), as it would be seen anywhere else."""
    tops = sorted({Path("/tmp") / n.relative_to("/tmp").parts[0] for n in _needed() if Path("/tmp") in n.parents})
    args = []
    for top in tops:
        args += ["--ro-bind", str(top), str(top)]
    return args


class Worker:
    """One sandboxed ``vidlearn.grading.worker`` process and the frames to and from it."""

    def __init__(self, limits: Limits, hide: list[Path] = ()):
        self.limits = limits
        self.cgroup = _Cgroup(limits) if os.geteuid() == 0 else None
        inner = [sys.executable, "-m", "vidlearn.grading.worker"]
        env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "VIDLEARN_GRADING": "1", "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
        self.sandboxed = bwrap_available()
        self._scratch = None
        if self.sandboxed:
            cmd = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
                   *_rebind_under_tmp()]
            for h in _hideable(hide):
                cmd += ["--tmpfs", h]  # other students' files and the gradebook are not visible
            cmd += _mask_secrets()
            cmd += ["--unshare-all", *_bwrap_flags(), "--die-with-parent", "--new-session", "--chdir", "/tmp",
                    "--clearenv"]
            for k, v in env.items():
                cmd += ["--setenv", k, v]
            cmd += inner
        else:
            self._scratch = tempfile.mkdtemp(prefix="vidlearn-grade-")
            env = {**env, "HOME": self._scratch, "TMPDIR": self._scratch}
            cmd = inner
        procs = self.cgroup.procs_files if self.cgroup else []
        if procs:
            # join the cgroup before bwrap starts, so every process of the sandbox is inside it
            cmd = ["/bin/sh", "-c", 'for f in $VIDLEARN_CGROUPS; do echo $$ > "$f" || exit 97; done; exec "$@"',
                   "vidlearn-shim", *cmd]
            env = {**env, "VIDLEARN_CGROUPS": " ".join(procs)}
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=self._scratch or "/",
            start_new_session=True,
        )
        self._buf = b""

    def start(self, cells: list[str], skip: set[int], total_budget: float) -> None:
        nproc = 0 if (os.geteuid() == 0 or sys.platform != "linux") else _user_process_count() + self.limits.max_processes
        self.send({
            "cells": cells,
            "skip": sorted(skip),
            "limits": {
                "memory_mb": self.limits.memory_mb,
                "file_mb": self.limits.file_mb,
                "cpu_seconds": int(total_budget) + 5,
                "nproc": nproc,
            },
        })

    def send(self, message: dict) -> None:
        try:
            wire.write_frame(self.proc.stdin.fileno(), message)
        except (BrokenPipeError, OSError):
            self.kill()
            raise WorkerDied("the worker closed its input") from None

    def receive(self, deadline: float) -> dict:
        """The next frame, or WorkerTimeout / WorkerDied (and the worker is gone)."""
        fd = self.proc.stdout.fileno()
        while True:
            if len(self._buf) >= 4:
                (n,) = struct.unpack(">I", self._buf[:4])
                if n > wire.MAX_FRAME:
                    self.kill()
                    raise WorkerDied(f"the worker sent a {n}-byte frame (limit {wire.MAX_FRAME})")
                if len(self._buf) >= 4 + n:
                    body, self._buf = self._buf[4 : 4 + n], self._buf[4 + n :]
                    try:
                        import json

                        msg = json.loads(body)
                    except ValueError:
                        self.kill()
                        raise WorkerDied("the worker sent a malformed frame") from None
                    if not isinstance(msg, dict):
                        self.kill()
                        raise WorkerDied("the worker sent a malformed frame")
                    return msg
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise WorkerTimeout()
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                self.kill()
                raise WorkerDied("the worker exited")
            self._buf += chunk

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.cgroup:
            self.cgroup.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        if self.cgroup:
            self.cgroup.remove()
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def close(self) -> None:
        """Ask the worker to stop, then make sure it has."""
        if self.proc.poll() is None:
            try:
                wire.write_frame(self.proc.stdin.fileno(), {"cmd": "done"})
                self.proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()
