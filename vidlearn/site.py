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
           "failure_message", "failing_cells", "read_percent", "build_site", "check_site", "LOADS"]

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


def _executed_cells(cells) -> list[int]:
    """The indexes of the cells nbclient runs, in order: the code cells with code in them and no
    ``skip-execution`` tag. In a fresh kernel the k-th of them gets execution count k (``In[k]``)."""
    return [i for i, c in enumerate(cells) if c.cell_type == "code" and c.source.strip()
            and "skip-execution" not in c.metadata.get("tags", [])]


def failing_cells(cells, report: str) -> list[int]:
    """The indexes (0-based) of the cells of ``cells`` that may be the one nbclient's error text
    ``report`` is about: one index when it is known, several when it is not, none when no cell fits.

    The error quotes the failing cell's code, and IPython's traceback names the execution count of
    every cell it passes through (``Cell In[4], line 1``; ``Input In [4]`` in older IPython). A cell
    is the failing one when its code is the quoted code (if any is quoted) and its execution count
    is named in the traceback (if any is named); the source text alone is not enough, as two cells
    may hold the same code."""
    text = _ANSI.sub("", report)
    quoted = re.search(r"\n-{10,}\n(.*?)\n-{10,}\n", text, re.S)
    after = text[quoted.end():] if quoted else text
    counts = [int(n) for n in re.findall(r"\b(?:Cell In|Input In) ?\[(\d+)\]", after)]
    executed = _executed_cells(cells)
    by_count = {k: i for k, i in enumerate(executed, 1)}
    candidates = executed
    if quoted:
        candidates = [i for i in candidates if cells[i].source.strip() == quoted.group(1).strip()]
    if counts:
        named = [by_count[k] for k in dict.fromkeys(counts) if k in by_count]
        if quoted:
            return [i for i in candidates if i in named] or candidates
        return named[:1]  # the outermost frame, the cell that was running
    return candidates if quoted else []


def failure_message(source: Path, report: str, shown: str | None = None) -> str:
    """``source`` (a Jupytext percent file) failed to execute; ``report`` is nbclient's error text
    (which quotes the failing cell's code between dashed lines and ends with the traceback). Say
    which cell (:func:`failing_cells`), the line of its ``# %%``, and the error."""
    shown = shown or str(source)
    text = _ANSI.sub("", report)
    quoted = re.search(r"\n-{10,}\n(.*?)\n-{10,}\n", text, re.S)
    after = text[quoted.end():] if quoted else text
    after = after.split("The above exception was the direct cause")[0]
    errors = re.findall(r"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)): ?(.*)$", after, re.M)
    what = f"{errors[-1][0]}: {errors[-1][1]}".rstrip(": ") if errors else "an error"
    cells = read_percent(source.read_text(encoding="utf-8")).cells
    starts = _cell_starts(source)

    def name(i: int) -> str:
        return f"cell {i + 1}" + (f" (the '# %%' at line {starts[i]})" if len(starts) == len(cells) else "")

    found = failing_cells(cells, report.split("The above exception was the direct cause")[0])
    if len(found) == 1:
        where = name(found[0])
    elif found:
        where = "one of " + ", ".join(name(i) for i in found) + " (the same code; which one is not known)"
    else:
        where = "a cell"
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
_INLINE = ("data:", "blob:", "about:", "javascript:")  # no fetch from anywhere

# What a browser fetches by itself, as (tag, attribute) pairs; "*" is any tag. A <link> loads what
# its href names unless every one of its rel words is a link to follow (below).
LOADS = {("script", "src"), ("img", "src"), ("img", "srcset"), ("source", "src"), ("source", "srcset"),
         ("iframe", "src"), ("frame", "src"), ("embed", "src"), ("object", "data"), ("video", "src"),
         ("video", "poster"), ("audio", "src"), ("track", "src"), ("input", "src"), ("link", "href"),
         ("link", "imagesrcset"), ("image", "href"), ("image", "xlink:href"), ("use", "href"),
         ("use", "xlink:href"), ("feimage", "href"), ("feimage", "xlink:href"), ("*", "background")}
_SRCSETS = {"srcset", "imagesrcset"}
_NAVIGATION_RELS = {"alternate", "author", "bookmark", "canonical", "external", "first", "help", "index",
                    "last", "license", "me", "next", "nofollow", "noopener", "noreferrer", "prev", "search",
                    "tag", "up"}


