"""The course site: Sphinx + MyST-NB + sphinx-book-theme, built from the Jupytext sources, then checked.

``build_site(root, out)`` (``vidlearn build-site``, ``make site``) does three steps:

1. **stage**: a source tree in a sibling folder of ``out``: the pages of ``docs/`` (not its
   ``conf.py``), ``chapters/NN_*.py`` and ``exercises/exNN_*.py`` copied as they are, ``overview.md``
   (the README's chapter table) and ``errata.md`` (:data:`vidlearn.errata.ERRATA`, each row linked to
   the chapter section that shows the correction);
2. **build** with Sphinx, configured by ``docs/conf.py``: warnings are errors, the chapters are
   executed (the exercises are not) and a failing cell stops the build with a
   :class:`SiteBuildError` naming the chapter, the cell and the line of its ``# %%``;
3. **check** the HTML as a reader meets it (:func:`check_site`); only a site that passes replaces
   ``out``, so a failed build leaves the previous site as it was.

Needs the ``site`` extra (``pip install -e '.[site]'``; ``make site`` installs it). Nothing is
fetched at build time: MathJax comes from the ``jupyter-server-mathjax`` package. :func:`check_site`
needs only the standard library.
"""

from __future__ import annotations

import re
import shutil
import sys
from html.parser import HTMLParser
from urllib.parse import unquote
from pathlib import Path
from typing import Callable

__all__ = ["CHAPTER_GLOB", "EXERCISE_GLOB", "SiteBuildError", "stage_sources", "readme_chapters", "errata_page",
           "failure_message", "read_percent", "build_site", "check_site"]

CHAPTER_GLOB = "[0-9][0-9]_*.py"
EXERCISE_GLOB = "ex[0-9][0-9]_*.py"
MARKER = ".vidlearn-site"  # written into every site folder; only such a folder is ever replaced


class SiteBuildError(RuntimeError):
    """The site could not be built; the message says which file (and cell) and why."""


# ---------------------------------------------------------------- staging the sources

def readme_chapters(readme: str) -> str:
    """The README's "## Chapters" section (its table and what follows up to the next section) as a page."""
    m = re.search(r"^## Chapters\s*$(.*?)(?=^## |\Z)", readme, re.M | re.S)
    if m is None:
        raise SiteBuildError("README.md has no '## Chapters' section")
    return "# The chapters at a glance\n" + m.group(1).rstrip() + "\n"


def errata_page(chapters: list[str]) -> str:
    """The errata page: :data:`vidlearn.errata.ERRATA`, each row linking the section of its chapter
    where that chapter is one of ``chapters`` (file stems) of the site. A heading that is not in
    the chapter is a dead link, which fails the build (Sphinx warns, and warnings are errors)."""
    from myst_parser.slugs import github_slugify  # the anchors MyST gives headings (myst_heading_anchors)

    from vidlearn.errata import errata_markdown

    def link(e) -> str | None:
        if e.chapter not in chapters:
            return None
        return f"chapters/{e.chapter}.py" + (f"#{github_slugify(e.section)}" if e.section is not None else "")

    return ("# Corrections to the source material\n\n"
            "The course was commissioned from five Chinese-language tutorials. These are the errors in them "
            "that the course corrects; each row says where, and links the chapter section that shows the "
            "correction.\n\n" + errata_markdown(link=link) + "\n")


def stage_sources(root: Path, src: Path) -> list[Path]:
    """Write the site's source tree for the course in ``root`` into ``src``; return the chapters staged."""
    root, src = Path(root), Path(src)
    chapters = sorted((root / "chapters").glob(CHAPTER_GLOB))
    if not chapters:
        raise SiteBuildError(f"no chapters match {CHAPTER_GLOB!r} in {root / 'chapters'}")
    for page in sorted((root / "docs").glob("*.md")):
        shutil.copyfile(page, src / page.name)
    for folder, files in (("chapters", chapters), ("exercises", sorted((root / "exercises").glob(EXERCISE_GLOB)))):
        (src / folder).mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copyfile(f, src / folder / f.name)
    (src / "overview.md").write_text(readme_chapters((root / "README.md").read_text(encoding="utf-8")),
                                     encoding="utf-8")
    (src / "errata.md").write_text(errata_page([c.stem for c in chapters]), encoding="utf-8")
    return chapters


# ---------------------------------------------------------------- a failing cell, named

