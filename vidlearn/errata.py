"""The errors of the course's source material (``../shared/seeds/``) and where the course corrects them.

:data:`ERRATA` is the one list: the README's "Corrections to common material" table is
:func:`errata_markdown` (a test keeps them identical), the site's errata page is built from it, and
``vidlearn check-errata`` checks each row against the seed lines it quotes
(:func:`errata_source_problems`, by the marks in :data:`ERRATA_MARKS`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

__all__ = ["Erratum", "ERRATA", "ERRATA_MARKS", "errata_source_problems", "errata_markdown"]


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


def errata_markdown(errata=ERRATA, *, link: Callable[[Erratum], str | None] | None = None) -> str:
    """The errata as the Markdown table of the README's "Corrections to common material" section.

    ``link``, where given, is where a row's last cell links instead (the site's errata page links the
    section itself); a row it gives None to names its chapter and section without a link.
    """
    rows = ["| source (seed file:line) | it says (paraphrased) | what is right | evidence | where the course shows it |",
            "|---|---|---|---|---|"]
    for e in errata:
        number = int(e.chapter[:2]) if e.chapter[:2].isdigit() else e.chapter
        section = f", “{e.section}”" if e.section is not None else " (correction not shown yet)"
        if link is None:
            where = f"[chapter {number}](chapters/{e.chapter}.py){section}"
        else:
            target = link(e)
            where = f"[chapter {number}{section}]({target})" if target else f"chapter {number}{section}"
        cells = [f"`{e.location}`", e.claim, e.correct, e.evidence, where]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows)
