"""The course site: its self-check, how a failing chapter cell is named, what the build stages, its
configuration, and the errata it shows. These need only the base install.

The site itself (Sphinx + MyST-NB, the ``site`` extra) is built end to end by ``make site``, which
CI runs: every chapter executed, warnings as errors, then :func:`vidlearn.site.check_site`.
"""

import os
import re
import runpy
import tomllib
import traceback
from pathlib import Path

import jupytext
import pytest
from nbformat.v4 import new_code_cell

from vidlearn import cli
from vidlearn.site import (MARKER, SiteBuildError, _execution_failure, build_site, check_site, failing_cells,
                           failure_message, read_percent, readme_chapters)

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- the self-check, on hand-made sites

def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


GOOD = {
    "index.html": '<html><head><link rel="stylesheet" href="_static/site.css"><script src="_static/site.js"></script>'
                  '</head><body><a href="overview.html">overview</a> <a href="https://mybinder.org/v2/gh/x/y">Binder</a>'
                  '<a href="#top" id="top">top</a><img alt="logo" src="_static/logo.svg"></body></html>',
    "overview.html": '<a href="chapters/01_one.html#sec-1">one</a> <a href="chapters/02_two.html">two</a>',
    "chapters/01_one.html": '<h2 id="sec-1">1.</h2><img alt="A line." src="../_images/a.png">'
                            '<a href="../_sources/chapters/01_one.py" download>.py</a>'
                            '<a href="../_sources/chapters/01_one.ipynb">.ipynb</a>',
    "chapters/02_two.html": '<img alt="Bars." src="../_images/b%20c.png"><a href="../index.html">home</a>',
    "_images/a.png": "png", "_images/b c.png": "png",
    "_static/site.css": "body { background: url(logo.svg) } @font-face { src: url('fonts/x.woff2') }",
    "_static/site.js": "", "_static/logo.svg": "<svg/>", "_static/fonts/x.woff2": "",
    "_sources/chapters/01_one.py": "", "_sources/chapters/01_one.ipynb": "{}",
}


def test_check_site_accepts_a_site_that_holds_together(tmp_path):
    site = _write(tmp_path, GOOD)
    assert check_site(site, ["01_one", "02_two"]) == []
    assert cli.main(["check-site", str(site), "--chapters-dir", str(_chapters(tmp_path / "c", "01_one", "02_two"))]) == 0


def _chapters(folder: Path, *names: str) -> Path:
    folder.mkdir()
    for name in names:
        (folder / f"{name}.py").write_text("# %%\n")
    return folder


def test_check_site_names_every_kind_of_problem(tmp_path, capsys):
    files = dict(GOOD)
    files["overview.html"] = '<a href="chapters/01_one.html#no-such">one</a> <a href="missing.html">gone</a>'
    files["chapters/02_two.html"] = '<img src="../_images/b%20c.png"><script src="https://cdn.example.org/m.js"></script>'
    files["chapters/03_three.html"] = '<link rel="stylesheet" href="//fonts.example.org/f.css"><p>no figure</p>'
    files["_static/site.css"] = "@import 'https://fonts.example.org/css'; body { background: url(logo.svg) }"
    site = _write(tmp_path / "site", files)
    problems = check_site(site, ["01_one", "02_two", "03_three", "04_four"])
    assert sorted(problems) == sorted([
        "chapters/02_two.html is not reachable from index.html",
        "chapters/03_three.html is not reachable from index.html",
        "chapters/03_three.html shows no figure: were its cells executed?",
        "chapter 04_four has no page (chapters/04_four.html)",
        "chapters/02_two.html: an image without alt text (../_images/b%20c.png)",
        "chapters/02_two.html loads https://cdn.example.org/m.js from outside the site",
        "chapters/03_three.html loads //fonts.example.org/f.css from outside the site",
        "overview.html links chapters/01_one.html#no-such: no such section",
        "overview.html links missing.html, which does not exist",
        "_static/site.css loads https://fonts.example.org/css from outside the site",
    ])
    chapters = _chapters(tmp_path / "c", "01_one", "04_four")
    assert cli.main(["check-site", str(site), "--chapters-dir", str(chapters)]) == 1
    assert "vidlearn check-site: chapter 04_four has no page" in capsys.readouterr().err
    assert check_site(tmp_path / "nowhere", []) == [f"{tmp_path / 'nowhere' / 'index.html'} is missing"]


