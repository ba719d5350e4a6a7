# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   vidlearn:
#     exercise: ex01
# ---

# %% [markdown]
# Adversarial fixture: what can the sandbox see, and as whom does it run
#
# Reads what the test names (the teacher's home, a gradebook and report in the repository root as
# the README lays them out, the repository's .git and solutions/, a file beside the checkout) and
# what any machine has (/etc/shadow, /root, /home); opens /proc/sys knobs for writing; checks its
# own uid, capabilities and no_new_privs. If anything is readable or writable, or the worker is
# root or has a capability, softmax raises with the list, so the score shows it.
#
# Expected scores (softmax, attention, split_heads, merge_heads, var_qk): 2, 4, 1, 1, 2


# %%
import math
import os

import torch

from vidlearn.grading import case, check, hint  # noqa: F401

# The test harness replaces the next line with the run's settings (ports, paths, tokens).
CONFIG = {}  # @vidlearn-test-config@

# %%
SEEN = []

for path in CONFIG.get("secrets", []) + ["/etc/shadow", "/etc/passwd", "/root/.bashrc", "/root/.ssh"]:
    try:
        with open(path, "rb") as f:
            SEEN.append(f"read {path}: {f.read(40)!r}")
    except OSError:
        pass
# Folders that exist only as the way to the Python installation or the venv show just that; what
# must never show is named by the test (the repository's files, the teacher's, the classmates').
MUST_NOT_SEE = set(CONFIG.get("must_not_see", [])) | {".bashrc", ".profile", ".ssh", "shadow", "passwd", "hosts"}
for folder in CONFIG.get("folders", []) + ["/", "/root", "/home", "/etc", "/var", "/srv", "/opt", "/mnt", "/tmp"]:
    try:
        names = set(os.listdir(folder))
    except OSError:
        continue
    if names & MUST_NOT_SEE:
        SEEN.append(f"listed {folder}: {sorted(names & MUST_NOT_SEE)[:5]}")
for knob in ("kernel/core_pattern", "vm/drop_caches", "kernel/pid_max", "kernel/sysrq"):
    try:
        os.close(os.open(f"/proc/sys/{knob}", os.O_WRONLY))
        SEEN.append(f"opened /proc/sys/{knob} for writing")
    except OSError:
        pass
if os.getuid() == 0 or os.geteuid() == 0:
    SEEN.append(f"runs as uid {os.getuid()}")
with open("/proc/self/status") as f:
    status = dict(line.split(":", 1) for line in f if ":" in line)
for field in ("CapEff", "CapPrm", "CapAmb"):
    if int(status[field].strip(), 16):
        SEEN.append(f"{field} = {status[field].strip()}")
if status.get("NoNewPrivs", "0").strip() != "1":
    SEEN.append("no_new_privs is not set")
if any(v for k, v in os.environ.items() if k.startswith("VIDLEARN_TEST_SECRET")):
    SEEN.append("sees the grader's environment")
if status.get("Seccomp", "0").strip() != "2":
    SEEN.append("no seccomp filter")
# a channel to a classmate graded at the same time: locks on a file every sandbox sees
import ctypes
import fcntl
import sys

with open(sys.executable, "rb") as shared:
    for name, lock in (("flock", lambda: fcntl.flock(shared, fcntl.LOCK_SH)),
                       ("fcntl lock", lambda: fcntl.lockf(shared, fcntl.LOCK_SH)),
                       ("OFD lock", lambda: fcntl.fcntl(shared, 36, bytes(32)))):
        try:
            lock()
            SEEN.append(f"took a {name} on a file every sandbox shares")
        except OSError:
            pass
# nested namespaces and other kernel surfaces (ctypes itself is refused in the sealed worker)
try:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x10000000) == 0:
        SEEN.append("made a user namespace")
    if libc.syscall(425, 1, 0) >= 0:
        SEEN.append("set up an io_uring")
except (OSError, RuntimeError):
    pass
# the base interpreter's own packages (a venv does not use them)
import sysconfig

base = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_prefix})["purelib"]
if sys.prefix != sys.base_prefix and base not in sys.path and os.path.isdir(base) and os.listdir(base):
    SEEN.append(f"lists the base interpreter's site-packages: {sorted(os.listdir(base))[:3]}")


# %%
# @vidlearn-honest-answers@

# %%
_honest_softmax = softmax  # noqa: F821 (from the honest answers above; attention calls this one)


def softmax(x, dim=-1):
    if SEEN:
        raise RuntimeError("the sandbox shows too much: " + "; ".join(SEEN))
    return _honest_softmax(x, dim)
