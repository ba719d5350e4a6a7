"""A seccomp filter for the grader's sandbox, as the classic BPF program bubblewrap loads (``--seccomp``).

It refuses the system calls a notebook has no use for and that open doors the namespaces leave
open, whichever uid the sandbox runs as:

* new namespaces, mounts, ``chroot`` (``unshare``, ``setns``, ``clone`` with a ``CLONE_NEW*`` flag;
  ``clone3``, whose flags sit behind a pointer, answers ENOSYS so that the C library falls back to
  ``clone``): when the grader runs as root there is no user namespace whose creation bubblewrap
  could forbid, so this is what does;
* file locks and leases (``flock``, ``fcntl`` F_*LK / F_OFD_*LK / F_SETLEASE): every sandbox sees the
  same read-only files, and byte-range locks on them were a channel between two submissions graded
  at the same time;
* kernel surfaces a notebook never needs: ``io_uring``, ``bpf``, ``perf_event_open``, ``userfaultfd``,
  keyrings, ``ptrace``, other processes' memory, file handles;
* the 32-bit and x32 system call entries (another table of numbers).

Only x86-64 and aarch64 are known; elsewhere :func:`program` returns None and bubblewrap runs without
a filter.
"""

from __future__ import annotations

import errno
import os
import struct

__all__ = ["program"]

_ARCH = {  # uname -m -> (AUDIT_ARCH_*, system call numbers)
    "x86_64": (0xC000003E, dict(
        unshare=272, setns=308, mount=165, umount2=166, pivot_root=155, chroot=161, io_uring_setup=425,
        io_uring_enter=426, io_uring_register=427, keyctl=250, add_key=248, request_key=249, bpf=321,
        perf_event_open=298, userfaultfd=323, ptrace=101, flock=73, process_vm_readv=310, process_vm_writev=311,
        open_by_handle_at=304, name_to_handle_at=303, clone3=435, fcntl=72, clone=56)),
    "aarch64": (0xC00000B7, dict(
        unshare=97, setns=268, mount=40, umount2=39, pivot_root=41, chroot=51, io_uring_setup=425,
        io_uring_enter=426, io_uring_register=427, keyctl=219, add_key=217, request_key=218, bpf=280,
        perf_event_open=241, userfaultfd=282, ptrace=117, flock=32, process_vm_readv=270, process_vm_writev=271,
        open_by_handle_at=265, name_to_handle_at=264, clone3=435, fcntl=25, clone=220)),
}
_LOCKS = (5, 6, 7, 36, 37, 38, 1024)  # F_GETLK F_SETLK F_SETLKW F_OFD_GETLK F_OFD_SETLK F_OFD_SETLKW F_SETLEASE
_CLONE_NEW = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
_X32_BIT = 0x40000000

_LD_ABS, _JEQ, _JSET, _JGE, _RET = 0x20, 0x15, 0x45, 0x35, 0x06
_ALLOW, _KILL = 0x7FFF0000, 0x80000000


def _errno(e: int) -> int:
    return 0x00050000 | e


def program(machine: str | None = None) -> bytes | None:
    """The filter as bytes (``struct sock_filter`` records), for this machine's architecture."""
    machine = machine or os.uname().machine
    if machine not in _ARCH:
        return None
    arch, nr = _ARCH[machine]
    refused = [n for name, n in nr.items() if name not in ("clone3", "fcntl", "clone")]
    # instructions as (code, jump-if-true label, jump-if-false label, k); labels resolved below
    ins: list = [("ld", 4), ("jeq", arch, "nr", "kill"), ("label", "nr"), ("ld", 0)]
    if machine == "x86_64":
        ins.append(("jge", _X32_BIT, "eperm", None))
    ins += [("jeq", n, "eperm", None) for n in refused]
    ins += [("jeq", nr["clone3"], "enosys", None), ("jeq", nr["fcntl"], "fcntl", None),
            ("jeq", nr["clone"], "clone", None), ("ret", _ALLOW),
            ("label", "fcntl"), ("ld", 24)]  # args[1], its low 32 bits
    ins += [("jeq", cmd, "eperm", None) for cmd in _LOCKS]
    ins += [("ret", _ALLOW), ("label", "clone"), ("ld", 16), ("jset", _CLONE_NEW, "eperm", None), ("ret", _ALLOW),
            ("label", "eperm"), ("ret", _errno(errno.EPERM)), ("label", "enosys"), ("ret", _errno(errno.ENOSYS)),
            ("label", "kill"), ("ret", _KILL)]
    where, n = {}, 0
    for item in ins:
        if item[0] == "label":
            where[item[1]] = n
        else:
            n += 1
    out, pc = [], 0
    for item in ins:
        kind = item[0]
        if kind == "label":
            continue
        if kind == "ld":
            out.append(struct.pack("<HBBI", _LD_ABS, 0, 0, item[1]))
        elif kind == "ret":
            out.append(struct.pack("<HBBI", _RET, 0, 0, item[1]))
        else:
            code = {"jeq": _JEQ, "jset": _JSET, "jge": _JGE}[kind]
            jt = where[item[2]] - pc - 1
            jf = 0 if item[3] is None else where[item[3]] - pc - 1
            assert 0 <= jt < 256 and 0 <= jf < 256
            out.append(struct.pack("<HBBI", code, jt, jf, item[1]))
        pc += 1
    return b"".join(out)
