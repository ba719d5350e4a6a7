"""The course site: every chapter executed and rendered to one HTML page, every exercise beside it.

``build_site(chapters_dir, exercises_dir, out)`` writes a static folder that needs no server and,
where the optional ``jupyter-server-mathjax`` package is installed, no network either::

    index.html                  course title, one entry per chapter: title, objectives, links
    errata.html                 the errors of the source material the course corrects (:data:`ERRATA`),
                                each linked to the chapter section that shows the correction
    site.css                    the site's own look, on top of JupyterLab's notebook CSS
    chapters/NN_name.html       the chapter, executed: outputs and plots (base64 PNG) inline
    exercises/exNN_name.html    the exercise, not executed (it is the student's to run)
    exercises/exNN_name.py      ... and its source, to download (Jupytext percent format)
    exercises/exNN_name.ipynb   ... and the same as a notebook
    mathjax/                    MathJax 2, copied from jupyter-server-mathjax (else: a CDN)

Chapters are executed with nbclient on the ``python3`` kernel, in ``cwd`` (the course root, so
relative paths in a chapter work as they do under ``make test-notebooks``); a cell that raises
fails the whole build with a :class:`SiteBuildError` naming the chapter, the cell and its line.
The site is built in a sibling folder and moved into place only when every page is written, so
a failed build leaves the previous site as it was. Apart from what the chapters print and plot,
the output is the same on every run (cell ids are fixed, files are written in sorted order).

The tool is nbconvert's HTML exporter with its ``lab`` template, not Jupyter Book 2: JB2's
mystmd downloads its site theme from api.mystmd.org at build time, so it cannot build offline.
"""

from __future__ import annotations

import posixpath
from html.parser import HTMLParser
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import jinja2
import jupytext
import markupsafe
import nbformat

__all__ = [
    "COURSE_TITLE",
    "CHAPTER_GLOB",
    "Chapter",
    "Erratum",
    "ERRATA",
    "errata_markdown",
    "ERRATA_MARKS",
    "errata_source_problems",
    "SiteBuildError",
    "read_chapter",
    "find_chapters",
    "execute_notebook",
    "build_site",
    "check_site",
]

COURSE_TITLE = "vidlearn — attention for video"
COURSE_SUBTITLE = "An open, auto-graded notebook course. Every claim in a chapter is checked by the code under it."
CHAPTER_GLOB = "[0-9][0-9]_*.py"
KERNEL = "python3"
MARKER = ".vidlearn-site"  # written into every site folder; only such a folder is ever replaced
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"
MATHJAX_CDN = f"https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.9/MathJax.js?config={MATHJAX_CONFIG}"


class SiteBuildError(RuntimeError):
    """The site could not be built; the message says which file (and cell) and why."""


# ---------------------------------------------------------------- reading a chapter

@dataclass(frozen=True)
class Chapter:
    source: Path
    number: int
    title: str  # without the "Chapter N —" prefix
    intro: str  # markdown: the first paragraph after the title
    objectives: str  # markdown: the "Learning objectives" section (lead-in and list), or ""
    exercise: Path | None  # exercises/exNN_*.py, where there is one

    @property
    def href(self) -> str:
        return f"chapters/{self.source.stem}.html"


_TITLE = re.compile(r"^#\s+(?:Chapter\s+(\d+)\s*[—–:.-]+\s*)?(.+?)\s*$")
_HEADING = re.compile(r"^#{1,6}\s")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s")


def _leading_markdown(nb) -> str:
    parts = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            break
        if cell.cell_type == "markdown":
            parts.append(cell.source)
    return "\n\n".join(parts)


def _objectives(lines: list[str]) -> str:
    start = next((i for i, line in enumerate(lines) if _HEADING.match(line) and "objective" in line.lower()), None)
    if start is None:
        return ""
    kept: list[str] = []
    seen_item = False
    for i, line in enumerate(lines[start + 1:], start + 1):
        if _HEADING.match(line):
            break
        if not line.strip():
            following = next((x for x in lines[i + 1:] if x.strip()), "")
            if seen_item and not (_LIST_ITEM.match(following) or following.startswith((" ", "\t"))):
                break  # the list is over: what follows is prose, not objectives
        seen_item = seen_item or bool(_LIST_ITEM.match(line))
        kept.append(line)
    return "\n".join(kept).strip()


def read_chapter(path: Path, exercises_dir: Path | None = None) -> Chapter:
    """Title, number, first paragraph and learning objectives of the chapter at ``path``."""
    nb = jupytext.read(path)
    lines = _leading_markdown(nb).splitlines()
    heading = next((i for i, line in enumerate(lines) if line.startswith("# ")), None)
    if heading is None:
        raise SiteBuildError(f"{path}: a chapter opens with a '# Chapter N — Title' heading")
    m = _TITLE.match(lines[heading])
    digits = re.match(r"\d+", path.name)
    number = int(m.group(1) or (digits.group(0) if digits else 0))
    intro: list[str] = []
    for line in lines[heading + 1:]:
        if _HEADING.match(line) or (not line.strip() and intro):
            break
        if line.strip():
            intro.append(line)
    exercise = None
    if exercises_dir is not None and digits:
        found = sorted(exercises_dir.glob(f"ex{digits.group(0)}_*.py"))
        exercise = found[0] if found else None
    return Chapter(path, number, m.group(2), "\n".join(intro), _objectives(lines), exercise)


