"""The course site, built from a tiny made-up course (two chapters, one exercise) so it stays fast.

The real build is checked by ``vidlearn build-site`` itself (``check_site`` after every build;
CI runs ``make site``).
"""

import html
import re
import textwrap
from pathlib import Path

import pytest

from vidlearn import cli
from vidlearn.site import SiteBuildError, _tidy_streams, build_site, check_site, find_chapters

ROOT = Path(__file__).resolve().parents[1]

CHAPTER_1 = '''\
# %% [markdown]
# # Chapter 1 — Counting frames
#
# Frames are counted here, one paragraph of introduction.
#
# ## Learning objectives
# After this chapter you can
# 1. count to $4$;
# 2. draw a straight line.
#
# Open `exercises/ex01_counting.py` when you are done.

# %%
print("frames counted:", 6 * 7)

# %%
import matplotlib.pyplot as plt

plt.plot([0, 1], [0, 1])
plt.show()
'''

CHAPTER_2 = '''\
# %% [markdown]
# # Chapter 2 — Reading a file
#
# Chapters run in the course root, so a relative path works.
#
# ## Learning objectives
# - read `data.txt`.

# %%
print(open("data.txt").read().strip().upper())

# %%
import sys

for step in range(3):  # a progress bar, as tqdm draws one without widgets
    sys.stderr.write(f"\\rtraining step {step}")
    sys.stderr.flush()
sys.stderr.write("\\rtraining done\\n")
'''

EXERCISE_1 = '''\
# %% [markdown]
# # Exercise 1 — counting
#
# Companion to [chapter 1](../chapters/01_counting.py).

# %%
def count(n):
    raise NotImplementedError()
'''

BROKEN = '''\
# %% [markdown]
# # Chapter 3 — Broken

# %%
x = 1

# %%
x / 0
'''


def _course(root: Path, chapters: dict[str, str], exercises: dict[str, str] = {}) -> Path:
    for folder, files in (("chapters", chapters), ("exercises", exercises)):
        (root / folder).mkdir(parents=True)
        for name, text in files.items():
            (root / folder / name).write_text(text)
    (root / "data.txt").write_text("read from the course root\n")
    return root


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return _course(tmp_path_factory.mktemp("course"),
                   {"01_counting.py": CHAPTER_1, "02_reading.py": CHAPTER_2},
                   {"ex01_counting.py": EXERCISE_1})


@pytest.fixture(scope="module")
def site(course):
    """The made-up course built once, executed (the only build here that starts kernels)."""
    index = build_site(course / "chapters", course / "exercises", course / "build" / "site", cell_timeout=60)
    return index.parent


def _hrefs(page: Path) -> list[str]:
    return re.findall(r'href="([^"#]+)', page.read_text())