# Each of these in index.html makes a browser fetch from another host (or, <base>, turns every
# relative load into one): (the markup, the address the problem names).
ATTACKS = {
    "style @import": ('<style>@import url("https://fonts.googleapis.com/css?family=X");</style>',
                      "https://fonts.googleapis.com/css?family=X"),
    "style @import string": ("<style>@import 'https://fonts.example.org/f.css';</style>",
                             "https://fonts.example.org/f.css"),
    "style url()": ("<style>body { background: url(https://img.example.org/bg.png) }</style>",
                    "https://img.example.org/bg.png"),
    "style attribute": ('<div style="background:url(\'https://img.example.org/d.png\')">x</div>',
                        "https://img.example.org/d.png"),
    "img srcset": ('<img alt="x" src="_static/logo.svg" srcset="_static/logo.svg 1x, https://img.example.org/2x.png 2x">',
                   "https://img.example.org/2x.png"),
    "object data": ('<object data="https://cdn.example.org/o.svg"></object>', "https://cdn.example.org/o.svg"),
    "video poster": ('<video poster="https://cdn.example.org/p.jpg"></video>', "https://cdn.example.org/p.jpg"),
    "iframe src": ('<iframe src="https://www.youtube.com/embed/x"></iframe>', "https://www.youtube.com/embed/x"),
    "embed src": ('<embed src="https://cdn.example.org/e.swf">', "https://cdn.example.org/e.swf"),
    "audio src": ('<audio src="https://cdn.example.org/a.mp3"></audio>', "https://cdn.example.org/a.mp3"),
    "source src": ('<video><source src="https://cdn.example.org/v.mp4"></video>', "https://cdn.example.org/v.mp4"),
    "input image": ('<input type="image" src="https://cdn.example.org/b.png">', "https://cdn.example.org/b.png"),
    "preload": ('<link rel="preload" as="font" href="https://fonts.example.org/f.woff2">',
                "https://fonts.example.org/f.woff2"),
    "icon": ('<link rel="icon" href="//cdn.example.org/favicon.ico">', "//cdn.example.org/favicon.ico"),
    "modulepreload": ('<link rel="modulepreload" href="https://cdn.example.org/m.js">', "https://cdn.example.org/m.js"),
    "protocol-relative script": ('<script src="//cdn.example.org/s.js"></script>', "//cdn.example.org/s.js"),
    "script with blanks": ('<script src=" https://cdn.example.org/s.js"></script>', " https://cdn.example.org/s.js"),
    "inline script import": ('<script type="module">import x from "https://cdn.example.org/m.js";</script>',
                             "https://cdn.example.org/m.js"),
}


@pytest.mark.parametrize("markup, url", ATTACKS.values(), ids=ATTACKS.keys())
def test_check_site_finds_every_load_from_outside(tmp_path, markup, url):
    files = dict(GOOD)
    files["index.html"] = GOOD["index.html"].replace("</body>", markup + "</body>")
    assert check_site(_write(tmp_path, files), ["01_one", "02_two"]) == [f"index.html loads {url} from outside the site"]


def test_a_base_href_fails_the_check(tmp_path):
    files = dict(GOOD)
    files["chapters/02_two.html"] = '<base href="https://cdn.example.org/">' + GOOD["chapters/02_two.html"]
    assert check_site(_write(tmp_path, files), ["01_one", "02_two"]) == [
        'chapters/02_two.html has <base href="https://cdn.example.org/">, which redirects every relative address '
        "to outside the site"]