def find_chapters(chapters_dir: Path, exercises_dir: Path | None = None, pattern: str = CHAPTER_GLOB) -> list[Chapter]:
    paths = sorted(p for p in Path(chapters_dir).glob(pattern) if p.is_file() and p.suffix == ".py")
    if not paths:
        raise SiteBuildError(f"no chapters match {pattern!r} in {chapters_dir}")
    return [read_chapter(p, exercises_dir) for p in paths]


# ---------------------------------------------------------------- errata

@dataclass(frozen=True)
class Erratum:
    """One error of the source material (``../shared/seeds/``) and where the course corrects it.

    ``seed`` and ``lines`` locate the claim in the seed file (1-based lines); ``claim`` is what it
    says, paraphrased in English; ``correct`` what is right; ``evidence`` the paper (and section)
    or the course's own check; ``chapter`` the chapter file's stem and ``section`` the heading
    (as written in the chapter, without the ``#``) under which the chapter shows the correction,
    or None where the chapter does not show it yet.
    """

    seed: str
    lines: tuple[int, ...]
    claim: str
    correct: str
    evidence: str
    chapter: str
    section: str | None

    @property
    def location(self) -> str:
        return f"{self.seed}:" + ",".join(str(n) for n in self.lines)


ERRATA: tuple[Erratum, ...] = (
    Erratum(
        "000_3199cb540fa88f29.txt", (40,),
        "The sinusoidal position encoding divides the position by 1000^(2i/d).",
        "The base is 10000 (Vaswani et al. 2017, §3.5). With base 1000 the slowest wavelength for d = 512 "
        "is 6,116 positions instead of 60,611: a different encoding, not the Transformer's.",
        "Vaswani et al., arXiv 1706.03762, §3.5; chapter 2 computes both wavelengths and asserts them to the position.",
        "02_positional_encoding", "The base is 10000 — not 1000"),
    Erratum(
        "000_3199cb540fa88f29.txt", (25,),
        "Dividing by √d_k is there to prevent vanishing gradients (no mechanism given).",
        "Imprecise rather than false: dividing by √d_k keeps the variance of a logit q·k at 1 (it is d_k "
        "unscaled), so that the softmax does not saturate; a saturated softmax has a Jacobian diag(p) − ppᵀ "
        "near zero, which starves the gradient to the logits. It is the softmax's own gradient, not the "
        "depth-wise vanishing gradient the phrase usually means (seed 004, line 124, names the mechanism: "
        "dot products that grow too large).",
        "Vaswani et al., arXiv 1706.03762, §3.2.1 (footnote 4); chapter 1 derives Var(q·k) = d_k (§2), and "
        "measures the Jacobian vanishing as the logits grow and the gradient the logits receive (§3).",
        "01_scaled_dot_product_attention", "3. The softmax Jacobian, and why saturation starves the logits"),
    Erratum(
        "000_3199cb540fa88f29.txt", (85,),
        "A learned position table of 1000 rows (commented \"assume at most 1000 frames\") is sliced to the "
        "clip length with pos_encoding[:, :T] and added to the frames.",
        "The limit is assumed but never checked: at T > 1000 the slice silently has 1000 rows, and the next "
        "line, x + pos, fails with an opaque broadcasting error instead of naming the limit. A learned table "
        "cannot serve clips longer than itself: check the length and say so.",
        "Chapter 2 runs the pattern at T = 1200, asserts that the addition raises torch's broadcasting "
        "RuntimeError, and shows the library's ValueError that names the limit.",
        "02_positional_encoding", "5. Learned encodings and their length limit"),
    Erratum(
        "000_3199cb540fa88f29.txt", (66,),
        "FLAVA is a Google model whose temporal attention follows video frames before it meets the text.",
        "FLAVA is Meta AI's (FAIR) image–text foundation model: image and text encoders and a multimodal "
        "encoder over their concatenated hidden states. No video input, no temporal attention.",
        "Singh et al., \"FLAVA: A Foundational Language And Vision Alignment Model\", CVPR 2022, arXiv 2112.04482.",
        "06_cross_modal_fusion", "Chapter 6 — Cross-modal fusion and VideoBERT"),
    Erratum(
        "002_ce2eb6c9d0177072.txt", (84,),
        "ViViT Model 2 (factorised encoder) makes one spatial CLS token per patch.",
        "The spatial encoder runs once per temporal index, over that index's n_h·n_w tokens plus one CLS; "
        "the temporal encoder reads the n_t CLS outputs: one spatial CLS per temporal index.",
        "Arnab et al., ViViT, arXiv 2103.15691, §3.3 (Model 2); chapter 5 checks the shapes of the spatial "
        "encoder's output.",
        "05_vivit_variants", "3. Model 2: the factorised encoder (one CLS per temporal index)"),
    Erratum(
        "002_ce2eb6c9d0177072.txt", (48,),
        "Model 2 (factorised encoder) is the best of the four ViViT variants.",
        "It depends on the data set: on Kinetics-400 Model 1 (joint attention) is best, 80.0 % top-1 against "
        "78.8 % for Model 2; Model 2 is best on Epic-Kitchens.",
        "Arnab et al., ViViT, arXiv 2103.15691, Table 2 (the K400 column is the course's PAPER_TABLE_2, "
        "asserted in chapter 5).",
        "05_vivit_variants", "8. Training on a task that needs time"),
    Erratum(
        "003_fc3326cf66a0941d.txt", (61, 62, 63),
        "LXMERT's 9-layer text encoder and 5-layer vision encoder contain cross-attention, and its 5 "
        "cross-modality layers alternate text→vision and vision→text.",
        "The 9 language and 5 object-relationship layers are single-modality encoders: self-attention and "
        "feed-forward only. Each of the 5 cross-modality layers runs cross-attention in both directions at "
        "once, then self-attention, then a feed-forward sub-layer, per modality.",
        "Tan & Bansal, LXMERT, EMNLP 2019, arXiv 1908.07490, §2.2 and the implementation details "
        "(N_L, N_R, N_X = 9, 5, 5); chapter 6 builds the layout and checks with "
        "Jacobians that the single-modality outputs do not depend on the other modality.",
        "06_cross_modal_fusion", "LXMERT, layer by layer"),
    Erratum(
        "003_fc3326cf66a0941d.txt", (47,),
        "Single-stream models cost more, because their self-attention covers pairs within and across modalities.",
        "Not as a rule. An LXMERT-style co-attention block (cross-attention, then self-attention and MLP per "
        "stream, as the course's CoAttentionBlock) costs 4(n_x + n_v)d² MACs more than a single-stream block; "
        "ViLBERT's co-TRM (cross-attention and MLP per stream, no self-attention) costs 2(n_x² + n_v²)d MACs "
        "less than a single-stream block (ViLBERT attends within a modality in separate TRM layers). A "
        "single-stream layer costs 4·n_x·n_v·d more than a text-only plus a video-only layer, which fuse "
        "nothing.",
        "The course's formulas (vidlearn.flops, equal to torch's FLOP counter) and derivations "
        "ch06.two_stream_overhead and ch06.joint_minus_separate; chapter 6 counts the co-TRM from the same "
        "formulas (cross-attentions plus MLPs) and checks the difference symbolically.",
        "06_cross_modal_fusion", "What each costs"),
    Erratum(
        "004_823b7b4fb6ac725f.txt", (19, 39),
        "VideoBERT is a two-stream model: a video transformer and a text transformer joined by cross-attention.",
        "VideoBERT is one BERT over one sequence, [CLS] text [>] visual words [SEP], whose visual words are "
        "hierarchical-k-means codes of S3D clip features; every layer is ordinary self-attention over both.",
        "Sun et al., VideoBERT, ICCV 2019, arXiv 1904.01766, §3.2; chapter 6 builds it and checks that it has "
        "no cross-attention module.",
        "06_cross_modal_fusion", "4. VideoBERT as it really is"),
)