def _clean(url: str) -> str:
    r"""``url`` as a browser reads it: surrounding blanks dropped, tabs and newlines removed, ``\`` as ``/``."""
    return re.sub(r"[\t\n\r]", "", url.strip(" \t\n\r\f\v\x00")).replace("\\", "/")


def _outside(url: str) -> bool:
    """Whether loading ``url`` fetches from another host: ``http(s):``, ``//host/...`` or any scheme
    but an inline one (``data:``...)."""
    url = _clean(url)
    return url.startswith("//") or (bool(_SCHEME.match(url)) and not url.lower().startswith(_INLINE))


def _srcset(value: str) -> list[str]:
    """The addresses of a ``srcset`` (as HTML parses it: an address, then descriptors up to a comma)."""
    urls, pos = [], 0
    while pos < len(value):
        m = re.compile(r"[\s,]*(\S*)").match(value, pos)
        url, pos = m.group(1), m.end()
        if not url:
            break
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            comma = value.find(",", pos)
            pos = len(value) if comma < 0 else comma + 1
        urls.append(url)
    return [u for u in urls if u]


_JS_LOADS = re.compile(r"""\bimport\s*(?:[\w*${}\s,]+?\s*from\s*)?\(?\s*(['"`])([^'"`\n]*)\1"""
                       r"""|\bimportScripts\s*\(\s*(['"`])([^'"`\n]*)\3""")


def _js_urls(js: str) -> list[str]:
    """The addresses a script names in a static ``import ... from "..."``, ``import "..."``,
    ``import("...")`` or ``importScripts("...")``, each with a literal string."""
    return [m.group(2) if m.group(1) else m.group(4) for m in _JS_LOADS.finditer(js)]


def _css_urls(css: str) -> list[str]:
    r"""The addresses a style sheet loads: ``url(...)``, ``@import "..."`` and the strings of an
    ``image-set(...)``. (CSS escapes in a function's name, e.g. ``u\72l(``, are not decoded.)"""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    urls = [m.group(2) for m in re.finditer(r"""url\(\s*(['"]?)(.*?)\1\s*\)""", css, re.I | re.S)]
    urls += [m.group(2) for m in re.finditer(r"""@import\s+(['"])(.*?)\1""", css, re.I)]
    for m in re.finditer(r"image-set\(([^)]*)\)", css, re.I):
        urls += [u for _, u in re.findall(r"""(['"])(.*?)\1""", m.group(1))]
    return [u.strip() for u in urls if u.strip()]


