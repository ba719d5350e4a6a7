"""A real JupyterLab in a real browser: the fixtures of ``make test-browser``.

* ``lab`` (session): copies ``chapters/`` and ``exercises/`` into ``build/browser/work/`` and serves
  that copy with ``jupyter lab`` on a free port of 127.0.0.1, with a random token and a settings
  folder of its own (``.py`` files open as Jupytext notebooks, no news pop-up, every cell kept in
  the DOM). JupyterLab autosaves and Jupytext writes a notebook back to its ``.py`` source, so the
  repository's files are never served; at the end the fixture checks, by hash, that they did not
  change. The server is always stopped (``POST /api/shutdown``, which also stops its kernels; then
  SIGTERM, then SIGKILL).
* ``browser`` (session): Debian's Chromium (``/usr/bin/chromium``, or ``$VIDLEARN_CHROMIUM``),
  headless, driven by Playwright's sync API. Playwright's wheel ships its own driver, so no
  ``playwright install`` (no browser download) is needed.
* ``page`` (per test): a fresh browser context. When a test fails, a screenshot of the page is
  saved as ``build/browser/screenshots/FAILED-<test>.png``.

These tests are not part of ``pytest tests`` (``make test-unit`` ignores this folder); run them
with ``make test-browser``.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build" / "browser"
WORK = BUILD / "work"
SCREENSHOTS = BUILD / "screenshots"
COPIED = ("chapters", "exercises")
CHROMIUM = os.environ.get("VIDLEARN_CHROMIUM", "/usr/bin/chromium")

SERVER_START_TIMEOUT = 90  # seconds until /api/status answers
SERVER_STOP_TIMEOUT = 20  # seconds for a graceful stop before SIGKILL
PAGE_TIMEOUT_MS = 30_000  # default for Playwright's auto-waiting actions

# JupyterLab user settings, one file per plugin (what the Settings editor would write).
LAB_SETTINGS = {
    # what `jupytext-config set-default-viewer python` writes into .venv's overrides.json for `make lab`
    "@jupyterlab/docmanager-extension/plugin": {"defaultViewers": {"python": "Jupytext Notebook"}},
    # no "official Jupyter news?" toast over the notebook, no update check (no internet here)
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    # keep every cell in the DOM (the default windowing drops cells scrolled out of view)
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


def _tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under the copied folders of ``root`` (new, deleted and changed files show)."""
    digest = {}
    for name in COPIED:
        for path in sorted((root / name).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    """A running JupyterLab server."""

    base_url: str
    token: str
    work: Path
    log: Path
    proc: subprocess.Popen

    def url(self, path: str, workspace: str) -> str:
        """The URL that opens ``path`` (relative to the work dir) in a workspace of its own.

        A fresh workspace per test: JupyterLab stores the open tabs of a workspace on the server,
        and would otherwise reopen the previous test's notebook next to this one.
        """
        return f"{self.base_url}/lab/workspaces/{workspace}/tree/{path}?token={self.token}"

    def api(self, method: str, path: str, timeout: float = 10.0):
        req = urllib.request.Request(
            f"{self.base_url}{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
            data=b"" if method in ("POST", "PUT") else None,
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def shut_down_kernels(self) -> None:
        """Stop every kernel this server runs (the machine has 2 cores: one kernel at a time)."""
        for kernel in self.api("GET", "/api/kernels"):
            self.api("DELETE", f"/api/kernels/{kernel['id']}", timeout=30)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no server log)"
        return "\n".join(text[-lines:])


def _write_settings(settings_dir: Path) -> None:
    for plugin, values in LAB_SETTINGS.items():
        path = settings_dir / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values, indent=2))