# A few characters of each quoted seed line that identify the claim (the seeds are Chinese): what
# `vidlearn check-errata` looks for, so that a row cannot point at a line that says something else.
ERRATA_MARKS: dict[str, tuple[str, ...]] = {
    "000_3199cb540fa88f29.txt:40": ("1000^{2i/d}",),
    "000_3199cb540fa88f29.txt:25": ("d_k", "梯度消失"),
    "000_3199cb540fa88f29.txt:85": ("torch.randn(1, 1000, d_model)", "假设最大帧数1000", "[:, :T, :]",
                                    "x_with_pos = x + pos"),
    "000_3199cb540fa88f29.txt:66": ("Google", "FLAVA"),
    "002_ce2eb6c9d0177072.txt:84": ("一个patch生成一个空间分类token",),
    "002_ce2eb6c9d0177072.txt:48": ("Factorised Encoder", "最好"),
    "003_fc3326cf66a0941d.txt:61,62,63": ("9层", "5层", "交替"),
    "003_fc3326cf66a0941d.txt:47": ("计算成本较高",),
    "004_823b7b4fb6ac725f.txt:19,39": ("双流", "交叉注意力"),
}


def errata_source_problems(seeds: Path, errata=ERRATA) -> list[str]:
    """Check each erratum against the seed material in ``seeds``: its quoted lines must contain
    the row's :data:`ERRATA_MARKS`. Returns the problems (empty when every row holds).

    One row says more than its marks: the 1000-row table (``000…:85``) fails at the statement right
    after the slice, so between ``[:, :T, :]`` and ``x_with_pos = x + pos`` there must be only a comment.
    """
    seeds = Path(seeds)
    if not seeds.is_dir():
        return [f"no seed material at {seeds}"]
    problems = []
    for e in errata:
        marks = ERRATA_MARKS.get(e.location)
        if marks is None:
            problems.append(f"{e.location}: no marks to check it by (add them to ERRATA_MARKS)")
            continue
        path = seeds / e.seed
        if not path.is_file():
            problems.append(f"{e.location}: {path} is missing")
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        if max(e.lines) > len(lines):
            problems.append(f"{e.location}: the file has {len(lines)} lines")
            continue
        quoted = "\n".join(lines[n - 1] for n in e.lines)
        problems += [f"{e.location} does not say {m!r}" for m in marks if m not in quoted]
        if e.location == "000_3199cb540fa88f29.txt:85" and all(m in quoted for m in marks):
            between = quoted[quoted.index("[:, :T, :]"):quoted.index("x_with_pos = x + pos")]
            if not re.fullmatch(r"\[:, :T, :\]\.to\(device\)\s*#[^=]*", between):
                problems.append(f"{e.location}: more than a comment between the slice and `x + pos`: {between!r}")
    return problems