def _cell_starts(source: Path) -> list[int]:
    return [i for i, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1) if line.startswith("# %%")]


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def failure_message(source: Path, report: str, shown: str | None = None) -> str:
    """``source`` (a Jupytext percent file) failed to execute; ``report`` is nbclient's error text
    (which quotes the failing cell's code between dashed lines and ends with the traceback). Say
    which cell, the line of its ``# %%``, and the error."""
    import jupytext

    shown = shown or str(source)
    text = _ANSI.sub("", report)
    quoted = re.search(r"\n-{10,}\n(.*?)\n-{10,}\n", text, re.S)
    after = text[quoted.end():] if quoted else text
    after = after.split("The above exception was the direct cause")[0]
    errors = re.findall(r"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)): ?(.*)$", after, re.M)
    what = f"{errors[-1][0]}: {errors[-1][1]}".rstrip(": ") if errors else "an error"
    where = "a cell"
    if quoted:
        cells = jupytext.read(source).cells
        starts = _cell_starts(source)
        for i, cell in enumerate(cells):
            if cell.cell_type == "code" and cell.source.strip() == quoted.group(1).strip():
                where = f"cell {i + 1}" + (f" (the '# %%' at line {starts[i]})" if len(starts) == len(cells) else "")
                break
    detail = text[text.find("An error occurred"):] if "An error occurred" in text else text
    return f"{shown}: {where} failed: {what}\n\n{detail.split('The above exception was the direct cause')[0].strip()}"


def _execution_failure(err: BaseException) -> str | None:
    """The message for a build stopped by a chapter's cell, or None when ``err`` is something else.
    myst-nb raises ``ExecutionError(path)`` from nbclient's error; a parallel build passes on only
    the text of the traceback (``SphinxParallelError``), so both are read as text."""
    import traceback

    text = getattr(err, "traceback", None) or "".join(traceback.format_exception(err))
    m = re.search(r"ExecutionError: (\S+\.py)\s*$", text, re.M)
    if m is None:
        return None
    staged = Path(m.group(1))
    return failure_message(staged, text, shown=f"{staged.parent.name}/{staged.name}")


def read_percent(text: str):
    """A Jupytext percent file as a notebook for MyST-NB (``nb_custom_formats`` in docs/conf.py): a
    Python 3 notebook, so that an exercise, which is not executed, is highlighted as Python too."""
    import jupytext

    nb = jupytext.reads(text, fmt="py:percent")
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    nb.metadata.setdefault("language_info", {"name": "python", "pygments_lexer": "ipython3"})
    return nb


# ---------------------------------------------------------------- the build

def _check_replaceable(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise SiteBuildError(f"{out} exists and is not a site built by vidlearn: not replacing it")


def build_site(root: Path, out: Path, *, jobs: int = 1, quiet: bool = False,
               progress: Callable[[str], None] | None = None) -> Path:
    """Build the course in ``root`` into ``out`` (replacing a site built there before), check it,
    and return its ``index.html``. ``jobs``: documents read (chapters executed) in parallel."""
    root, out = Path(root).resolve(), Path(out).resolve()
    say = progress or (lambda message: None)
    _check_replaceable(out)  # before minutes of execution, not after

    from sphinx.application import Sphinx
    from sphinx.util.docutils import docutils_namespace, patch_docutils

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    src, html = staging / "src", staging / "html"
    src.mkdir(parents=True)
    try:
        chapters = stage_sources(root, src)
        say(f"staged {len(chapters)} chapters in {src}; building with Sphinx")
        confdir = root / "docs"
        quiet_stream = open("/dev/null", "w") if quiet else sys.stderr
        try:
            with patch_docutils(confdir), docutils_namespace():
                app = Sphinx(str(src), str(confdir), str(html), str(staging / "doctrees"), "html",
                             status=quiet_stream, warning=sys.stderr, freshenv=True,
                             warningiserror=True, parallel=jobs)
                app.build(force_all=True)
                status = app.statuscode
        except Exception as err:  # a cell that raised, a warning turned error, a broken config
            message = _execution_failure(err)
            raise SiteBuildError(message or f"Sphinx stopped: {type(err).__name__}: {err}") from err
        finally:
            if quiet:
                quiet_stream.close()
        if status:
            raise SiteBuildError(f"Sphinx reported warnings (they are errors here), exit status {status}")
        problems = check_site(html, [c.stem for c in chapters])
        if problems:
            raise SiteBuildError("the built site fails its check:\n  " + "\n  ".join(problems))
        (html / MARKER).write_text("a course site built by `vidlearn build-site`; rebuilt as a whole\n")
        if out.exists():
            shutil.rmtree(out)
        html.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out / "index.html"


# ---------------------------------------------------------------- checking a built site

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*:", re.I)


class _Page(HTMLParser):
    """The links, resources, ids and images of one HTML page."""

    def __init__(self):
        super().__init__()
        self.links: list[str] = []  # every href / src
        self.loads: list[str] = []  # what the browser fetches by itself: scripts, styles, images, fonts, frames
        self.ids: set[str] = set()
        self.images: list[dict] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.ids |= {v for k, v in attrs if k in ("id", "name") and v}
        self.links += [v for k, v in attrs if k in ("href", "src") and v]
        if tag in ("script", "img", "iframe", "source", "video", "audio", "embed") and a.get("src"):
            self.loads.append(a["src"])
        if tag == "link" and a.get("href") and set((a.get("rel") or "").lower().split()) & {
                "stylesheet", "preload", "icon", "modulepreload", "prefetch"}:
            self.loads.append(a["href"])
        if tag == "img":
            self.images.append(a)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)


