"""Hard bounds on checking: a soft time limit per sympy call, and a forked child per check with a
memory limit and a kill on the clock.

Sympy on a student's string can do exact big-integer work in C for hours, or eat all memory,
where no signal reaches it. :func:`stream` therefore runs the work in a child forked from this
process (it inherits the derivation, so nothing is serialised on the way in), with ``RLIMIT_AS``
raised by ``memory_mb`` over what the process already maps and ``RLIMIT_CPU`` over the whole
budget. The child sends one JSON line per finished item; the parent waits at most ``item_seconds``
for each and kills the child when one is late. Replies are JSON, never pickles.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
import select
import signal
import threading
import time
from typing import Callable, Iterator

from vidlearn.bounded import death, reap

__all__ = ["CheckTimeout", "time_limit", "stream", "isolation_available"]


class CheckTimeout(BaseException):
    """A sympy call ran past its soft time limit.

    A BaseException, so that sympy's own ``except Exception`` blocks cannot swallow it.
    """


@contextlib.contextmanager
def time_limit(seconds: float | None):
    """Interrupt the block after ``seconds`` (SIGALRM; only in the main thread on Unix).

    ``None`` means no limit; a limit of zero or less raises at once. Where SIGALRM is not usable
    the block runs without this soft limit (the child's hard bound still holds).
    """
    if seconds is not None and seconds <= 0:
        raise CheckTimeout()
    usable = (
        seconds is not None
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0.0  # don't clobber an outer timer
    )
    if not usable:
        yield
        return

    def _raise(signum, frame):
        raise CheckTimeout()

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def isolation_available() -> bool:
    return hasattr(os, "fork") and os.environ.get("VIDLEARN_DERIVE_INLINE") != "1"


def _mapped_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _child(work: Callable[[Callable[[dict], None]], None], w: int, total_seconds: float, memory_mb: int) -> None:
    def emit(item: dict) -> None:
        data = (json.dumps(item) + "\n").encode()
        while data:
            data = data[os.write(w, data):]

    limits = [(resource.RLIMIT_CPU, max(1, math.ceil(total_seconds))), (resource.RLIMIT_CORE, 0)]
    if memory_mb:
        limits.append((resource.RLIMIT_AS, _mapped_bytes() + (memory_mb << 20)))
    for which, value in limits:
        try:
            soft, hard = resource.getrlimit(which)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(which, (value, hard))
        except (ValueError, OSError):
            pass
    try:
        work(emit)
        emit({"done": True})
    except MemoryError:
        emit({"failure": "memory", "detail": f"it needed more than {memory_mb} MB"})
    except RecursionError:
        emit({"failure": "crashed", "detail": "RecursionError (the expression is nested too deeply)"})
    except BaseException as err:  # anything else: reported, never raised into the parent
        emit({"failure": "crashed", "detail": f"{type(err).__name__}: {err}"[:300]})


def stream(work: Callable[[Callable[[dict], None]], None], *, item_seconds: float, total_seconds: float,
           memory_mb: int = 1024) -> Iterator[dict]:
    """Run ``work(emit)`` in a bounded child; yield each item it emits, as it arrives.

    Ends with ``{"done": True}``, or one ``{"failure": kind, "detail": ...}`` where ``kind`` is
    ``"timeout"`` (an item took longer than ``item_seconds`` on the clock), ``"memory"`` or
    ``"crashed"``.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's code
        try:
            os.close(r)
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a notebook stops the parent's wait
            _child(work, w, total_seconds, memory_mb)
        finally:
            os._exit(0)
    os.close(w)
    buf = b""
    finished = False
    start = time.monotonic()
    try:
        deadline = start + item_seconds
        while not finished:
            left = min(deadline, start + total_seconds) - time.monotonic()
            ready = select.select([r], [], [], max(left, 0))[0] if left > 0 else []
            if not ready:
                yield {"failure": "timeout", "detail": f"it ran past {item_seconds:g} s"}
                finished = True
                break
            chunk = os.read(r, 1 << 16)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf and not finished:
                line, buf = buf.split(b"\n", 1)
                try:
                    item = json.loads(line)
                except ValueError:
                    item = {"failure": "crashed", "detail": "an unreadable reply"}
                finished = "done" in item or "failure" in item
                deadline = time.monotonic() + item_seconds
                yield item
    finally:
        os.close(r)
        status = reap(pid)
    if not finished:
        kind, sig = death(status)
        yield {"failure": kind, "detail": f"the checker died (signal {sig})"}