def errata_markdown(errata=ERRATA) -> str:
    """The errata as the Markdown table of the README's "Corrections to common material" section."""
    rows = ["| source (seed file:line) | it says (paraphrased) | what is right | evidence | where the course shows it |",
            "|---|---|---|---|---|"]
    for e in errata:
        number = int(e.chapter[:2]) if e.chapter[:2].isdigit() else e.chapter
        where = f"[chapter {number}](chapters/{e.chapter}.py)"
        where += f", “{e.section}”" if e.section is not None else " (correction not shown yet)"
        cells = [f"`{e.location}`", e.claim, e.correct, e.evidence, where]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows)


def _heading_ids(markdown: str) -> dict[str, str]:
    """Heading text -> the ``id`` nbconvert gives it on a chapter page."""
    from nbconvert.filters.markdown import markdown2html

    out = {}
    for line in markdown.splitlines():
        m = re.match(r"^#{1,6}\s+(.+?)\s*$", line)
        if m:
            found = re.search(r'<h[1-6] id="([^"]+)"', markdown2html(line))
            if found:
                out[m.group(1)] = found.group(1)
    return out


def _chapter_headings(chapter: Path) -> dict[str, str]:
    nb = jupytext.read(chapter)
    return _heading_ids("\n".join(c.source for c in nb.cells if c.cell_type == "markdown"))


ERRATA_TEMPLATE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>Errata — {{ course }}</title>
{{ mathjax | safe }}
<link rel="stylesheet" href="site.css">
</head>
<body class="vl-index">
<main>
<header class="vl-hero">
  <p><a href="index.html">{{ course }}</a></p>
  <h1>Corrections to the source material</h1>
  <p>The course was commissioned from five Chinese-language tutorials. These are the errors in them that
  the course corrects; each row says where, and where the course shows the correction.</p>
</header>
<table class="vl-errata">
<thead><tr><th>source</th><th>it says (paraphrased)</th><th>what is right</th><th>evidence</th>
<th>where the course shows it</th></tr></thead>
<tbody>
{%- for e in errata %}
<tr id="erratum-{{ loop.index }}">
  <td><code>{{ e.location }}</code></td><td>{{ e.claim }}</td><td>{{ e.correct }}</td><td>{{ e.evidence }}</td>
  <td>{% if e.href %}<a href="{{ e.href }}">{{ e.where }}</a>{% else %}{{ e.where }}{% endif %}</td>
</tr>
{%- endfor %}
</tbody>
</table>
</main>
</body>
</html>
"""


def _write_errata(out: Path, chapters: list[Chapter], errata, *, course: str, mathjax: str) -> None:
    """``errata.html``: one row per :class:`Erratum`, linked to the section of a chapter of the site."""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    by_stem = {ch.source.stem: ch for ch in chapters}
    rows = []
    for e in errata:
        ch, href = by_stem.get(e.chapter), None
        number = int(e.chapter[:2]) if e.chapter[:2].isdigit() else None
        where = f"chapter {number}" if number is not None else e.chapter
        if e.section is None:
            where += " (correction not shown yet)"
        else:
            where += f", “{e.section}”"
        if ch is not None:
            href = ch.href
            if e.section is not None:
                ids = _chapter_headings(ch.source)
                if e.section not in ids:
                    raise SiteBuildError(f"erratum {e.location}: {ch.source.name} has no heading {e.section!r}")
                href += "#" + ids[e.section]
        rows.append({"location": e.location, "claim": e.claim, "correct": e.correct, "evidence": e.evidence,
                     "where": where, "href": href})
    text = env.from_string(ERRATA_TEMPLATE).render(course=course, errata=rows, mathjax=markupsafe.Markup(mathjax))
    (out / "errata.html").write_text(text, encoding="utf-8")


# ---------------------------------------------------------------- notebooks

def _notebook(path: Path):
    nb = jupytext.read(path)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"  # jupytext draws random ids; fixed ones keep the HTML reproducible
    return nb


def _cell_lines(path: Path, ncells: int) -> list[int] | None:
    """1-based line of each cell's ``# %%`` marker, where every cell has one."""
    lines = [i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if line.startswith("# %%")]
    return lines if len(lines) == ncells else None


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _shown(path: Path) -> str:
    """``path`` as a message shows it: relative to the working folder where it is under it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def execute_notebook(nb, source: Path, cwd: Path, cell_timeout: float = 600.0):
    """Run every code cell of ``nb`` (read from ``source``) in a fresh ``python3`` kernel started in ``cwd``.

    The first cell that raises, times out or kills the kernel stops the build: the
    :class:`SiteBuildError` names the file, the cell (its number, and its line in ``source``)
    and the error with its traceback.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    current = {"index": None}

    def on_cell_execute(cell, cell_index, **_):
        current["index"] = cell_index

    client = NotebookClient(nb, timeout=cell_timeout, kernel_name=KERNEL, allow_errors=False,
                            resources={"metadata": {"path": str(cwd)}}, on_cell_execute=on_cell_execute)
    try:
        client.execute()
    except Exception as err:  # a cell's error, a timeout, a dead kernel, a kernel that would not start
        index = current["index"]
        if index is None:
            raise SiteBuildError(f"{_shown(source)}: could not start the {KERNEL!r} kernel: {err!r}") from err
        starts = _cell_lines(source, len(nb.cells))
        where = f"cell {index + 1}" + (f" (the '# %%' at line {starts[index]})" if starts else "")
        if isinstance(err, CellExecutionError):
            what = f"{err.ename}: {err.evalue}"
        elif isinstance(err, CellTimeoutError):
            what = f"timed out after {cell_timeout:g} s (--cell-timeout)"
        elif isinstance(err, DeadKernelError):
            what = "the kernel died (out of memory?)"
        else:
            what = repr(err)
        detail = _ANSI.sub("", str(err)).strip()
        raise SiteBuildError(f"{_shown(source)}: {where} failed: {what}\n\n{detail}") from err
    return nb


