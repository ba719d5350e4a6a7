"""The student's side of grading: run one submission's cells, then answer test calls.

Started by :mod:`vidlearn.grading.sandbox` inside the sandbox as
``python -m vidlearn.grading.worker``. It speaks :mod:`vidlearn.grading.wire` frames on its
original stdin/stdout, which it moves out of the way first: the student's prints, reads and
output floods go to /dev/null and can never be mistaken for protocol messages.

Protocol (grader → worker / worker → grader)::

    {"cells": [...], "skip": [i, ...], "limits": {...}}
    {"forbids": [...]}                   (what the exercise forbids: sealed before the first cell)
                                         {"event": "started"}             (ready: the clock starts)
                                         {"event": "cell", "index": i}    (before each cell)
                                         {"event": "ready", "errors": {i: "..."}}
    {"cmd": "call", "name": f, "calls": [[args, kwargs], ...], "forbids": [...], "seconds": s}
                                         {"event": "results", "results": [[status, payload], ...]}
                                         | {"event": "missing", "why": "..."}
                                         | {"event": "timeout"} | {"event": "crashed", "why": "..."}
    {"cmd": "done"}

The questions are answered by a child forked once the notebook has run, after every other process
of the sandbox has been killed: it has one thread, cannot start another or fork, runs each call
under the question's :class:`~vidlearn.grading.forbidden.Guard`, and a crash or a hang costs only
that question (the next one gets a fresh child).

Nothing here is trusted by the grader: everything it sends is decoded and checked on the
other side, and a worker that lies can only misreport its own answers.
"""

from __future__ import annotations

import os
import re
import resource
import select
import signal
import struct
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


def _drop_privileges() -> None:
    """Become the sandbox's own unprivileged user (when bubblewrap ran as root); never run as root."""
    uid = os.environ.get("VIDLEARN_SANDBOX_UID")
    if uid:
        u = int(uid)
        os.setgroups([])
        os.setresgid(u, u, u)
        os.setresuid(u, u, u)  # from root to another uid: every capability is cleared
    if os.environ.get("VIDLEARN_GRADING_SANDBOXED") == "1" and (os.geteuid() == 0 or os.getuid() == 0):
        os._exit(97)


def _in_own_pid_namespace() -> bool:
    try:
        with open("/proc/1/comm") as f:
            return os.environ.get("VIDLEARN_GRADING_SANDBOXED") == "1" and f.read().strip() == "bwrap"
    except OSError:
        return False


def _kill_strays() -> None:
    """Kill every process of the sandbox but bubblewrap's init and this one, and reap our children."""
    if _in_own_pid_namespace():
        me = os.getpid()
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) not in (1, me):
                try:
                    os.kill(int(entry), signal.SIGKILL)
                except OSError:
                    pass
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break


def _machinery() -> dict:
    """The objects the worker's guard and replies rely on, as they are before any student code runs."""
    import torch
    import torch.library
    import torch.overrides

    from vidlearn.grading import calls, forbidden, wire

    found = {f"wire.{n}": getattr(wire, n) for n in ("encode", "decode", "write_frame", "read_frame")}
    found["calls.call_one"] = calls.call_one
    # a differentiable question's gradient is computed by these, after the student's function returns
    found.update({f"calls.{n}": getattr(calls, n) for n in ("grad_inputs", "_unchanged")})
    found.update({"torch.autograd.grad": torch.autograd.grad, "torch.enable_grad": torch.enable_grad})
    found.update({f"Guard.{n}": v for n, v in vars(forbidden.Guard).items()})
    for owner, names in (
        (forbidden, ("Guard", "_validate", "_resolve", "_display", "_ACTIVE", "CATALOGUE", "_KEYS")),
        (torch.library.Library, ("__init__", "impl", "_destroy")),
        (torch.overrides.TorchFunctionMode, ("__enter__", "__exit__", "__init__")),
        (torch.overrides, ("_get_current_function_mode_stack",)),
        (torch._C, ("_dispatch_dump", "_len_torch_function_stack", "_pop_torch_function_stack",
                    "_push_on_torch_function_stack")),
        (sys, ("setprofile", "getprofile")),
    ):
        found.update({f"{getattr(owner, '__name__', owner)}.{n}": getattr(owner, n, None) for n in names})
    found["CATALOGUE entries"] = tuple(forbidden.CATALOGUE.items())
    found["meta_path"] = tuple(sys.meta_path)
    return found


def _tampered(before: dict) -> list[str]:
    now = _machinery()
    return [k for k, v in before.items() if now.get(k) is not v and now.get(k) != v]


_MAGIC = re.compile(r"^(\s*)([%!].*)$")


def _sanitize(source: str) -> str:
    """IPython magics and shell escapes are not Python: neutralise them, keeping line numbers."""
    return "\n".join(_MAGIC.sub(r"\1pass  # \2", line) for line in source.splitlines())