def test_a_script_that_imports_from_outside_fails_the_check(tmp_path):
    files = dict(GOOD)
    files["_static/site.js"] = ('import { a } from "./local.js";\nimport {\n  b,\n} from "https://esm.example.org/b.js";\n'
                                'importScripts("//cdn.example.org/w.js");\n')
    files["_static/local.js"] = ""
    assert sorted(check_site(_write(tmp_path, files), ["01_one", "02_two"])) == [
        "_static/site.js loads //cdn.example.org/w.js from outside the site",
        "_static/site.js loads https://esm.example.org/b.js from outside the site"]


def test_links_the_reader_follows_may_leave_the_site_but_local_ones_may_not(tmp_path):
    site = tmp_path / "site"
    (tmp_path / "secret.txt").write_text("on the build machine, not in the site")
    files = dict(GOOD)
    files["overview.html"] = GOOD["overview.html"] + (
        '<a href="https://example.org/read-more">more</a> <a href="mailto:t@example.org">mail</a>'
        '<a href="../secret.txt">secret</a> <a href="../../../../../../../../etc/passwd">passwd</a>'
        '<a href="/etc/hostname">host</a>')
    files["_static/site.css"] = GOOD["_static/site.css"] + " p { background: url(../../secret.txt) }"
    problems = check_site(_write(site, files), ["01_one", "02_two"])
    assert sorted(problems) == sorted([
        "overview.html links ../secret.txt, which leads outside the site",
        "overview.html links ../../../../../../../../etc/passwd, which leads outside the site",
        "overview.html links /etc/hostname, which leads outside the site",
        "_static/site.css links ../../secret.txt, which leads outside the site",
    ])


def test_check_site_reads_a_relative_site_path(tmp_path, monkeypatch):
    _write(tmp_path / "site", GOOD)
    monkeypatch.chdir(tmp_path)
    assert check_site(Path("site"), ["01_one", "02_two"]) == []


# ---------------------------------------------------------------- a failing cell, named

BROKEN = '''\
# %% [markdown]
# # Chapter 3 — Broken

# %%
x = 1

# %%
x / 0
'''


def _nbclient_report(source: str) -> str:
    """The text of nbclient's CellExecutionError for ``source`` raising ZeroDivisionError."""
    from nbclient.exceptions import CellExecutionError

    msg = {"ename": "ZeroDivisionError", "evalue": "division by zero",
           "traceback": ["\x1b[0;31mZeroDivisionError\x1b[0m  Traceback (most recent call last)",
                         "Cell \x1b[0;32mIn[2], line 1\x1b[0m\n----> 1 x / 0", "ZeroDivisionError: division by zero"]}
    return str(CellExecutionError.from_cell_and_msg(new_code_cell(source), msg))


class ExecutionError(Exception):
    """As myst-nb names its error: ``ExecutionError(path)`` raised from nbclient's."""


def test_a_failing_cell_is_named_by_chapter_cell_and_line(tmp_path):
    staged = tmp_path / "src" / "chapters" / "03_broken.py"
    staged.parent.mkdir(parents=True)
    staged.write_text(BROKEN)
    message = failure_message(staged, _nbclient_report("x / 0"), shown="chapters/03_broken.py")
    assert message.startswith("chapters/03_broken.py: cell 3 (the '# %%' at line 7) failed: "
                              "ZeroDivisionError: division by zero")
    assert "----> 1 x / 0" in message and "\x1b[" not in message

    # as a serial build raises it (a chain of exceptions) ...
    from nbclient.exceptions import CellExecutionError

    try:
        try:
            raise CellExecutionError(_nbclient_report("x / 0"), "ZeroDivisionError", "division by zero")
        except CellExecutionError as cause:
            raise ExecutionError(str(staged)) from cause
    except ExecutionError as err:
        serial = _execution_failure(err)
        text = "".join(traceback.format_exception(err))

    # ... and as a parallel one does (only the traceback's text comes back from the worker)
    class ParallelError(Exception):
        pass

    parallel = ParallelError("myst_nb...ExecutionError")
    parallel.traceback = text

    assert serial == _execution_failure(parallel) == message
    assert _execution_failure(ValueError("something else")) is None