def _tidy_streams(nb) -> None:
    """Show printed text as JupyterLab ends up showing it, not as it arrived: consecutive outputs of
    one stream merged, a carriage return overwriting its line (a progress bar keeps its last state,
    a bar that cleared itself is gone)."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        merged: list = []
        for output in cell.outputs:
            if output.output_type == "stream" and isinstance(output.text, list):
                output.text = "".join(output.text)
            if (output.output_type == "stream" and merged and merged[-1].output_type == "stream"
                    and merged[-1].name == output.name):
                merged[-1].text += output.text
            else:
                merged.append(output)
        kept = []
        for output in merged:
            if output.output_type == "stream":
                lines = []
                for line in output.text.replace("\r\n", "\n").split("\n"):
                    if "\r" in line:
                        line = line.rsplit("\r", 1)[1]
                        if not line.strip():
                            continue
                    lines.append(line)
                output.text = "\n".join(lines)
                if not output.text.strip():
                    continue
            kept.append(output)
        cell.outputs = kept


def _relink(nb, source_key: str, page: str, pages: dict[str, str]) -> None:
    """Point markdown links (and `inline code` paths) to a course ``.py`` at the page built from it.

    ``pages`` maps a source's key (``chapters/01_x.py``) to its page in the site
    (``chapters/01_x.html``); a link is resolved from the folder of ``source_key``, the page's
    source, an inline code path from the course root; both are rewritten relative to ``page``.
    """
    here = posixpath.dirname(source_key)

    def rel(key: str) -> str:
        return posixpath.relpath(pages[key], posixpath.dirname(page) or ".")

    def link(m: re.Match) -> str:
        key = posixpath.normpath(posixpath.join(here, m.group(1)))
        return f"]({rel(key)}{m.group(2) or ''})" if key in pages else m.group(0)

    def code(m: re.Match) -> str:
        return f"[`{m.group(1)}`]({rel(m.group(1))})" if m.group(1) in pages else m.group(0)

    for cell in nb.cells:
        if cell.cell_type == "markdown":
            src = re.sub(r"\]\(([^)\s#:]+\.py)(#[^)\s]*)?\)", link, cell.source)
            cell.source = re.sub(r"(?<!\[)`([\w./-]+\.py)`(?!\]\()", code, src)


# ---------------------------------------------------------------- HTML

MATHJAX_HEAD = """\
<script type="text/x-mathjax-config">
MathJax.Hub.Config({
  tex2jax: {inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]], displayMath: [["$$", "$$"], ["\\\\[", "\\\\]"]],
            processEscapes: true, processEnvironments: true},
  TeX: {equationNumbers: {autoNumber: "AMS", useLabelIds: true}},
  "HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null},
  displayAlign: "center", messageStyle: "none"
});
</script>
<script src="{url}"></script>"""

# nbconvert's lab template with: no require.js (only widgets need it), our MathJax, site.css,
# and the navigation bars. nbconvert does not autoescape, so the navigation is escaped here.
PAGE_TEMPLATE = """\
{%- extends 'index.html.j2' -%}
{%- macro bar(vl, cls) -%}
<nav class="vl-nav {{ cls }}">
  <a class="vl-home" href="{{ vl.root }}index.html">{{ vl.course | e }}</a>
  <span class="vl-links">
  {%- for text, href, extra in vl.links %}
    <a href="{{ href | e }}"{{ extra }}>{{ text | e }}</a>
  {%- endfor %}
  </span>
</nav>
{%- endmacro -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}
{{ resources.vl.mathjax }}
{%- endblock html_head_js_mathjax -%}
{%- block html_head_css -%}
<link rel="stylesheet" href="{{ resources.vl.root }}site.css">
{%- endblock html_head_css -%}
{%- block body_header -%}
<body class="jp-Notebook vl-page" data-jp-theme-light="true" data-jp-theme-name="JupyterLab Light">
{{ bar(resources.vl, "vl-top") }}
<main>
{%- endblock body_header -%}
{% block body_footer %}
</main>
{{ bar(resources.vl, "vl-bottom") }}
</body>
{% endblock body_footer %}
"""

INDEX_TEMPLATE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{{ course }}</title>
{{ mathjax | safe }}
<link rel="stylesheet" href="site.css">
</head>
<body class="vl-index">
<main>
<header class="vl-hero">
  <h1>{{ course }}</h1>
  <p>{{ subtitle }}</p>
  <p class="vl-errata-link"><a href="errata.html">Errata: what the source material gets wrong, and where the
  course corrects it</a></p>
</header>
<ol class="vl-chapters">
{%- for ch in chapters %}
  <li class="vl-chapter" id="chapter-{{ ch.number }}">
    <h2><span class="vl-num">Chapter {{ ch.number }}</span> <a href="{{ ch.href }}">{{ ch.title }}</a></h2>
    {%- if ch.intro %}
    <div class="vl-intro">{{ ch.intro | safe }}</div>
    {%- endif %}
    {%- if ch.objectives %}
    <div class="vl-objectives">{{ ch.objectives | safe }}</div>
    {%- endif %}
    <p class="vl-actions">
      <a class="vl-button" href="{{ ch.href }}">Read chapter {{ ch.number }}</a>
      {%- if ch.exercise %}
      <a class="vl-button vl-secondary" href="{{ ch.exercise.href }}">Exercise {{ ch.number }}</a>
      <span class="vl-download">download <a href="{{ ch.exercise.py }}" download>.py</a>
        · <a href="{{ ch.exercise.ipynb }}" download>.ipynb</a></span>
      {%- endif %}
    </p>
  </li>
{%- endfor %}
</ol>
<footer class="vl-footer">
  <p>{{ executed_note }} Run the course yourself with <code>make lab</code>.</p>
</footer>
</main>
</body>
</html>
"""

