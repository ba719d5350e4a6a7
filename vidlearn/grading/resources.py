"""A sandbox's share of the machine: at most ``cpus`` CPUs, ``memory_mb`` of memory and ``max_processes``.

Where this process may make cgroups (as root, on cgroup v1 or v2), each sandbox gets its own:
``cpu.max`` (or the v1 CFS quota), ``memory.max``, ``pids.max``. Processes join it before bubblewrap
starts, so nothing the student forks escapes it, each in its own session or not.

Elsewhere (a teacher's account without cgroup delegation) a :class:`Throttle` does the CPU part
from outside: every 50 ms it adds up the CPU time of the sandbox's whole process tree and stops
the tree (SIGSTOP) while it is over its share, so sixty busy children get one CPU between them,
not sixty; the process cap is then the worker's ``RLIMIT_NPROC`` (counted per user namespace).
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path

__all__ = ["Cgroup", "Throttle", "make_cgroup"]

_ROOT = Path("/sys/fs/cgroup")
_CG_V2_CONTROLLERS = ("cpu", "memory", "pids")


def _own_paths() -> dict[str, str]:
    """controller -> this process's cgroup path in it (``""`` key: the v2 unified hierarchy)."""
    out = {}
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, ctrls, path = line.split(":", 2)
            for c in ctrls.split(",") if ctrls else [""]:
                out[c] = path
    except (OSError, ValueError):
        pass
    return out


class Cgroup:
    """A throw-away cgroup (one directory per v1 controller, or one v2 directory) with the limits."""

    def __init__(self, dirs: list[Path], version: int):
        self.dirs, self.version = dirs, version

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def cpu_seconds(self) -> float | None:
        """CPU time used so far by everything in the group."""
        for d in self.dirs:
            try:
                if self.version == 2:
                    for line in (d / "cpu.stat").read_text().splitlines():
                        if line.startswith("usage_usec "):
                            return int(line.split()[1]) / 1e6
                elif (d / "cpuacct.usage").exists():
                    return int((d / "cpuacct.usage").read_text()) / 1e9
            except (OSError, ValueError):
                pass
        return None

    def kill(self) -> None:
        for d in self.dirs:
            try:
                (d / "cgroup.kill").write_text("1")
                continue
            except OSError:
                pass
            for _ in range(3):  # a fork may race the first sweep
                try:
                    pids = (d / "cgroup.procs").read_text().split()
                except OSError:
                    break
                for pid in pids:
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except (ProcessLookupError, ValueError, PermissionError):
                        pass

    def remove(self) -> None:
        for d in self.dirs:
            for _ in range(100):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
        self.dirs = []


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _try_v2(cpus: float, memory_mb: int, max_processes: int) -> Cgroup | None:
    own = _own_paths().get("", "/")
    for parent in dict.fromkeys([_ROOT / own.lstrip("/"), _ROOT]):
        d = parent / f"vidlearn-{uuid.uuid4().hex[:12]}"
        try:
            enabled = (parent / "cgroup.subtree_control").read_text().split()
            missing = [c for c in _CG_V2_CONTROLLERS if c not in enabled]
            if missing:
                _write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in missing))
            d.mkdir()
        except OSError:
            continue
        group = Cgroup([d], 2)
        try:
            _write(d / "cpu.max", f"{int(cpus * 100_000)} 100000")
            _write(d / "memory.max", str(memory_mb << 20))
            if (d / "memory.swap.max").exists():
                _write(d / "memory.swap.max", "0")
            _write(d / "pids.max", str(max_processes))
            return group
        except OSError:
            group.remove()
    return None