def _start_server(env: dict, log: Path) -> tuple[subprocess.Popen, str, str]:
    """Start ``jupyter lab``; retry on another port if the chosen one was taken meanwhile."""
    token = secrets.token_hex(24)
    for attempt in range(3):
        port = _free_port()
        cmd = [
            sys.executable, "-m", "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={WORK}",
        ]
        if os.geteuid() == 0:  # as in `make lab`: JupyterLab refuses to run as root unless told to
            cmd.append("--allow-root")
        with open(log, "ab") as out:
            proc = subprocess.Popen(cmd, cwd=WORK, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{base_url}/api/status?token={token}", timeout=2) as resp:
                    if resp.status == 200:
                        return proc, base_url, token
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        else:
            _stop_server(proc, base_url, token)
            raise RuntimeError(f"JupyterLab did not answer /api/status within {SERVER_START_TIMEOUT}s; "
                               f"log {log}:\n{log.read_text(errors='replace')[-4000:]}")
        if attempt == 2:
            raise RuntimeError(f"JupyterLab exited with status {proc.returncode}; "
                               f"log {log}:\n{log.read_text(errors='replace')[-4000:]}")
    raise AssertionError("unreachable")


def _stop_server(proc: subprocess.Popen, base_url: str, token: str) -> None:
    if proc.poll() is not None:
        return
    try:  # a graceful stop that also shuts down the kernels (they run in sessions of their own)
        req = urllib.request.Request(f"{base_url}/api/shutdown", method="POST", data=b"",
                                     headers={"Authorization": f"token {token}"})
        urllib.request.urlopen(req, timeout=5).close()
        proc.wait(timeout=SERVER_STOP_TIMEOUT)
        return
    except (urllib.error.URLError, OSError, subprocess.TimeoutExpired):
        pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)  # the server's own process group (start_new_session=True)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=SERVER_STOP_TIMEOUT)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="session")
def lab():
    before = _tree_digest(ROOT)
    shutil.rmtree(BUILD, ignore_errors=True)
    for d in (WORK, SCREENSHOTS):
        d.mkdir(parents=True)
    for name in COPIED:
        shutil.copytree(ROOT / name, WORK / name, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    _write_settings(BUILD / "lab-settings")

    env = dict(os.environ)
    env.update(
        JUPYTERLAB_SETTINGS_DIR=str(BUILD / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(BUILD / "lab-workspaces"),
        # keep the user's own Jupyter/IPython configuration (a password, startup files) out of it
        JUPYTER_CONFIG_DIR=str(BUILD / "jupyter-config"),
        JUPYTER_RUNTIME_DIR=str(BUILD / "jupyter-runtime"),
        IPYTHONDIR=str(BUILD / "ipython"),
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("MPLBACKEND", None)  # e.g. Agg from CI would stop plt.show() from drawing in the notebook
    env.pop("VIDLEARN_CHECK_STRICT", None)  # check() must print its feedback, not raise
    log = BUILD / "jupyterlab.log"
    proc, base_url, token = _start_server(env, log)
    try:
        yield Lab(base_url=base_url, token=token, work=WORK, log=log, proc=proc)
    finally:
        _stop_server(proc, base_url, token)
    after = _tree_digest(ROOT)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"the browser test modified the repository's files: {changed}"


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install chromium) "
                    "or point VIDLEARN_CHROMIUM at a Chromium binary", pytrace=False)
    from playwright.sync_api import sync_playwright

    args = ["--disable-dev-shm-usage"]  # containers often have a tiny /dev/shm
    if os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium's sandbox refuses to run as root
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args, timeout=60_000)
        try:
            yield b
        finally:
            b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture
def page(browser, lab, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    pg = context.new_page()
    try:
        yield pg
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            shot = SCREENSHOTS / f"FAILED-{request.node.name}.png"
            if "(screenshot: " not in str(rep.longrepr):  # the test's own failure helper took one already
                try:
                    pg.screenshot(path=str(shot), timeout=10_000)
                    print(f"screenshot of the failure: {shot}")
                except Exception as exc:  # noqa: BLE001 - a failed screenshot must not hide the failure
                    print(f"could not take a screenshot of the failure: {exc}")
            print(f"JupyterLab log (last lines of {lab.log}):\n{lab.log_tail(20)}")
        context.close()
        try:
            lab.shut_down_kernels()
        except (urllib.error.URLError, OSError) as exc:
            print(f"could not shut down the kernels: {exc}")