def test_a_cell_that_cannot_be_found_is_still_reported(tmp_path):
    staged = tmp_path / "03_broken.py"
    staged.write_text(BROKEN)
    message = failure_message(staged, _nbclient_report("not this cell"))
    assert message.startswith(f"{staged}: a cell failed: ZeroDivisionError: division by zero")


# The reviewer's chapter: the failing assert's code is also cell 3's, which passes.
SAME_CODE_TWICE = '''\
# %% [markdown]
# # Chapter 9
# %%
y = 2
# %%
assert y == 2, "y changed"
# %%
y += 1
# %%
assert y == 2, "y changed"
'''


def _assertion_report(count: int | None) -> str:
    from nbclient.exceptions import CellExecutionError

    tb = ["\x1b[0;31mAssertionError\x1b[0m  Traceback (most recent call last)",
          (f"Cell \x1b[0;32mIn[{count}], line 1\x1b[0m\n" if count else "") + '----> 1 assert y == 2, "y changed"',
          "AssertionError: y changed"]
    msg = {"ename": "AssertionError", "evalue": "y changed", "traceback": tb}
    return str(CellExecutionError.from_cell_and_msg(new_code_cell('assert y == 2, "y changed"'), msg))


def test_the_failing_cell_is_found_by_its_execution_count_not_its_code(tmp_path):
    staged = tmp_path / "09_same.py"
    staged.write_text(SAME_CODE_TWICE)
    cells = read_percent(SAME_CODE_TWICE).cells
    assert failing_cells(cells, _assertion_report(4)) == [4]
    assert failing_cells(cells, _assertion_report(2)) == [2]
    assert failure_message(staged, _assertion_report(4)).startswith(
        f"{staged}: cell 5 (the '# %%' at line 9) failed: AssertionError: y changed")
    # no execution count in the traceback: both cells that hold the code are named, neither guessed
    assert failure_message(staged, _assertion_report(None)).startswith(
        f"{staged}: one of cell 3 (the '# %%' at line 5), cell 5 (the '# %%' at line 9) (the same code; "
        "which one is not known) failed: AssertionError: y changed")


def test_the_failing_cell_of_a_real_execution_is_named(tmp_path):
    """nbclient runs the reviewer's chapter in a kernel, as myst-nb does; its error names cell 5."""
    import ipykernel  # noqa: F401  (a base dependency: the kernel must be there, not the test skipped)
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    staged = tmp_path / "09_same.py"
    staged.write_text(SAME_CODE_TWICE)
    nb = read_percent(SAME_CODE_TWICE)
    with pytest.raises(CellExecutionError) as raised:
        NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    assert [i for i, c in enumerate(nb.cells) if any(o.output_type == "error" for o in c.get("outputs", []))] == [4]
    assert failing_cells(nb.cells, str(raised.value)) == [4]
    assert failure_message(staged, str(raised.value)).startswith(
        f"{staged}: cell 5 (the '# %%' at line 9) failed: AssertionError: y changed")


# ---------------------------------------------------------------- what the build stages and reads

def test_the_chapter_table_page_is_the_readmes():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    page = readme_chapters(readme)
    assert page.startswith("# The chapters at a glance\n")
    for chapter in sorted((ROOT / "chapters").glob("[0-9][0-9]_*.py")):
        assert f"](chapters/{chapter.name})" in page
    assert "## How claims are checked" not in page and "| # | chapter |" in page
    with pytest.raises(SiteBuildError, match="no '## Chapters' section"):
        readme_chapters("# a README\n")