SITE_CSS = """\
/* vidlearn course site: layered over JupyterLab's notebook CSS on chapter pages. */
:root {
  --vl-accent: #1f5fa8;
  --vl-accent-soft: #e8f0fa;
  --vl-ink: #1d232b;
  --vl-muted: #5b6573;
  --vl-rule: #dde3ea;
  --vl-width: 62rem;
}
body.vl-index, body.vl-page {
  margin: 0;
  color: var(--vl-ink);
  background: #fafbfc;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  line-height: 1.55;
}
body.vl-page { padding: 0; overflow-x: hidden; }
body.vl-page main, body.vl-index main {
  max-width: var(--vl-width);
  margin: 0 auto;
  padding: 1.5rem 2rem 2rem;
  background: #fff;
  box-sizing: border-box;
}
body.vl-page main { min-height: 80vh; border-left: 1px solid var(--vl-rule); border-right: 1px solid var(--vl-rule); }
a { color: var(--vl-accent); }

/* navigation bars */
.vl-nav {
  display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: .5rem 1.5rem;
  max-width: var(--vl-width); margin: 0 auto; padding: .6rem 2rem; box-sizing: border-box;
  font-size: .92rem; background: var(--vl-accent-soft); border-bottom: 1px solid var(--vl-rule);
}
.vl-nav.vl-top { position: sticky; top: 0; z-index: 10; }
.vl-nav.vl-bottom { border-top: 1px solid var(--vl-rule); border-bottom: 0; }
.vl-nav a { text-decoration: none; }
.vl-nav a:hover { text-decoration: underline; }
.vl-nav .vl-home { font-weight: 600; color: var(--vl-ink); }
.vl-nav .vl-links { display: flex; flex-wrap: wrap; gap: .3rem 1.2rem; }

/* index */
.vl-hero { border-bottom: 3px solid var(--vl-accent); margin-bottom: 1.5rem; }
.vl-hero h1 { margin: .2rem 0 .3rem; font-size: 2rem; }
.vl-hero p { margin: 0 0 1rem; color: var(--vl-muted); }
.vl-chapters { list-style: none; padding: 0; margin: 0; }
.vl-chapter { padding: 1.1rem 0 1.2rem; border-bottom: 1px solid var(--vl-rule); }
.vl-chapter h2 { margin: 0 0 .5rem; font-size: 1.35rem; }
.vl-chapter h2 a { color: var(--vl-ink); text-decoration: none; }
.vl-chapter h2 a:hover { color: var(--vl-accent); }
.vl-num {
  display: inline-block; margin-right: .4rem; padding: .05rem .5rem; border-radius: .3rem;
  background: var(--vl-accent); color: #fff; font-size: .8rem; vertical-align: .2rem;
}
.vl-intro p { margin: .3rem 0; }
.vl-objectives { color: var(--vl-ink); font-size: .95rem; }
.vl-objectives p { margin: .4rem 0 .1rem; color: var(--vl-muted); }
.vl-objectives ol, .vl-objectives ul { margin: .2rem 0; padding-left: 1.6rem; }
.vl-actions { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1rem; margin: .8rem 0 0; }
.vl-button {
  display: inline-block; padding: .3rem .85rem; border-radius: .3rem; background: var(--vl-accent); color: #fff;
  text-decoration: none; font-size: .92rem;
}
.vl-button:hover { filter: brightness(1.1); }
.vl-button.vl-secondary { background: #fff; color: var(--vl-accent); border: 1px solid var(--vl-accent); }
.vl-download { color: var(--vl-muted); font-size: .88rem; }
.vl-footer { margin-top: 2rem; color: var(--vl-muted); font-size: .88rem; }
code { font-size: .92em; }

/* chapter pages: JupyterLab's CSS assumes a full-width app; tame it for reading */
body.vl-page .jp-Cell { padding-left: 0; padding-right: 0; }
body.vl-page .jp-InputArea-editor { border-radius: .25rem; }
body.vl-page .jp-OutputArea-output img { max-width: 100%; height: auto; }
body.vl-page .jp-RenderedHTMLCommon { font-size: 15px; line-height: 1.6; }
body.vl-page a.anchor-link { display: none; }
body.vl-page .jp-RenderedHTMLCommon a code { color: var(--vl-accent); }  /* a link to a file reads as a link */
/* a display equation wider than the page scrolls (MathJax cannot break an aligned block) */
.MathJax_Display { overflow-x: auto; overflow-y: hidden; }
.vl-note {
  margin: .5rem 0 1rem; padding: .6rem .9rem; border-left: 4px solid var(--vl-accent);
  background: var(--vl-accent-soft); font-size: .92rem;
}
.vl-errata { border-collapse: collapse; font-size: .9rem; }
.vl-errata th, .vl-errata td { border-top: 1px solid var(--vl-rule); padding: .45rem .5rem; text-align: left;
  vertical-align: top; }
.vl-errata th { background: var(--vl-accent-soft); }
@media print { .vl-nav { display: none; } }
"""


