"""Chapters are well-formed notebooks that follow the course skeleton and verify their derivations.

Executing them is nbval's job (``make test-notebooks``); these checks are static and fast.
"""

import ast
import re
from pathlib import Path

import jupytext
import pytest

from vidlearn import derivations

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.py"))
SKELETON = ["Learning objectives", "Exercises", "Summary"]


def test_there_are_chapters():
    assert [p.name[:2] for p in CHAPTERS][:2] == ["01", "02"]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_is_a_percent_notebook_with_the_skeleton(path):
    nb = jupytext.read(path)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    assert markdown and markdown[0].startswith("# Chapter"), "a chapter opens with its title"
    headings = [line for src in markdown for line in src.splitlines() if line.startswith("## ")]
    positions = []
    for part in SKELETON:
        hits = [i for i, h in enumerate(headings) if part.lower() in h.lower()]
        assert hits, f"{path.name} lacks a '## {part}' section"
        positions.append(hits[0])
    assert positions == sorted(positions), f"{path.name}: sections out of order {SKELETON}"
    assert positions[-1] == len(headings) - 1, "the summary comes last"


def _code(path):
    nb = jupytext.read(path)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_code_is_valid_python(path):
    ast.parse(_code(path))


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_derivations_are_registered_and_verified(path):
    code = _code(path)
    # Derivations live in the registry, so that the corruption tests cover every one of them.
    assert "Derivation(" not in code, "build derivations in vidlearn.derivations, not inline"
    used = re.findall(r'derivations\.get\("([^"]+)"\)(\.verify\(\))?', code)
    for name, verified in used:
        assert name in derivations.REGISTRY, f"{path.name} uses unknown derivation {name!r}"
    shown = {name for name, verified in used if verified}
    assert shown, f"{path.name} verifies no derivation"


def test_every_registered_derivation_is_verified_in_its_chapter():
    verified = set()
    for path in CHAPTERS:
        verified |= set(re.findall(r'derivations\.get\("([^"]+)"\)\.verify\(\)', _code(path)))
    for name in derivations.REGISTRY:
        chapter = name.split(".")[0].removeprefix("ch")
        assert name in verified, f"{name} is registered but no chapter verifies it"
        assert any(p.name.startswith(chapter) for p in CHAPTERS)