class _Page(HTMLParser):
    """The links, loads, ids and images of one HTML page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []  # every address to follow or fetch: href, src, data, poster, srcset, CSS url()
        self.loads: list[str] = []  # what the browser fetches by itself (:data:`LOADS`, style sheets, scripts)
        self.ids: set[str] = set()
        self.images: list[dict] = []
        self.bases: list[str] = []  # <base href>
        self._in: str | None = None  # "style" or "script" while in one

    def _load(self, url: str) -> None:
        self.loads.append(url)
        self.links.append(url)

    def handle_starttag(self, tag, attrs):
        a = {k: v for k, v in attrs if v is not None}
        self.ids |= {v for k, v in a.items() if k in ("id", "name") and v}
        if tag == "base" and "href" in a:
            self.bases.append(a["href"])
        rels = set((a.get("rel") or "").lower().split())
        for k, v in a.items():
            if not v.strip():
                continue
            if (tag, k) in LOADS or ("*", k) in LOADS:
                if tag == "link" and k == "href" and rels and rels <= _NAVIGATION_RELS:
                    self.links.append(v)  # a link to follow: checked to exist, not as a load
                elif k in _SRCSETS:
                    for url in _srcset(v):
                        self._load(url)
                else:
                    self._load(v)
            elif k in ("href", "src"):
                self.links.append(v)
            elif k == "style":
                for url in _css_urls(v):
                    self._load(url)
            elif tag == "iframe" and k == "srcdoc":
                inner = _Page()
                inner.feed(v)
                inner.close()
                self.loads += inner.loads
                self.bases += inner.bases
        if tag == "img":
            self.images.append(a)
        if tag in ("style", "script"):
            self._in = tag

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag in ("style", "script"):
            self._in = None

    def handle_endtag(self, tag):
        if tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._in == "style":
            for url in _css_urls(data):
                self._load(url)
        elif self._in == "script":
            self.loads += _js_urls(data)


def _parse(page: Path) -> _Page:
    parser = _Page()
    parser.feed(page.read_text(encoding="utf-8"))
    parser.close()
    return parser


def _local(link: str) -> bool:
    link = _clean(link)
    return bool(link) and not (_SCHEME.match(link) or link.startswith(("#", "//")))


def _target(base: Path, link: str) -> tuple[Path, str]:
    """The file a local ``link`` made in the folder ``base`` names (resolved), and its fragment."""
    path, _, fragment = _clean(link).partition("#")
    path = unquote(path.split("?")[0])
    return (base / path).resolve(), fragment  # an absolute path ("/etc/x") stays one: outside the site


def check_site(site: Path, chapters: list[str]) -> list[str]:
    """What is wrong with the built site in ``site`` (empty: nothing), given the chapter names
    (file stems, e.g. ``01_scaled_dot_product_attention``):

    - every chapter has a page ``chapters/<name>.html`` reachable from ``index.html`` by links;
    - every chapter page shows at least one figure, and every image has alt text;
    - every local link or load of every page (and every ``url()`` of a style sheet) leads to a file
      inside the site folder (not only to one that exists on this machine), and a link to a section
      of another page (``page.html#id``) to an element with that id;
    - nothing is loaded from outside the site: no address with a scheme (``http(s):``...; not
      ``data:``) or protocol-relative (``//host/...``) in what a browser fetches by itself: the
      (tag, attribute) pairs of :data:`LOADS` (``<script src>``, ``<img src|srcset>``, ``<iframe src>``,
      ``<object data>``, ``<video poster>``, a ``<link href>`` whose rel is not only a link to follow
      ...), the ``url()``, ``@import`` and ``image-set()`` of every ``.css`` file, ``<style>`` element
      and ``style`` attribute; and no ``<base href>`` at all (it redirects every relative address);
    - scripts (``.js`` files and ``<script>`` elements) load nothing from outside by a static
      ``import ... from "..."``, ``import "..."``, ``import("...")`` or ``importScripts("...")``
      with a literal address. A script that builds an address at run time (``fetch``, a computed
      ``import()``, a ``<script>`` element it creates) is not detected: this is not a JavaScript
      analysis, and the site's scripts are the theme's and MathJax's, installed, not written here.
    """
    site, problems = Path(site).resolve(), []
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
            if not _local(link):
                continue
            target, _ = _target(page.parent, link)
            if target.is_dir():
                target = target / "index.html"
            todo.append(target)
    for name in chapters:
        page = site / "chapters" / f"{name}.html"
        if not page.is_file():
            problems.append(f"chapter {name} has no page (chapters/{name}.html)")
            continue
        if page not in reachable:
            problems.append(f"chapters/{name}.html is not reachable from index.html")
        figures = [img for img in pages[page].images if "_images/" in (img.get("src") or "")
                   or (img.get("src") or "").startswith("data:image/")]
        if not figures:
            problems.append(f"chapters/{name}.html shows no figure: were its cells executed?")

    def outside(rel, links: list[str]) -> None:
        for url in dict.fromkeys(links):
            if _outside(url):
                problems.append(f"{rel} loads {url} from outside the site")

    def inside(rel, base: Path, links: list[str], pages_ids: bool) -> None:
        for link in dict.fromkeys(links):
            if not _local(link):
                continue
            target, fragment = _target(base, link) if _clean(link).partition("#")[0] else (None, "")
            if target is None:
                continue  # "#id" or "?q" on the same page
            if not target.is_relative_to(site):
                problems.append(f"{rel} links {link}, which leads outside the site")
            elif not target.exists():
                problems.append(f"{rel} links {link}, which does not exist")
            elif pages_ids and fragment and target.suffix == ".html" and target.is_file():
                ids = pages[target].ids if target in pages else _parse(target).ids
                if fragment not in ids:
                    problems.append(f"{rel} links {link}: no such section")

    for page, parsed in pages.items():
        rel = page.relative_to(site)
        for img in parsed.images:
            if not (img.get("alt") or "").strip():
                problems.append(f"{rel}: an image without alt text ({img.get('src', '')[:60]})")
        for base in parsed.bases:
            problems.append(f'{rel} has <base href="{base}">, which redirects every relative address'
                            + (" to outside the site" if _outside(base) else ""))
        outside(rel, parsed.loads)
        inside(rel, page.parent, parsed.links, True)
    for css in sorted(site.rglob("*.css")):
        urls = _css_urls(css.read_text(encoding="utf-8", errors="replace"))
        outside(css.relative_to(site), urls)
        inside(css.relative_to(site), css.parent, urls, False)
    for js in sorted(site.rglob("*.js")):
        outside(js.relative_to(site), _js_urls(js.read_text(encoding="utf-8", errors="replace")))
    return problems
