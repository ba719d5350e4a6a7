"""Running a worker (student code) in a sandbox, with limits, and talking to it safely.

Each worker gets, all enforced by the operating system:

* **bubblewrap** (:mod:`vidlearn.grading.bwrap`): a filesystem built from an empty root with only
  the Python environment and the worker kit in it, read-only; a private, size-capped ``/tmp``; no
  network; its own PID, IPC and UTS namespaces; an empty environment; an unprivileged uid with no
  capabilities; a seccomp filter; killed with its parent;
* **its own share of the machine** (:mod:`vidlearn.grading.resources`): one CPU, ``memory_mb`` and
  ``max_processes``, from a cgroup where this process may make one, else from a throttle that
  stops its process tree while it is over one CPU, and ``RLIMIT_NPROC``;
* **rlimits**: address space, CPU seconds, file size, no core dumps;
* **wall-clock deadlines**, enforced here, counted from the moment the worker says it is ready (its
  own start-up, ``import torch`` included, has a budget of its own): a worker that does not answer
  in time is killed with its whole process tree.

Without bubblewrap nothing of this but the limits and deadlines applies, and ``vidlearn grade``
refuses to run unless the teacher passes ``--no-sandbox``.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from vidlearn.grading import wire
from vidlearn.grading.bwrap import command, find_bwrap, launch
from vidlearn.grading.kit import build_kit
from vidlearn.grading.resources import Throttle, make_cgroup

__all__ = ["Limits", "Worker", "WorkerDied", "WorkerTimeout", "bwrap_available", "isolation_summary",
           "START_SECONDS"]

START_SECONDS = 60.0  # a worker's own start-up (interpreter, torch), before the notebook's clock starts


@dataclass(frozen=True)
class Limits:
    timeout: float = 30.0  # seconds for running the notebook, and again for each question
    memory_mb: int = 2048
    file_mb: int = 16
    tmp_mb: int = 256  # the sandbox's /tmp
    max_processes: int = 64
    cpus: float = 1.0  # each sandbox's CPU share


class WorkerTimeout(Exception):
    """The worker did not answer before its deadline (it has been killed)."""


class WorkerDied(Exception):
    """The worker exited or closed its channel (it has been reaped)."""


def bwrap_available() -> bool:
    """Whether a ``bwrap`` exists that can create this sandbox here."""
    return find_bwrap()[0] is not None


def isolation_summary(sandbox: bool = True) -> str:
    if not sandbox:
        return ("NO SANDBOX (--no-sandbox): time, memory, file-size and process limits only; student code can read "
                "and write your files and use the network")
    bw, which = find_bwrap()
    if bw is None:
        return f"no sandbox available: {which}"
    share = "own cgroup (1 CPU, memory, processes)" if _cgroups_work() else "CPU throttle + per-sandbox process cap"
    user = "an unprivileged uid of its own" if bw.as_root else "nobody in a user namespace"
    return (f"{which}: empty root with only the Python environment and the worker kit, read-only; private /tmp; "
            f"no network; own PID namespace; {user}, no capabilities; {share}")


_CGROUPS: list[bool] = []


def _cgroups_work() -> bool:
    if not _CGROUPS:
        probe = make_cgroup(1.0, 256, 8)
        _CGROUPS.append(probe is not None)
        if probe:
            probe.remove()
    return _CGROUPS[0]


def _kernel_counts_per_namespace() -> bool:
    """RLIMIT_NPROC counts per user namespace since Linux 5.14 (per uid, system-wide, before)."""
    try:
        major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (5, 14)


def _user_process_count() -> int:
    uid, n = os.getuid(), 0
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            try:
                n += os.stat(f"/proc/{entry}").st_uid == uid
            except OSError:
                pass
    return n


class Worker:
    """One sandboxed ``vidlearn.grading.worker`` process and the frames to and from it."""

    def __init__(self, limits: Limits, hide: list[Path] = (), *, sandbox: bool = True):
        self.limits = limits
        self.sandboxed = sandbox
        self._scratch = None
        self.throttle = None
        bw = find_bwrap()[0] if sandbox else None
        if sandbox and bw is None:
            raise RuntimeError(f"no sandbox: {find_bwrap()[1]}")
        inner = [sys.executable, "-m", "vidlearn.grading.worker"]
        self.cgroup = make_cgroup(limits.cpus, limits.memory_mb, limits.max_processes) if sandbox else None
        fds: tuple[int, ...] = ()
        if sandbox:
            cmd, fds = launch(command(bw, inner, tmp_mb=limits.tmp_mb, hide=list(hide)), inner)
            env, cwd = {}, "/"
            self._nproc = limits.max_processes + 1 if (bw.as_root or _kernel_counts_per_namespace()) \
                else _user_process_count() + limits.max_processes
        else:
            self._scratch = tempfile.mkdtemp(prefix="vidlearn-grade-")
            kit = str(build_kit())
            env = {"PATH": "/usr/bin:/bin", "HOME": self._scratch, "TMPDIR": self._scratch, "VIDLEARN_GRADING": "1",
                   "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": kit, "LANG": "C.UTF-8"}
            cmd, cwd = inner, self._scratch
            self._nproc = 0 if os.geteuid() == 0 else _user_process_count() + limits.max_processes
        if self.cgroup:
            # join the cgroup before bwrap starts, so every process of the sandbox is inside it
            cmd = ["/bin/sh", "-c", 'for f in $VIDLEARN_CGROUPS; do echo $$ > "$f" || exit 97; done; exec "$@"',
                   "vidlearn-shim", *cmd]
            env = {**env, "VIDLEARN_CGROUPS": " ".join(self.cgroup.procs_files)}
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                         env=env, cwd=cwd, start_new_session=True, pass_fds=fds)
        finally:
            for fd in fds:
                os.close(fd)
        if sandbox and not self.cgroup:
            self.throttle = Throttle(self.proc.pid, limits.cpus)
        self._buf = bytearray()

    def start(self, cells: list[str], skip: set[int], total_budget: float) -> None:
        self.send(deadline=time.monotonic() + START_SECONDS, message={
            "cells": cells,
            "skip": sorted(skip),
            "limits": {
                "memory_mb": self.limits.memory_mb,
                "file_mb": self.limits.file_mb,
                "cpu_seconds": int(total_budget + START_SECONDS) + 5,
                "nproc": self._nproc,
            },
        })

    def send(self, message: dict, deadline: float | None = None) -> None:
        """Write one frame, never blocking past ``deadline`` (a worker that does not read is dead to us)."""
        deadline = deadline if deadline is not None else time.monotonic() + self.limits.timeout
        fd = self.proc.stdin.fileno()
        data = memoryview(wire.frame_bytes(message))
        os.set_blocking(fd, False)
        try:
            while data:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.kill()
                    raise WorkerTimeout()
                if not select.select([], [fd], [], left)[1]:
                    continue
                try:
                    data = data[os.write(fd, data):]
                except BlockingIOError:
                    continue
        except (BrokenPipeError, OSError):
            self.kill()
            raise WorkerDied("the worker closed its input") from None

    def receive(self, deadline: float) -> dict:
        """The next frame, or WorkerTimeout / WorkerDied (and the worker is gone). Linear in its size."""
        fd = self.proc.stdout.fileno()
        while True:
            if len(self._buf) >= 4:
                (n,) = struct.unpack(">I", self._buf[:4])
                if n > wire.MAX_FRAME:
                    self.kill()
                    raise WorkerDied(f"the worker sent a {n}-byte frame (limit {wire.MAX_FRAME})")
                if len(self._buf) >= 4 + n:
                    body = bytes(self._buf[4 : 4 + n])
                    del self._buf[: 4 + n]
                    try:
                        msg = json.loads(body)
                    except (ValueError, RecursionError):
                        msg = None
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

    def stop(self) -> None:
        """SIGKILL the sandbox now (its process tree dies with bubblewrap); :meth:`kill` also reaps it."""
        if self.throttle:
            self.throttle.stop()
            self.throttle = None
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.cgroup:
            self.cgroup.kill()

    def kill(self) -> None:
        """:meth:`stop`, then reap it and remove what it used (pipes, cgroup, scratch folder)."""
        self.stop()
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
            self.cgroup = None
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def close(self) -> None:
        """Ask the worker to stop, then make sure it has."""
        if self.proc.poll() is None:
            try:
                self.send({"cmd": "done"}, deadline=time.monotonic() + 2)
                self.proc.wait(timeout=2)
            except (WorkerDied, WorkerTimeout, subprocess.TimeoutExpired):
                pass
        self.kill()

