"""Trusted code on untrusted data, under a hard bound: a forked child with rlimits, killed on time.

Sympy can be made to do exact big-integer work in C for hours (``0*3**(x - x + 10**8)``), or to
eat all memory, where no signal interrupts it. :func:`run` does such work in a child process forked
from a small single-threaded server that has the heavy modules imported already (so a run costs a
fork, not an interpreter start). The child gets ``RLIMIT_AS`` and ``RLIMIT_CPU`` (``seconds`` of CPU
time, so that a busy machine does not make an honest job fail); the server kills it with SIGKILL
when :func:`wall_limit` has passed on the clock, and this process gives up on the server (and
starts a new one) if even that fails. Requests and replies are JSON, never pickles.

``run("package.module:function", *args, seconds=..., memory_mb=...)`` returns a :class:`Verdict`.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import resource
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["Verdict", "run", "warm", "wall_limit"]

PRELOAD = ("vidlearn.grading.steps", "vidlearn.derive")
_SERVER_GRACE = 10.0  # seconds beyond a job's own limit before the server itself is given up on


def wall_limit(seconds: float) -> float:
    """The clock time a job of ``seconds`` CPU seconds may take on a loaded machine."""
    return 3 * seconds + 5


@dataclass(frozen=True)
class Verdict:
    """``status``: ``"ok"`` (``value`` is the result), ``"timeout"``, ``"memory"`` or ``"crashed"``."""

    status: str
    value: Any = None
    detail: str = ""


def _send(fd: int, obj) -> None:
    data = json.dumps(obj).encode()
    data = struct.pack(">I", len(data)) + data
    while data:
        data = data[os.write(fd, data):]


def _recv(fd: int, deadline: float | None = None):
    buf = bytearray()
    need = 4
    while len(buf) < need:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError()
        chunk = os.read(fd, max(need - len(buf), 1 << 16))
        if not chunk:
            raise EOFError()
        buf += chunk
        if need == 4 and len(buf) >= 4:
            need = 4 + struct.unpack(">I", bytes(buf[:4]))[0]
    return json.loads(bytes(buf[4:need]))


# ----------------------------------------------------------------------------- the server side


def reap(pid: int) -> int:
    """Kill a bounded child (if it still runs) and collect its exit status."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return os.waitpid(pid, 0)[1]


def death(status: int) -> tuple[str, int]:
    """Why a child that sent no reply died: ("timeout" | "memory" | "crashed", signal number). SIGKILL
    is what the kernel sends past the CPU limit's hard value."""
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
    return {signal.SIGXCPU: "timeout", signal.SIGKILL: "timeout", signal.SIGSEGV: "memory"}.get(sig, "crashed"), sig


def _job(target: str, args: list, seconds: float, memory_mb: int, out: int) -> None:
    """In the forked child: limits, then the work; the reply goes to ``out``."""
    for which, value in ((resource.RLIMIT_AS, memory_mb << 20), (resource.RLIMIT_CPU, max(1, math.ceil(seconds))),
                         (resource.RLIMIT_CORE, 0)):
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass
    try:
        module, _, name = target.partition(":")
        reply = {"status": "ok", "value": getattr(importlib.import_module(module), name)(*args)}
    except MemoryError:
        reply = {"status": "memory"}
    except RecursionError:
        reply = {"status": "crashed", "detail": "RecursionError"}
    except Exception as err:
        reply = {"status": "crashed", "detail": f"{type(err).__name__}: {err}"[:300]}
    try:
        _send(out, reply)
    except MemoryError:
        _send(out, {"status": "memory"})


def _serve() -> None:
    """The server: import the heavy modules once, then fork one bounded child per request."""
    inp, out = 0, 1
    for module in sys.argv[1:]:
        importlib.import_module(module)
    _send(out, {"ready": True})
    while True:
        try:
            req = _recv(inp)
        except EOFError:
            os._exit(0)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1):
                os.dup2(devnull, fd)
            try:
                _job(req["target"], req["args"], req["seconds"], req["memory_mb"], w)
            finally:
                os._exit(0)
        os.close(w)
        try:
            reply = _recv(r, time.monotonic() + wall_limit(req["seconds"]))
        except TimeoutError:
            reply = {"status": "timeout", "detail": f"ran past {wall_limit(req['seconds']):g} s on the clock"}
        except (EOFError, ValueError):
            reply = None
        os.close(r)
        status = reap(pid)
        if reply is None:
            kind, sig = death(status)
            reply = {"status": kind, "detail": f"the checker died (signal {sig}, status {status})"}
        _send(out, reply)


# ----------------------------------------------------------------------------- the client side

_LOCK = threading.Lock()
_IDLE: list[subprocess.Popen] = []  # servers waiting for work (one is made for each concurrent caller)


def _start() -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.Popen([sys.executable, "-c", "from vidlearn.bounded import _serve; _serve()", *PRELOAD],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, start_new_session=True)
    proc._vidlearn_ready = False
    return proc


def _take() -> subprocess.Popen:
    with _LOCK:
        while _IDLE:
            proc = _IDLE.pop()
            if proc.poll() is None:
                return proc
        return _start()


def warm() -> None:
    """Start a server now (its imports take a second), so that the first :func:`run` does not wait."""
    with _LOCK:
        if not _IDLE:
            _IDLE.append(_start())


def _drop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def run(target: str, *args, seconds: float, memory_mb: int = 2048) -> Verdict:
    """``module:function`` called with JSON-able ``args`` in a child bounded to ``seconds`` of CPU time
and ``memory_mb``; its JSON-able result.
    Safe to call from several threads at once (each gets a server of its own)."""
    proc = _take()
    try:
        if not proc._vidlearn_ready:
            _recv(proc.stdout.fileno(), time.monotonic() + 120)
            proc._vidlearn_ready = True
        _send(proc.stdin.fileno(), {"target": target, "args": list(args), "seconds": seconds,
                                    "memory_mb": memory_mb})
        reply = _recv(proc.stdout.fileno(), time.monotonic() + wall_limit(seconds) + _SERVER_GRACE)
    except (TimeoutError, EOFError, OSError, ValueError) as err:
        _drop(proc)
        return Verdict("crashed", detail=f"the bounded checker failed ({type(err).__name__})")
    with _LOCK:
        _IDLE.append(proc)
    return Verdict(reply.get("status", "crashed"), reply.get("value"), reply.get("detail", ""))