def _exporter():
    from nbconvert import HTMLExporter

    return HTMLExporter(
        template_name="lab",
        template_file="vidlearn_page.html.j2",
        extra_loaders=[jinja2.DictLoader({"vidlearn_page.html.j2": PAGE_TEMPLATE})],
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,  # images a markdown cell links to travel inside the page
    )


def _render(exporter, nb, source: Path, title: str, vl: dict) -> str:
    nb.metadata["title"] = title
    resources = {"metadata": {"name": source.stem, "path": str(source.parent)}, "vl": vl}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    return body


def _note(html_text: str) -> nbformat.NotebookNode:
    """A markdown cell that is one block of HTML (markdown inside an HTML block is not rendered)."""
    cell = nbformat.v4.new_markdown_cell(f'<div class="vl-note">{html_text}</div>')
    cell["id"] = "vl-note"
    return cell


# ---------------------------------------------------------------- the build

def _mathjax(out: Path) -> str:
    """Copy MathJax into the site where jupyter-server-mathjax is installed; the CDN otherwise."""
    try:
        import jupyter_server_mathjax
    except ImportError:
        return MATHJAX_CDN
    static = Path(jupyter_server_mathjax.__file__).parent / "static"

    def skip(folder: str, names: list[str]) -> list[str]:
        if Path(folder).name == "localization":
            return [n for n in names if n != "en"]  # English only: 2 MB less
        return []

    shutil.copytree(static, out / "mathjax", ignore=skip)
    return f"mathjax/MathJax.js?config={MATHJAX_CONFIG}"


def _check_replaceable(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise SiteBuildError(f"{out} exists and is not a site built by vidlearn: not replacing it")


def _replace(staging: Path, out: Path) -> None:
    _check_replaceable(out)
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)