class _Answerer:
    """The child that answers the questions: forked from the worker once the notebook has run (and
    again after a question crashed it or ran out of time). It has one thread, cannot start another or
    fork, has no way to the grader but its replies to the worker, and runs each call under the
    question's guard."""

    def __init__(self, inp: int, out: int, namespace: dict, call_one):
        from vidlearn.grading import wire
        from vidlearn.grading.forbidden import Guard

        to_child, self._requests = os.pipe()
        self._replies, from_child = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            for fd in (inp, out, self._requests, self._replies):
                os.close(fd)
            _limit(resource.RLIMIT_NPROC, 1)
            while True:
                msg = wire.read_frame(to_child)
                if msg is None:
                    os._exit(0)
                fn = namespace[msg["name"]]
                results = []
                # one per question; the seal's kernels are in force already
                with Guard(msg.get("forbids", ()), watch_library=False, register_kernels=False) as guard:
                    for args, kwargs in msg.get("calls", []):
                        args = [wire.decode(a) for a in args]
                        kwargs = {k: wire.decode(v) for k, v in kwargs.items()}
                        results.append(list(call_one(fn, args, kwargs, guard=guard)))
                try:
                    wire.write_frame(from_child, {"event": "results", "results": results})
                except BaseException:
                    os._exit(3)
        os.close(to_child)
        os.close(from_child)

    def ask(self, msg: dict) -> bytes | tuple[str, str]:
        """The child's reply frame, as bytes; or ("timeout", "") / ("crashed", why), and the child is gone."""
        from vidlearn.grading import wire

        import time

        try:
            wire.write_frame(self._requests, msg)
        except OSError:
            return self._gone()
        deadline, data = time.monotonic() + float(msg.get("seconds", 30)), bytearray()
        while len(data) < 4 or len(data) < 4 + struct.unpack(">I", bytes(data[:4]))[0]:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                return ("timeout", "")
            if not select.select([self._replies], [], [], left)[0]:
                continue
            chunk = os.read(self._replies, 1 << 20)
            if not chunk or len(data) > wire.MAX_FRAME + 4:
                return self._gone()
            data += chunk
        return bytes(data)

    def _gone(self) -> tuple[str, str]:
        self.stop()
        status = self.status
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            return ("crashed", f"killed by {signal.Signals(sig).name}" if sig in signal.Signals._value2member_map_
                    else f"signal {sig}")
        return ("crashed", f"exited with status {os.WEXITSTATUS(status)}")

    def stop(self) -> None:
        for fd in (self._requests, self._replies):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, self.status = os.waitpid(self.pid, 0)


def main() -> None:
    if "--probe" in sys.argv:  # the sandbox works: we got here, and as whom
        _drop_privileges()
        os.write(1, f"sandboxed uid={os.getuid()} euid={os.geteuid()}\n".encode())
        os._exit(0 if os.geteuid() != 0 or os.environ.get("VIDLEARN_GRADING_SANDBOXED") != "1" else 97)
    # Keep the protocol pipes on private descriptors; the student's stdio goes nowhere.
    inp, out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    _drop_privileges()

    from vidlearn.grading import wire

    setup = wire.read_frame(inp)
    if setup is None:
        os._exit(0)
    _apply_limits(setup.get("limits", {}))

    import torch

    torch.set_num_threads(1)
    from vidlearn.grading.calls import call_one
    from vidlearn.grading.seal import seal

    sealing = wire.read_frame(inp)
    if sealing is None:
        os._exit(0)
    seal(sealing.get("forbids", ()))  # from here on, nothing forbidden works in this process

    machinery = _machinery()
    answerer, tampered, kill_strays, read_frame, write_frame = (_Answerer, _tampered, _kill_strays, wire.read_frame,
                                                                wire.write_frame)
    write_frame(out, {"event": "started"})
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
    write_frame(out, {"event": "ready", "errors": errors})
    changed = tampered(machinery)
    child = None

    while True:
        msg = read_frame(inp)
        if msg is None or msg.get("cmd") != "call":
            break
        fn = namespace.get(msg["name"])
        if not callable(fn):
            why = "not defined" if fn is None else f"is a {type(fn).__name__}, not a function"
            write_frame(out, {"event": "missing", "why": f"{msg['name']} {why}"})
            continue
        if changed:
            why = f"the notebook changed the grader's own machinery ({', '.join(changed[:3])})"
            write_frame(out, {"event": "results", "results": [["forbidden", why] for _ in msg.get("calls", [])]})
            continue
        if child is None:
            kill_strays()  # nothing the notebook started may answer for it
            child = answerer(inp, out, namespace, call_one)
        reply = child.ask(msg)
        if isinstance(reply, bytes):
            view = memoryview(reply)  # the child's frame, as it is (the grader checks it)
            while view:
                view = view[os.write(out, view):]
        else:
            child = None
            write_frame(out, {"event": reply[0], "why": reply[1]})
    os._exit(0)


if __name__ == "__main__":
    main()