def test_percent_sources_read_as_python_notebooks_with_their_cell_metadata():
    nb = read_percent('# %% [markdown]\n# # Exercise\n\n# %% mystnb={"image": {"alt": "x"}}\nprint(1)\n')
    assert nb.metadata["kernelspec"]["language"] == "python" and nb.metadata["language_info"]["name"] == "python"
    assert nb.cells[1].metadata["mystnb"] == {"image": {"alt": "x"}}


@pytest.mark.parametrize("path", sorted((ROOT / "chapters").glob("[0-9][0-9]_*.py")), ids=lambda p: p.name)
def test_every_figure_of_a_chapter_has_alt_text(path):
    plots = [c for c in jupytext.read(path).cells if c.cell_type == "code" and "plt.show()" in c.source]
    assert plots, f"{path.name} draws no figure (check_site requires one per chapter page)"
    for cell in plots:
        alt = cell.metadata.get("mystnb", {}).get("image", {}).get("alt", "")
        assert len(alt) > 20, f"{path.name}: a plot cell without alt text: {cell.source[:80]!r}"


def test_build_site_replaces_only_a_site(tmp_path):
    other = tmp_path / "not-a-site"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(SiteBuildError, match="not a site built by vidlearn"):
        build_site(ROOT, other)
    assert (other / "notes.txt").read_text() == "mine"
    assert MARKER.startswith(".")


# ---------------------------------------------------------------- the configuration

def _conf(**env) -> dict:
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return runpy.run_path(str(ROOT / "docs" / "conf.py"))
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def test_sphinx_configuration_executes_chapters_strictly_and_serves_maths_locally():
    conf = _conf()
    assert conf["nb_execution_raise_on_error"] is True and conf["nb_execution_mode"] in ("force", "auto")
    assert conf["nb_execution_excludepatterns"] == ["exercises/*"]
    assert "conf.py" in conf["exclude_patterns"]
    assert conf["nb_custom_formats"] == {".py": "vidlearn.site.read_percent"}
    assert not re.match(r"(https?:)?//", conf["mathjax_path"]) and conf["mathjax_path"].startswith("mathjax/MathJax.js")
    assert (conf["MATHJAX_STATIC"] / "MathJax.js").is_file()
    assert conf["mathjax2_config"]["HTML-CSS"]["webFont"] == "STIX-Web"
    assert "tex2jax" in conf["mathjax2_config"]
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    assert ":numbered:" not in index  # MyST-NB numbers the chapters' own headings already


def test_launch_buttons_are_set_in_one_place():
    options = _conf()["html_theme_options"]
    assert options["repository_url"].startswith("https://github.com/")
    assert options["launch_buttons"]["binderhub_url"] and options["launch_buttons"]["jupyterhub_url"]
    mine = _conf(VIDLEARN_REPOSITORY_URL="https://github.com/a-school/video-course",
                 VIDLEARN_JUPYTERHUB_URL="https://hub.a-school.edu", VIDLEARN_REPOSITORY_BRANCH="spring")
    options = mine["html_theme_options"]
    assert options["repository_url"] == "https://github.com/a-school/video-course"
    assert options["repository_branch"] == "spring"
    assert options["launch_buttons"]["jupyterhub_url"] == "https://hub.a-school.edu"


def test_sphinx_is_an_extra_that_make_site_installs_and_ci_runs():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    site = {re.split(r"[=<>]", s)[0] for s in project["optional-dependencies"]["site"]}
    assert {"sphinx", "myst-nb", "sphinx-book-theme"} <= site
    base_and_test = project["dependencies"] + project["optional-dependencies"]["test"]
    assert not site & {re.split(r"[=<>;]", s)[0].strip() for s in base_and_test}, "students do not pull Sphinx"
    makefile = (ROOT / "Makefile").read_text()
    stamp = re.search(r"^site: (\S+)", makefile, re.M).group(1)
    assert re.search(rf"^{re.escape(stamp)}:.*\n\t.*pip install -e '\.\[[a-z,]*site[a-z,]*\]'", makefile, re.M)
    assert "site" not in re.search(r"^\$\(STAMP\):.*?\n\n", makefile, re.M | re.S).group(0).replace("site-packages", "")
    assert re.search(r"^\s*make site\s*(#.*)?$", (ROOT / ".ci" / "run").read_text(), re.M)