def _try_v1(cpus: float, memory_mb: int, max_processes: int) -> Cgroup | None:
    own = _own_paths()
    name = f"vidlearn-{uuid.uuid4().hex[:12]}"
    settings = {
        "cpu": [("cpu.cfs_period_us", "100000"), ("cpu.cfs_quota_us", str(int(cpus * 100_000)))],
        "memory": [("memory.limit_in_bytes", str(memory_mb << 20))],
        "pids": [("pids.max", str(max_processes))],
    }
    group = Cgroup([], 1)
    for ctrl, files in settings.items():
        made = None
        for parent in dict.fromkeys([_ROOT / ctrl / own.get(ctrl, "/").lstrip("/"), _ROOT / ctrl]):
            d = parent / name
            try:
                d.mkdir()
            except OSError:
                continue
            try:
                for f, v in files:
                    _write(d / f, v)
                made = d
                break
            except OSError:
                d.rmdir()
        if made is None:
            group.remove()
            return None
        group.dirs.append(made)
    if (_ROOT / "cpuacct").is_dir() and not (group.dirs[0] / "cpuacct.usage").exists():
        d = _ROOT / "cpuacct" / own.get("cpuacct", "/").lstrip("/") / name
        try:
            d.mkdir()
            group.dirs.append(d)
        except OSError:
            pass
    return group


def make_cgroup(cpus: float, memory_mb: int, max_processes: int) -> Cgroup | None:
    """A cgroup with these limits, or None where this process may not make one."""
    if os.environ.get("VIDLEARN_NO_CGROUPS") == "1" or not _ROOT.is_dir():
        return None
    if (_ROOT / "cgroup.controllers").exists():
        return _try_v2(cpus, memory_mb, max_processes)
    if (_ROOT / "cpu").is_dir() and (_ROOT / "memory").is_dir() and (_ROOT / "pids").is_dir():
        return _try_v1(cpus, memory_mb, max_processes)
    return None


# ----------------------------------------------------------------------------- without cgroups

_TICK = 0.05
_BURST = 0.2  # CPU seconds a sandbox may run ahead of its share before it is stopped
_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and its reaped children)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    rest = data[data.rindex(b")") + 2 :].split()
    return int(rest[1]), sum(int(x) for x in rest[11:15]) / _HZ


def _descendants(root: int) -> list[int]:
    """``root``'s process tree (children files where the kernel has them, else a scan of /proc)."""
    out, todo = [], [root]
    if Path(f"/proc/{root}/task/{root}/children").exists():
        while todo:
            pid = todo.pop()
            out.append(pid)
            try:
                for task in os.listdir(f"/proc/{pid}/task"):
                    todo += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
            except OSError:
                pass
        return out
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st:
                parents.setdefault(st[0], []).append(int(entry))
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += parents.get(pid, [])
    return out


class Throttle:
    """Hold a process tree to ``cpus`` CPUs from outside, by stopping it while it is over its share."""

    def __init__(self, root_pid: int, cpus: float = 1.0):
        self.root, self.cpus = root_pid, cpus
        self._seen: dict[int, float] = {}
        self._stopped = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"vidlearn-throttle-{root_pid}", daemon=True)
        self._thread.start()

    def _signal(self, pids: list[int], sig: int) -> None:
        for pid in pids:
            if pid != self.root:  # bwrap itself does no work; it must stay able to reap
                try:
                    os.kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass

    def _run(self) -> None:
        credit, last = _BURST, time.monotonic()
        while not self._done.wait(_TICK):
            now = time.monotonic()
            pids = _descendants(self.root)
            used = 0.0
            seen = {}
            for pid in pids:
                st = _stat(pid)
                if st is None:
                    continue
                seen[pid] = st[1]
                used += max(0.0, st[1] - self._seen.get(pid, 0.0))  # a new process: all its time is new
            self._seen = seen
            credit = min(_BURST, credit + (now - last) * self.cpus - used)
            last = now
            if credit < 0 and not self._stopped:
                self._signal(pids, signal.SIGSTOP)
                self._stopped = True
            elif credit >= 0 and self._stopped:
                self._signal(pids, signal.SIGCONT)
                self._stopped = False
            elif self._stopped:
                self._signal(pids, signal.SIGSTOP)  # children born since the last tick

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=1)
        if self._stopped:
            self._signal(_descendants(self.root), signal.SIGCONT)