def _text(page: Path) -> str:
    """The page as text: tags (syntax highlighting included) removed, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))


def test_chapters_are_read_from_their_first_markdown_cell(course):
    one, two = find_chapters(course / "chapters", course / "exercises")
    assert (one.number, one.title, two.number, two.title) == (1, "Counting frames", 2, "Reading a file")
    assert one.intro == "Frames are counted here, one paragraph of introduction."
    assert one.objectives.splitlines() == ["After this chapter you can", "1. count to $4$;", "2. draw a straight line."]
    assert one.exercise == course / "exercises" / "ex01_counting.py" and two.exercise is None


def test_index_lists_every_chapter_with_a_working_link(site):
    index = (site / "index.html").read_text()
    assert "<title>vidlearn — attention for video</title>" in index
    assert index.index("Counting frames") < index.index("Reading a file")
    assert "draw a straight line" in index and "Frames are counted here" in index
    hrefs = _hrefs(site / "index.html")
    for href in ("chapters/01_counting.html", "chapters/02_reading.html", "exercises/ex01_counting.html",
                 "exercises/ex01_counting.py", "exercises/ex01_counting.ipynb"):
        assert href in hrefs and (site / href).is_file(), href
    assert check_site(site, site.parents[1] / "chapters") == []


def test_chapter_pages_hold_their_executed_outputs_and_plots(site):
    one = (site / "chapters" / "01_counting.html").read_text()
    assert "frames counted: 42" in one and 'class="jp-OutputArea' in one
    assert re.search(r'<img[^>]+src="data:image/png;base64,[A-Za-z0-9+/]{100}', one)
    # run in the course root: the relative path in chapter 2 found the file there
    two = _text(site / "chapters" / "02_reading.html")
    assert "READ FROM THE COURSE ROOT" in two
    # a progress bar shows its last state only, as in JupyterLab
    assert "training done" in two and "training step 1" not in two


def test_streams_merge_in_place_and_keep_the_last_state_of_a_progress_bar():
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    cell = new_code_cell(outputs=[
        new_output("stream", name="stdout", text="a\n"), new_output("stream", name="stdout", text="b\n"),
        new_output("display_data", data={"text/plain": "plot"}),
        new_output("stream", name="stderr", text="\r 10%"), new_output("stream", name="stderr", text="\r 90%\r    \r"),
        new_output("stream", name="stdout", text="c\r\nd\n"),
    ])
    nb = new_notebook(cells=[cell])
    _tidy_streams(nb)
    shown = [o.get("text", o.get("data", {}).get("text/plain")) for o in nb.cells[0].outputs]
    assert shown == ["a\nb\n", "plot", "c\nd\n"], "a bar that cleared itself is gone; the order is kept"


def test_chapter_pages_link_their_exercise_and_their_neighbours(site):
    one, two = _hrefs(site / "chapters" / "01_counting.html"), _hrefs(site / "chapters" / "02_reading.html")
    assert {"../index.html", "../exercises/ex01_counting.html", "02_reading.html"} <= set(one)
    assert "01_counting.html" in two and "../index.html" in two
    # the `exercises/ex01_counting.py` of the markdown became a link to the exercise's page
    assert '<a href="../exercises/ex01_counting.html"><code>exercises/ex01_counting.py</code></a>' in \
        (site / "chapters" / "01_counting.html").read_text()


def test_exercises_are_rendered_unexecuted_with_their_source_to_download(site, course):
    page = site / "exercises" / "ex01_counting.html"
    assert "raise NotImplementedError()" in _text(page) and 'class="jp-OutputArea' not in page.read_text()
    assert "../chapters/01_counting.html" in _hrefs(page)  # the link to the chapter's .py, relinked
    assert (site / "exercises" / "ex01_counting.py").read_text() == EXERCISE_1
    assert '"cell_type": "code"' in (site / "exercises" / "ex01_counting.ipynb").read_text()


def test_a_failing_cell_fails_the_build_naming_chapter_cell_and_line(tmp_path, capsys):
    root = _course(tmp_path, {"01_counting.py": CHAPTER_1, "03_broken.py": BROKEN})
    out = root / "build" / "site"
    rc = cli.main(["build-site", "--chapters-dir", str(root / "chapters"), "--exercises", str(root / "exercises"),
                   "--out", str(out), "--chapters", "03_*.py", "--quiet", "--cell-timeout", "60"])
    err = capsys.readouterr().err
    assert rc == 1
    assert re.search(r"03_broken\.py: cell 3 \(the '# %%' at line 7\) failed: ZeroDivisionError", err), err
    assert not out.exists() and not list((root / "build").iterdir()), "nothing half-built is left"


def test_no_execute_renders_without_outputs_and_replaces_only_a_site(tmp_path, course, capsys):
    out = tmp_path / "site"
    argv = ["build-site", "--no-execute", "--quiet", "--chapters-dir", str(course / "chapters"),
            "--exercises", str(course / "exercises"), "--out", str(out)]
    assert cli.main(argv) == 0
    one = out / "chapters" / "01_counting.html"
    assert 'print("frames counted:", 6 * 7)' in _text(one)
    assert "frames counted: 42" not in _text(one) and not re.search(r"<img[^>]+data:image/png", one.read_text())
    assert check_site(out, course / "chapters") == []
    first = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert cli.main(argv) == 0, "a site built before is replaced"
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == first, "deterministic"

    other = tmp_path / "not-a-site"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(SiteBuildError, match="not a site built by vidlearn"):
        build_site(course / "chapters", course / "exercises", other, execute=False)
    assert (other / "notes.txt").read_text() == "mine"


def test_check_site_reports_a_missing_chapter_and_a_dead_link(tmp_path, course):
    out = tmp_path / "site"
    build_site(course / "chapters", course / "exercises", out, execute=False, pattern="01_*.py")
    (out / "exercises" / "ex01_counting.html").unlink()
    problems = check_site(out, course / "chapters")
    assert "index.html does not link 02_reading.py (chapters/02_reading.html)" in problems
    assert any("links exercises/ex01_counting.html, which does not exist" in p for p in problems)


def test_check_site_requires_plots_only_of_executed_chapters(tmp_path, course, site):
    # chapter 1 of the made-up course draws a plot, chapter 2 does not
    assert check_site(site, course / "chapters", require_plots=True) == [
        "chapters/02_reading.html embeds no plot: were its outputs executed?"]
    # unexecuted, chapter 1 has no figure to embed either (JupyterLab's CSS has PNGs of its own:
    # those must not count)
    bare = tmp_path / "bare"
    build_site(course / "chapters", course / "exercises", bare, execute=False)
    problems = check_site(bare, course / "chapters", require_plots=True)
    assert sorted(p.split()[0] for p in problems) == ["chapters/01_counting.html", "chapters/02_reading.html"]
    assert check_site(bare, course / "chapters") == []


# ---------------------------------------------------------------- errata

from vidlearn.site import ERRATA, ERRATA_MARKS, Erratum, errata_markdown, errata_source_problems  # noqa: E402


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


def test_errata_page_is_linked_from_the_index_and_links_chapter_sections(site):
    assert "errata.html" in _hrefs(site / "index.html")
    text = _text(site / "errata.html")
    # the made-up course has none of the real chapters: rows name their chapter, without a link
    for e in ERRATA:
        assert e.location in text
    assert "chapters/" not in "".join(_hrefs(site / "errata.html"))


def test_errata_rows_link_the_section_and_a_missing_heading_fails_the_build(tmp_path, course):
    row = Erratum("000_x.txt", (3,), "claims a thing", "the right thing", "a paper", "01_counting",
                  "Learning objectives")
    out = tmp_path / "site"
    build_site(course / "chapters", course / "exercises", out, execute=False, errata=[row])
    assert "chapters/01_counting.html#Learning-objectives" in re.findall(r'href="([^"]+)"', (out / "errata.html").read_text())
    assert check_site(out, course / "chapters") == []
    # a section link to an id the page does not have is a dead link
    page = out / "errata.html"
    page.write_text(page.read_text().replace("#Learning-objectives", "#No-such-section"))
    assert check_site(out, course / "chapters") == [
        "errata.html links chapters/01_counting.html#No-such-section: no such section"]
    # a heading the chapter does not have stops the build, naming the row
    bad = Erratum("000_x.txt", (3,), "c", "r", "e", "01_counting", "No such heading")
    with pytest.raises(SiteBuildError, match=r"000_x.txt:3: 01_counting.py has no heading 'No such heading'"):
        build_site(course / "chapters", course / "exercises", tmp_path / "other", execute=False, errata=[bad])
    # the index must link the errata
    index = out / "index.html"
    index.write_text(index.read_text().replace('href="errata.html"', 'href="index.html"'))
    assert "index.html does not link errata.html" in check_site(out, course / "chapters")