def _parse(page: Path) -> _Page:
    parser = _Page()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def _css_urls(css: str) -> list[str]:
    return [u.strip("'\" ") for u in re.findall(r"url\(([^)]*)\)", css)] + re.findall(r"@import\s+['\"]([^'\"]+)", css)


def check_site(site: Path, chapters: list[str]) -> list[str]:
    """What is wrong with the built site in ``site`` (empty: nothing), given the chapter names
    (file stems, e.g. ``01_scaled_dot_product_attention``):

    - every chapter has a page ``chapters/<name>.html`` reachable from ``index.html`` by links;
    - every chapter page shows at least one figure, and every image has alt text;
    - every local link or resource of every page leads to a file of the site, and a link to a
      section of another page (``page.html#id``) to an element with that id;
    - nothing is loaded from outside the site: no script, style sheet, font, image or frame from
      an ``http(s):`` or protocol-relative address, in a page or in a style sheet.
    """
    site, problems = Path(site), []
    index = site / "index.html"
    if not index.is_file():
        return [f"{index} is missing"]
    pages = {p: _parse(p) for p in sorted(site.rglob("*.html"))
             if not {"_static", "_sources", "_images"} & set(p.relative_to(site).parts[:-1])}

    reachable, todo = set(), [index]
    while todo:
        page = todo.pop()
        if page in reachable or page not in pages:
            continue
        reachable.add(page)
        for link in pages[page].links:
            if _SCHEME.match(link) or link.startswith(("#", "//")):
                continue
            target = (page.parent / unquote(link.split("#")[0].split("?")[0])).resolve()
            if target.is_dir():
                target = target / "index.html"
            todo.append(target)
    reachable = {p.resolve() for p in reachable}
    for name in chapters:
        page = site / "chapters" / f"{name}.html"
        if not page.is_file():
            problems.append(f"chapter {name} has no page (chapters/{name}.html)")
            continue
        if page.resolve() not in reachable:
            problems.append(f"chapters/{name}.html is not reachable from index.html")
        figures = [img for img in pages[page].images if "_images/" in (img.get("src") or "")
                   or (img.get("src") or "").startswith("data:image/")]
        if not figures:
            problems.append(f"chapters/{name}.html shows no figure: were its cells executed?")

    for page, parsed in pages.items():
        rel = page.relative_to(site)
        for img in parsed.images:
            if not (img.get("alt") or "").strip():
                problems.append(f"{rel}: an image without alt text ({img.get('src', '')[:60]})")
        for link in parsed.loads:
            if link.startswith("//") or re.match(r"https?:", link, re.I):
                problems.append(f"{rel} loads {link} from outside the site")
        for link in parsed.links:
            if _SCHEME.match(link) or link.startswith(("#", "//")):
                continue
            path, _, fragment = link.partition("#")
            path = unquote(path.split("?")[0])
            target = page.parent / path if path else page
            if not target.exists():
                problems.append(f"{rel} links {link}, which does not exist")
            elif fragment and target.suffix == ".html" and target.is_file():
                ids = pages[target].ids if target in pages else _parse(target).ids
                if fragment not in ids:
                    problems.append(f"{rel} links {link}: no such section")
    for css in sorted(site.rglob("*.css")):
        for url in _css_urls(css.read_text(encoding="utf-8", errors="replace")):
            if url.startswith("//") or re.match(r"https?:", url, re.I):
                problems.append(f"{css.relative_to(site)} loads {url} from outside the site")
    return problems
