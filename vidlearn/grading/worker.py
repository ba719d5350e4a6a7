"""The student's side of grading: run one submission's cells, then answer test calls.

Started by :mod:`vidlearn.grading.sandbox` inside the sandbox as
``python -m vidlearn.grading.worker``. It speaks :mod:`vidlearn.grading.wire` frames on its
original stdin/stdout, which it moves out of the way first: the student's prints, reads and
output floods go to /dev/null and can never be mistaken for protocol messages.

Protocol (parent → worker / worker → parent)::

    {"cells": [...], "skip": [i, ...], "limits": {...}}
                                         {"event": "cell", "index": i}   (before each cell)
                                         {"event": "ready", "errors": {i: "..."}}
    {"cmd": "call", "name": f, "calls": [[args, kwargs], ...]}
                                         {"event": "results", "results": [[status, payload], ...]}
                                         or {"event": "missing", "why": "..."}
    {"cmd": "done"}

Nothing here is trusted by the grader: everything it sends is decoded and checked on the
other side, and a worker that lies can only misreport its own answers.
"""

from __future__ import annotations

import os
import re
import resource
import sys


def _limit(which: int, value: int) -> None:
    try:
        resource.setrlimit(which, (value, value))
    except (ValueError, OSError):  # a limit the platform does not support: the others still apply
        pass


def _apply_limits(limits: dict) -> None:
    """Hard limits on this process and its children, set before any student code runs."""
    _limit(resource.RLIMIT_CORE, 0)
    if limits.get("memory_mb"):
        _limit(resource.RLIMIT_AS, int(limits["memory_mb"]) << 20)
    if limits.get("cpu_seconds"):
        _limit(resource.RLIMIT_CPU, int(limits["cpu_seconds"]))
    if limits.get("file_mb"):
        _limit(resource.RLIMIT_FSIZE, int(limits["file_mb"]) << 20)
    if limits.get("nproc"):
        _limit(resource.RLIMIT_NPROC, int(limits["nproc"]))


_MAGIC = re.compile(r"^(\s*)([%!].*)$")


def _sanitize(source: str) -> str:
    """IPython magics and shell escapes are not Python: neutralise them, keeping line numbers."""
    return "\n".join(_MAGIC.sub(r"\1pass  # \2", line) for line in source.splitlines())


def main() -> None:
    # Keep the protocol pipes on private descriptors; the student's stdio goes nowhere.
    inp, out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)

    from vidlearn.grading import wire

    setup = wire.read_frame(inp)
    if setup is None:
        os._exit(0)
    _apply_limits(setup.get("limits", {}))

    import torch

    torch.set_num_threads(1)
    from vidlearn.grading.calls import call_one

    namespace: dict = {"__name__": "__main__", "__builtins__": __builtins__}
    skip = set(setup.get("skip", []))
    errors: dict[str, str] = {}
    for i, source in enumerate(setup.get("cells", [])):
        wire.write_frame(out, {"event": "cell", "index": i})
        if i in skip:
            errors[str(i)] = "skipped: it stopped or hung the grader before"
            continue
        try:
            exec(compile(_sanitize(source), f"<cell {i + 1}>", "exec"), namespace)
        except BaseException as err:  # like a notebook: an error in one cell does not stop the rest
            errors[str(i)] = f"{type(err).__name__}: {err}"[:300]
    wire.write_frame(out, {"event": "ready", "errors": errors})

    while True:
        msg = wire.read_frame(inp)
        if msg is None or msg.get("cmd") != "call":
            break
        fn = namespace.get(msg["name"])
        if not callable(fn):
            why = "not defined" if fn is None else f"is a {type(fn).__name__}, not a function"
            wire.write_frame(out, {"event": "missing", "why": f"{msg['name']} {why}"})
            continue
        results = []
        for args, kwargs in msg["calls"]:
            args = [wire.decode(a) for a in args]
            kwargs = {k: wire.decode(v) for k, v in kwargs.items()}
            status, payload = call_one(fn, args, kwargs)
            results.append([status, payload])
        wire.write_frame(out, {"event": "results", "results": results})
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
