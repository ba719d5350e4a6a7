"""The sandbox is built from an empty root: only the Python environment and the worker kit are bound,
read-only, wherever they live (a checkout or venv under /tmp included); nothing else of the machine."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import ROOT
from vidlearn.grading import bwrap
from vidlearn.grading.kit import KIT_MODULES, build_kit


def _binds(cmd: list[str]) -> list[tuple[str, str]]:
    return [(cmd[i + 1], cmd[i + 2]) for i, a in enumerate(cmd) if a == "--ro-bind"]


def _ops(cmd: list[str]) -> list[tuple[str, str]]:
    """(option, destination) in the order bwrap applies them."""
    takes_two = {"--ro-bind", "--bind", "--symlink"}
    out, i = [], 0
    while i < len(cmd):
        a = cmd[i]
        if a in takes_two:
            out.append((a, cmd[i + 2]))
            i += 3
        elif a in ("--tmpfs", "--dir", "--dev", "--proc", "--remount-ro"):
            out.append((a, cmd[i + 1]))
            i += 2
        elif a in ("--perms", "--size", "--setenv", "--uid", "--gid", "--chdir", "--cap-add", "--cap-drop"):
            i += 2 if a != "--setenv" else 3
        else:
            i += 1
    return out


def _command(as_root=True, **kw):
    return bwrap.command(bwrap.Bwrap("/usr/bin/bwrap", "test", as_root), [sys.executable, "-c", "pass"], tmp_mb=64, **kw)


def test_only_the_environment_and_the_kit_are_bound():
    cmd = _command()
    binds = _binds(cmd)
    software, _ = bwrap.software_paths()
    assert ("/", "/") not in binds
    assert {dest for _, dest in binds} == {str(p) for p in software} | {"/proc/sys", "/vidlearn-kit"}
    for secret in (ROOT / "solutions", ROOT / ".git", ROOT / "vidlearn", ROOT / "README.md", Path.home() / ".ssh"):
        assert not any(secret == Path(dest) or Path(dest) in secret.parents for _, dest in binds), secret


def test_the_kit_holds_the_worker_and_no_answer_key():
    kit = build_kit() / "vidlearn"
    files = sorted(str(p.relative_to(kit)) for p in kit.rglob("*.py"))
    assert files == sorted(["__init__.py", *KIT_MODULES])
    for f in kit.rglob("*.py"):
        text = f.read_text()
        assert "BEGIN SOLUTION" not in text and "register(" not in text


def test_a_venv_under_tmp_is_bound_after_the_private_tmp(monkeypatch, tmp_path):
    venv = Path("/tmp") / tmp_path.name / ".venv"
    monkeypatch.setattr(bwrap, "software_paths", lambda: ((Path("/usr/lib"), venv), ()))
    ops = _ops(_command())
    where = {op: i for i, op in enumerate(ops)}
    assert where[("--tmpfs", "/tmp")] < where[("--dir", str(venv.parent))] < where[("--ro-bind", str(venv))]
    assert ops[-1] == ("--remount-ro", "/")


def test_what_must_stay_hidden_inside_a_bound_folder_is_masked(monkeypatch, tmp_path):
    inside = Path(sys.prefix) / "gradebook-folder"
    cmd = _command(hide=[inside, ROOT / "elsewhere"])
    masks = [dest for op, dest in _ops(cmd) if op == "--tmpfs"]
    assert str(inside) in masks and str(ROOT / "elsewhere") not in masks


@pytest.mark.parametrize("as_root", [True, False])
def test_the_worker_never_runs_as_root(as_root):
    cmd = _command(as_root=as_root)
    env = {cmd[i + 1]: cmd[i + 2] for i, a in enumerate(cmd) if a == "--setenv"}
    assert "--cap-drop" in cmd and cmd[cmd.index("--cap-drop") + 1] == "ALL"
    if as_root:
        uid = int(env["VIDLEARN_SANDBOX_UID"])
        assert uid >= 1_000_000 and "--unshare-user" not in cmd
        again = _command(as_root=True)
        assert again[again.index("VIDLEARN_SANDBOX_UID") + 1] != str(uid)  # each sandbox a uid of its own
    else:
        assert "--unshare-user" in cmd and "--disable-userns" in cmd and cmd[cmd.index("--uid") + 1] == "65534"
    assert set(env) >= {"VIDLEARN_GRADING", "PYTHONPATH", "HOME"} and env["HOME"] == "/tmp"