# ---------------------------------------------------------------- errata

from vidlearn.errata import ERRATA, ERRATA_MARKS, Erratum, errata_markdown, errata_source_problems  # noqa: E402


def test_errata_cover_the_known_seed_errors_and_say_where():
    assert {e.location for e in ERRATA} == set(ERRATA_MARKS)
    for e in ERRATA:
        assert e.claim and e.correct and e.evidence, e.location
        chapter = ROOT / "chapters" / f"{e.chapter}.py"
        assert chapter.is_file(), e.location
        if e.section is not None:  # the section heading exists in the chapter, as written there
            headings = [m.group(1) for line in chapter.read_text(encoding="utf-8").splitlines()
                        if (m := re.match(r"^# #{1,6} (.+?)\s*$", line))]
            assert e.section in headings, f"{e.location}: {chapter.name} has no heading {e.section!r}"


def _fake_seeds(folder):
    """Seed files whose quoted lines carry exactly the marks (every other line filler): ``folder``."""
    lines_of = {}
    for e in ERRATA:
        for i, n in enumerate(e.lines):
            text = " ".join(ERRATA_MARKS[e.location]) if i == 0 else "filler"
            if e.location.endswith(":85"):  # the slice, a comment, then the statement that fails
                text = ("pos = torch.randn(1, 1000, d_model)[:, :T, :].to(device)  # 假设最大帧数1000 "
                        "x_with_pos = x + pos")
            lines_of.setdefault(e.seed, {})[n] = text
    for seed, numbered in lines_of.items():
        (folder / seed).write_text("\n".join(numbered.get(n, "filler") for n in range(1, max(numbered) + 1)) + "\n",
                                   encoding="utf-8")
    return folder


def test_errata_source_check_accepts_the_right_lines_and_names_a_wrong_one(tmp_path):
    seeds = _fake_seeds(tmp_path)
    assert errata_source_problems(seeds) == []
    f = seeds / "002_ce2eb6c9d0177072.txt"
    lines = f.read_text(encoding="utf-8").splitlines()
    lines[48 - 1] = "Model 1 is the best"  # the row's line no longer says what the row claims
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    problems = errata_source_problems(seeds)
    assert problems and all(p.startswith("002_ce2eb6c9d0177072.txt:48 does not say") for p in problems)
    f85 = seeds / "000_3199cb540fa88f29.txt"
    lines = f85.read_text(encoding="utf-8").splitlines()
    lines[85 - 1] = lines[85 - 1].replace("# 假设", "y = 1  # 假设")  # a statement before the failing one
    f85.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert any("more than a comment" in p for p in errata_source_problems(seeds))
    assert errata_source_problems(tmp_path / "nowhere") == [f"no seed material at {tmp_path / 'nowhere'}"]


def test_check_errata_command_reports_and_exits_nonzero_on_a_problem(tmp_path, capsys):
    from vidlearn.cli import main

    assert main(["check-errata", "--seeds", str(_fake_seeds(tmp_path))]) == 0
    assert "all 9 errata" in capsys.readouterr().out
    assert main(["check-errata", "--seeds", str(tmp_path / "nowhere")]) == 1
    assert "no seed material" in capsys.readouterr().err


def test_the_learned_table_erratum_says_where_it_fails():
    row = next(e for e in ERRATA if e.location == "000_3199cb540fa88f29.txt:85")
    assert "assume at most 1000 frames" in row.claim and "x + pos" in row.correct


def test_readme_errata_table_is_the_sites():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Corrections to common material"):]
    assert errata_markdown() in section
    assert section.count("\n| `0") == len(ERRATA)