def build_site(
    chapters_dir: Path,
    exercises_dir: Path,
    out: Path,
    *,
    pattern: str = CHAPTER_GLOB,
    execute: bool = True,
    cwd: Path | None = None,
    cell_timeout: float = 600.0,
    course: str = COURSE_TITLE,
    subtitle: str = COURSE_SUBTITLE,
    errata=ERRATA,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Build the site into ``out`` (replacing a site built there before) and return its ``index.html``.

    ``chapters_dir`` holds the chapters (``pattern`` picks them), ``exercises_dir`` the exercises
    ``exNN_*.py`` that go with chapter ``NN``; ``cwd`` (default: the folder above
    ``chapters_dir``, the course root) is where chapters run. ``execute=False`` renders the
    chapters without running them (a quick look at the layout; no outputs, no plots).
    ``errata`` (default :data:`ERRATA`) become ``errata.html``, linked from the index; a row
    whose chapter is in the site links the section it names, which must exist.
    """
    chapters_dir, exercises_dir, out = Path(chapters_dir), Path(exercises_dir), Path(out)
    cwd = Path(cwd) if cwd is not None else chapters_dir.resolve().parent
    say = progress or (lambda message: None)
    _check_replaceable(out)  # before minutes of execution, not after
    chapters = find_chapters(chapters_dir, exercises_dir, pattern)

    # keys are paths as a chapter's markdown writes them: "chapters/01_x.py", "exercises/ex01_x.py"
    ckey = {ch.source: f"{chapters_dir.name}/{ch.source.name}" for ch in chapters}
    ekey = {ch.exercise: f"{exercises_dir.name}/{ch.exercise.name}" for ch in chapters if ch.exercise}
    pages = {ckey[ch.source]: ch.href for ch in chapters}
    pages |= {ekey[ch.exercise]: f"exercises/{ch.exercise.stem}.html" for ch in chapters if ch.exercise}

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    (staging / "chapters").mkdir(parents=True)
    (staging / "exercises").mkdir()
    try:
        (staging / MARKER).write_text("a course site built by `vidlearn build-site`; rebuilt as a whole\n")
        (staging / "site.css").write_text(SITE_CSS, encoding="utf-8")
        mathjax = _mathjax(staging)
        exporter = _exporter()

        def head(root: str) -> str:
            url = mathjax if mathjax.startswith("https:") else root + mathjax
            return MATHJAX_HEAD.replace("{url}", url)

        for i, ch in enumerate(chapters):
            nb = _notebook(ch.source)
            if execute:
                started = time.perf_counter()
                say(f"executing {_shown(ch.source)} ...")
                execute_notebook(nb, ch.source, cwd, cell_timeout)
                _tidy_streams(nb)
                say(f"  {ch.source.name}: {time.perf_counter() - started:.1f} s")
            _relink(nb, ckey[ch.source], ch.href, pages)
            links = []
            if i > 0:
                prev = chapters[i - 1]
                links.append((f"← {prev.number}. {prev.title}", posixpath.basename(prev.href), ' rel="prev"'))
            links.append(("All chapters", "../index.html", ""))
            if ch.exercise:
                links.append((f"Exercise {ch.number}", f"../exercises/{ch.exercise.stem}.html", ""))
            if i + 1 < len(chapters):
                nxt = chapters[i + 1]
                links.append((f"{nxt.number}. {nxt.title} →", posixpath.basename(nxt.href), ' rel="next"'))
            vl = {"root": "../", "course": course, "links": links, "mathjax": head("../")}
            page = _render(exporter, nb, ch.source, f"Chapter {ch.number} — {ch.title}", vl)
            (staging / ch.href).write_text(page, encoding="utf-8")

        for ch in chapters:
            if not ch.exercise:
                continue
            stem = ch.exercise.stem
            shutil.copyfile(ch.exercise, staging / "exercises" / f"{stem}.py")
            nb = _notebook(ch.exercise)
            jupytext.write(nb, staging / "exercises" / f"{stem}.ipynb", fmt="ipynb")
            _relink(nb, ekey[ch.exercise], f"exercises/{stem}.html", pages)
            nb.cells.insert(0, _note(
                f'This is the exercise as a student gets it, not run. Download it as '
                f'<a href="{stem}.py" download><code>{stem}.py</code></a> (opens as a notebook in JupyterLab '
                f'with Jupytext) or <a href="{stem}.ipynb" download><code>{stem}.ipynb</code></a> and work '
                f'through it with <code>make lab</code>; it goes with <a href="../{ch.href}">chapter {ch.number}</a>.'))
            links = [(f"Chapter {ch.number}: {ch.title}", f"../{ch.href}", ""), ("All chapters", "../index.html", ""),
                     (f"Download {stem}.py", f"{stem}.py", " download")]
            vl = {"root": "../", "course": course, "links": links, "mathjax": head("../")}
            heading = (line for line in _leading_markdown(nb).splitlines() if line.startswith("# "))
            title = next(heading, f"# {stem}")[2:].strip()
            page = _render(exporter, nb, ch.exercise, title, vl)
            (staging / "exercises" / f"{stem}.html").write_text(page, encoding="utf-8")

        _write_errata(staging, chapters, errata, course=course, mathjax=head(""))
        _write_index(staging, chapters, course=course, subtitle=subtitle, mathjax=head(""), executed=execute)
        _replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out / "index.html"


def _write_index(out: Path, chapters: list[Chapter], *, course: str, subtitle: str, mathjax: str,
                 executed: bool) -> None:
    from nbconvert.filters.markdown import markdown2html

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    entries = []
    for ch in chapters:
        ex = ch.exercise
        entries.append({
            "number": ch.number, "title": ch.title, "href": ch.href,
            "intro": markdown2html(ch.intro) if ch.intro else "",
            "objectives": markdown2html(ch.objectives) if ch.objectives else "",
            "exercise": ex and {"href": f"exercises/{ex.stem}.html", "py": f"exercises/{ex.stem}.py",
                                "ipynb": f"exercises/{ex.stem}.ipynb"},
        })
    text = env.from_string(INDEX_TEMPLATE).render(
        course=course, subtitle=subtitle, chapters=entries, mathjax=markupsafe.Markup(mathjax),
        executed_note="Every chapter page shows its cells as they ran when this site was built." if executed
        else "This build did not run the chapters: their pages show no outputs.")
    (out / "index.html").write_text(text, encoding="utf-8")



# ---------------------------------------------------------------- checking a built site

class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.links += [value for name, value in attrs if name in ("href", "src") and value]


def _local_links(page: Path) -> list[str]:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return [link.split("#")[0].split("?")[0] for link in parser.links
            if not re.match(r"[a-z][a-z0-9+.-]*:", link) and not link.startswith("#")]


class _Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.ids |= {value for name, value in attrs if name in ("id", "name") and value}


def _fragment_links(page: Path) -> list[tuple[str, str]]:
    """``(file, fragment)`` of every local link of ``page`` to another file with a ``#fragment``."""
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return [tuple(link.split("#", 1)) for link in parser.links
            if "#" in link and not link.startswith("#") and not re.match(r"[a-z][a-z0-9+.-]*:", link)]


def check_site(site: Path, chapters_dir: Path, pattern: str = CHAPTER_GLOB, *, require_plots: bool = False) -> list[str]:
    """What is wrong with the site in ``site`` (empty: nothing): every chapter matching ``pattern``
    in ``chapters_dir`` has a page linked from ``index.html``, the index links ``errata.html``,
    every local link or image of every page leads to a file of the site, and a link to a section
    (``page.html#id``) to an element of that page with that id. ``require_plots``: every chapter
    page also embeds a PNG (an executed chapter of this course always draws one)."""
    site, problems = Path(site), []
    index = site / "index.html"
    if not index.is_file():
        return [f"{index} is missing"]
    linked = set(_local_links(index))
    if "errata.html" not in linked:
        problems.append("index.html does not link errata.html")
    for source in sorted(Path(chapters_dir).glob(pattern)):
        href = f"chapters/{source.stem}.html"
        if href not in linked:
            problems.append(f"index.html does not link {source.name} ({href})")
        page = site / href
        # an output image, not the small PNGs inlined in JupyterLab's CSS
        if require_plots and page.is_file() and 'src="data:image/png;base64,' not in page.read_text(encoding="utf-8"):
            problems.append(f"{href} embeds no plot: were its outputs executed?")
    for page in sorted(site.rglob("*.html")):
        if (site / "mathjax") in page.parents:
            continue
        for link in _local_links(page):
            if link and not (page.parent / link).exists():
                problems.append(f"{page.relative_to(site)} links {link}, which does not exist")
        for target, fragment in _fragment_links(page):
            path = page.parent / target.split("?")[0]
            if path.suffix == ".html" and path.is_file():
                ids = _Ids()
                ids.feed(path.read_text(encoding="utf-8"))
                if fragment not in ids.ids:
                    problems.append(f"{page.relative_to(site)} links {target}#{fragment}: no such section")
    return problems
