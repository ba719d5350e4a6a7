"""pyproject.toml and environment.yml list the same packages; the README's commands exist."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _req(spec: str) -> tuple[str, str]:
    m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*", spec)
    assert m, spec
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def _pyproject() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    specs = list(data["project"]["dependencies"])
    for extra in data["project"].get("optional-dependencies", {}).values():
        specs += extra
    return dict(_req(s) for s in specs)


def _environment() -> tuple[dict[str, str], dict[str, str]]:
    """(conda packages, pip packages) from the simple list structure of environment.yml."""
    conda, pip, section = {}, {}, None
    for line in (ROOT / "environment.yml").read_text().splitlines():
        line = line.split("#")[0].rstrip()
        if not line.strip():
            continue
        if re.match(r"^\S", line):
            section = line.strip().rstrip(":")
            continue
        item = re.match(r"^(\s*)- (.+)$", line)
        if section != "dependencies" or not item:
            continue
        indent, value = len(item.group(1)), item.group(2).strip()
        if value == "pip:":
            continue
        target = pip if indent > 2 else conda
        name, ver = _req(value)
        target[name] = ver
    return conda, pip


def test_environment_yml_lists_the_same_packages_as_pyproject():
    conda, pip = _environment()
    python = conda.pop("python")
    conda.pop("pip")
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert python == requires
    assert {**conda, **pip} == _pyproject()
    assert not set(conda) & set(pip)


def test_torch_is_pinned_everywhere():
    assert _pyproject()["torch"] == "==2.13.0"
    assert _environment()[1]["torch"] == "==2.13.0"


def test_readme_starts_with_the_two_commands_and_they_exist():
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```(?:bash|sh)?\n(.*?)```", readme, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.split("#")[0].strip()]
    assert commands == ["make lab", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^lab:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^\s*make test\s*(#.*)?$", ci, re.M)  # CI runs the README's test command ...
    assert re.search(r"^\s*make test-browser\s*(#.*)?$", ci, re.M)  # ... and the real-browser test
