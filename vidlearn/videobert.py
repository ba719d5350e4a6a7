"""VideoBERT: one BERT over text tokens and "visual words" (Sun et al., 2019, arXiv 1904.01766).

VideoBERT is *not* a two-stream model. A clip's features are quantised into discrete
**visual words** by hierarchical k-means (the paper: ``k = 12``, depth 4, so
``12⁴ = 20,736`` words), and one transformer reads a single sequence that mixes the two
modalities::

    [CLS] a red square moves left [>] v17 v17 v902 v4 [SEP]
    └──────── segment 0 ────────────┘ └──── segment 1 ────┘

Pieces, in the order a pipeline uses them:

* :func:`kmeans` and :class:`HierarchicalKMeans` — the visual vocabulary. A feature goes
  down the tree greedily (nearest child at each level) and its visual word is the path read
  as a base-``k`` number. Greedy descent is an *approximation* of the nearest leaf: it looks
  at ``k·depth`` centroids instead of ``k^depth``.
* :class:`WordTokenizer` and :class:`JointVocabulary` — the text vocabulary and the joint id
  space: specials, then text words, then visual words at an offset
  (:meth:`JointVocabulary.visual_id` is the only place that offset is added).
* :func:`build_sequence`, :func:`pad_batch`, :func:`mask_tokens` — sequences and BERT's
  15 % / 80-10-10 masking, with random replacements kept inside the token's own modality.
* :class:`VideoBERT` — embeddings (token + position + segment), pre-LN blocks, an MLM head
  tied to the token embedding and a linguistic-visual alignment head on ``[CLS]``.
* :func:`pretrain` — MLM on text-only, video-only and text+video sequences plus alignment
  (does this caption belong to this video?) with true negatives.
* :func:`masked_token_accuracy`, :func:`alignment_accuracy`, :func:`retrieval_scores`,
  :func:`recall_at_k`, :func:`chance_recall` — evaluation.

Conventions: *raw* text ids are indices into a :class:`WordTokenizer` (``0 .. W-1``) and
*raw* visual ids are visual words (``0 .. n_visual-1``); :func:`build_sequence` turns both
into *joint* ids. Everything that takes ``text_ids`` / ``visual_ids`` takes raw ids.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm  # text bars: tqdm.auto warns in notebooks without ipywidgets

from vidlearn.blocks import ResidualAttentionBlock, run_blocks
from vidlearn.train import Optimiser
from vidlearn.validation import check_int

__all__ = [
    "segment_features",
    "kmeans",
    "HierarchicalKMeans",
    "WordTokenizer",
    "SPECIAL_TOKENS",
    "JointVocabulary",
    "build_sequence",
    "pad_batch",
    "mask_tokens",
    "expected_unchanged_share",
    "VideoBERTConfig",
    "VideoBERT",
    "PretrainConfig",
    "pretrain",
    "masked_token_accuracy",
    "alignment_accuracy",
    "retrieval_scores",
    "recall_at_k",
    "chance_recall",
]

IGNORE = -100  # label of a position the MLM loss skips (F.cross_entropy's ignore_index)


# --------------------------------------------------------------------------- clip features


@torch.no_grad()
def segment_features(encoder: nn.Module, video: torch.Tensor, frames: int, *, batch_size: int = 256) -> torch.Tensor:
    """Cut ``video (B, T, C, H, W)`` into ``S = T // frames`` consecutive segments and encode each
    with ``encoder.features`` (``(b, frames, C, H, W) -> (b, F)``): ``(B, S, F)``.

    VideoBERT does the same at scale: 1.5-s clips of a 20-fps video through a pretrained S3D
    network, one feature vector (then one visual word) per clip. Leftover frames are dropped.
    """
    if not isinstance(video, torch.Tensor) or video.ndim != 5:
        raise ValueError(f"video must be (B, T, C, H, W), got {getattr(video, 'shape', video)!r}")
    B, T = video.shape[:2]
    check_int(frames, "frames")
    S = T // frames
    if S == 0:
        raise ValueError(f"a {T}-frame video has no whole segment of {frames} frames")
    segments = video[:, : S * frames].reshape(B * S, frames, *video.shape[2:])  # (B·S, frames, C, H, W)
    was_training = encoder.training
    encoder.eval()
    try:
        feats = torch.cat([encoder.features(segments[i : i + batch_size]) for i in range(0, B * S, batch_size)])
    finally:
        encoder.train(was_training)
    return feats.reshape(B, S, -1)  # (B, S, F)


def _check_features(x, what: str = "features") -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or not x.dtype.is_floating_point:
        raise ValueError(f"{what} must be a floating tensor (M, F), got {getattr(x, 'shape', type(x).__name__)!r}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{what} must have at least one row and one column, got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{what} contains NaN or infinite values")
    return x


def _check_generator(generator) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return generator


def _sq_distances(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """``‖x_i - c_j‖²``: ``(M, F), (k, F) -> (M, k)``.

    Differences are formed explicitly: the ``‖x‖² - 2x·c + ‖c‖²`` shortcut loses precision
    and can tie a point to the wrong centroid when both are far from the origin.
    """
    return torch.cdist(x, c, compute_mode="donot_use_mm_for_euclid_dist").square()


# --------------------------------------------------------------------------- k-means


def _kmeans_pp(x: torch.Tensor, k: int, g: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: each new centroid is a data point drawn with probability ``∝ D(x)²``,
    the squared distance to the nearest centroid chosen so far. ``(M, F) -> (k, F)``.

    Once every point coincides with a chosen centroid (fewer than ``k`` distinct points),
    the remaining centroids are copies of the chosen ones, in turn.
    """
    chosen = [int(torch.randint(x.shape[0], (1,), generator=g))]
    d2 = _sq_distances(x, x[chosen])[:, 0]  # (M,)
    while len(chosen) < k:
        total = d2.sum()
        if total <= 0:
            n = len(chosen)
            chosen += [chosen[i % n] for i in range(k - n)]
            break
        i = int(torch.multinomial(d2 / total, 1, generator=g))
        chosen.append(i)
        d2 = torch.minimum(d2, _sq_distances(x, x[i : i + 1])[:, 0])
    return x[chosen].clone()  # (k, F)


def _lloyd_step(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """One Lloyd update of ``c (k, F)`` on ``x (M, F)``: each centroid moves to the mean of its
    points; an empty cluster moves to a far point (see :func:`kmeans`) or stays."""
    k = c.shape[0]
    d2 = _sq_distances(x, c)  # (M, k)
    a = d2.argmin(dim=1)  # (M,)
    counts = torch.bincount(a, minlength=k)  # (k,)
    sums = torch.zeros_like(c).index_add_(0, a, x)  # (k, F)
    new = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None].to(x.dtype), c)
    empty = (counts == 0).nonzero()[:, 0]  # (n_empty,)
    if len(empty):
        own = d2.gather(1, a[:, None])[:, 0]  # (M,): each point's distance to its centroid
        far = own.argsort(descending=True, stable=True)[: len(empty)]  # (≤ n_empty,)
        far = far[own[far] > 0]  # points already on a centroid would only make another copy
        new[empty[: len(far)]] = x[far]
    return new


def kmeans(
    x: torch.Tensor, k: int, *, iters: int = 50, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's algorithm with k-means++ seeding: ``x (M, F)`` -> ``(centroids (k, F), assignment (M,))``.

    Alternates ``a_i = argmin_j ‖x_i - c_j‖²`` and ``c_j = mean{x_i : a_i = j}`` for at most
    ``iters`` rounds (stopping early once the centroids no longer move). All randomness
    comes from ``generator``, so the result is deterministic.

    * **Fewer distinct points than k** (``M < k`` included): the surplus centroids are copies
      of real ones; ties go to the lowest index, so the copies' clusters stay empty.
    * **Empty clusters** are re-seeded at the points farthest from their own centroid (the
      worst-served points), one point per empty cluster; if no point is at a positive
      distance (every point sits on a centroid) the empty cluster keeps its old centroid.

    ``assignment`` is the nearest centroid of each point under the returned centroids.
    """
    x = _check_features(x, "x")
    check_int(k, "k")
    check_int(iters, "iters", minimum=0)
    g = _check_generator(generator)
    c = _kmeans_pp(x, k, g)  # (k, F)
    for _ in range(iters):
        new = _lloyd_step(x, c)
        if torch.equal(new, c):
            break
        c = new
    return c, _sq_distances(x, c).argmin(dim=1)


class HierarchicalKMeans:
    """A complete ``k``-ary tree of k-means centroids, ``depth`` levels deep: the visual vocabulary.

    ``fit`` clusters the features into ``k``, then each cluster's members into ``k``, down to
    ``depth`` levels. Node ``n`` of level ``l`` (``0 ≤ n < k^(l+1)``) has children
    ``n·k + j``, so a leaf's index is its path ``(j_0, …, j_{depth-1})`` read as a base-``k``
    number, first level most significant: that index is the visual word, in ``[0, k^depth)``.

    Every node has ``k`` children even when fewer than ``k`` features reach it (the surplus
    children copy its members, see :func:`kmeans`; a node no feature reaches is treated as
    one point at its own centroid), so every path is a valid word.
    """

    def __init__(self, k: int, depth: int, *, iters: int = 50, seed: int = 0):
        check_int(k, "k")
        if k < 2:
            raise ValueError(f"k must be at least 2 (a tree with one child per node has one word), got {k}")
        self.k, self.depth = k, check_int(depth, "depth")
        self.iters = check_int(iters, "iters", minimum=0)
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        self.seed = int(seed)
        self.centroids: list[torch.Tensor] | None = None  # level l: (k^(l+1), F)

    @classmethod
    def from_levels(cls, levels: Sequence[torch.Tensor]) -> "HierarchicalKMeans":
        """A tree from given centroids: ``levels[l]`` is ``(k^(l+1), F)``, children of node ``n`` at ``n·k + j``."""
        if not levels:
            raise ValueError("levels must hold at least one level of centroids")
        first = _check_features(levels[0], "levels[0]")
        tree = cls(first.shape[0], len(levels))
        for l, c in enumerate(levels):
            c = _check_features(c, f"levels[{l}]")
            if c.shape != (tree.k ** (l + 1), first.shape[1]):
                raise ValueError(
                    f"levels[{l}] has shape {tuple(c.shape)}; level {l} of a {tree.k}-ary tree needs "
                    f"({tree.k ** (l + 1)}, {first.shape[1]})"
                )
        tree.centroids = [c.clone() for c in levels]
        return tree

    @property
    def vocab_size(self) -> int:
        """Number of visual words, ``k^depth``."""
        return self.k**self.depth

    def fit(self, features: torch.Tensor) -> "HierarchicalKMeans":
        """Build the tree from ``features (M, F)``, level by level, nodes in index order."""
        x = _check_features(features)
        g = torch.Generator().manual_seed(self.seed)
        levels: list[torch.Tensor] = []
        members = [x]  # the features that reach each node of the current level
        for level in range(self.depth):
            children, reach = [], []
            for node, pts in enumerate(members):
                if len(pts) == 0:  # nothing reaches this node: it stands for its own centroid
                    pts = levels[-1][node : node + 1]
                c, a = kmeans(pts, self.k, iters=self.iters, generator=g)  # (k, F), (m,)
                children.append(c)
                reach += [pts[a == j] for j in range(self.k)]
            levels.append(torch.cat(children))  # (k^(level+1), F)
            members = reach
        self.centroids = levels
        return self

    def _fitted(self) -> list[torch.Tensor]:
        if self.centroids is None:
            raise ValueError("this HierarchicalKMeans is not fitted yet: call fit(features) first")
        return self.centroids

    def assign(self, features: torch.Tensor, *, chunk: int = 4096) -> torch.Tensor:
        """Visual word of each row of ``features (M, F)``: ``(M,)`` int64 in ``[0, k^depth)``.

        Greedy descent: at each level, the nearest of the current node's ``k`` children.
        ``chunk`` rows at a time bound the ``(chunk, k, F)`` difference tensor.
        """
        levels = self._fitted()
        x = _check_features(features)
        check_int(chunk, "chunk")
        if x.shape[1] != levels[0].shape[1]:
            raise ValueError(f"features have {x.shape[1]} columns but the tree was fitted on {levels[0].shape[1]}")
        children = torch.arange(self.k)  # (k,)
        words = []
        for part in x.split(chunk):
            node = torch.zeros(len(part), dtype=torch.long)  # (m,): the root's children are 0..k-1
            for c in levels:
                cand = node[:, None] * self.k + children  # (m, k): the current node's children
                d2 = (part[:, None, :] - c[cand].to(part.dtype)).square().sum(-1)  # (m, k)
                node = cand.gather(1, d2.argmin(dim=1, keepdim=True))[:, 0]  # (m,)
            words.append(node)
        return torch.cat(words)

    def path(self, token: int) -> tuple[int, ...]:
        """The child index at each level, ``(j_0, …, j_{depth-1})``, of visual word ``token``."""
        if isinstance(token, bool) or not isinstance(token, numbers.Integral) or not 0 <= token < self.vocab_size:
            raise ValueError(f"token must be an integer in [0, {self.vocab_size}), got {token!r}")
        digits = []
        for _ in range(self.depth):
            token, j = divmod(int(token), self.k)
            digits.append(j)
        return tuple(reversed(digits))

    def leaf_centroids(self) -> torch.Tensor:
        """The centroid of every visual word: ``(k^depth, F)``, row ``v`` for word ``v``."""
        return self._fitted()[-1]


# --------------------------------------------------------------------------- vocabularies


class WordTokenizer:
    """A word-level tokenizer: ``words`` sorted, lowercase, no whitespace; word ``i`` has id ``i``."""

    def __init__(self, words: Sequence[str]):
        words = tuple(words)
        if not words or not all(isinstance(w, str) and w and w == w.lower() and w.split() == [w] for w in words):
            raise ValueError(f"words must be non-empty lowercase strings without whitespace, got {words!r}")
        if list(words) != sorted(set(words)):
            raise ValueError("words must be sorted and unique (use WordTokenizer.from_texts)")
        self.words = words
        self._index = {w: i for i, w in enumerate(words)}

    @classmethod
    def from_texts(cls, texts: Sequence[str]) -> "WordTokenizer":
        """The sorted set of lowercase whitespace-separated words of ``texts``."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise ValueError("texts must be a sequence of strings (a single string is not one)")
        return cls(sorted({w for t in texts for w in t.lower().split()}))

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise ValueError(f"text must be a string, got {type(text).__name__}")
        unknown = [w for w in text.lower().split() if w not in self._index]
        if unknown:
            raise ValueError(f"unknown word(s) {unknown} in {text!r}: not in the tokenizer's {len(self)} words")
        return [self._index[w] for w in text.lower().split()]

    def decode(self, ids: Sequence[int]) -> str:
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < len(self)]
        if bad:
            raise ValueError(f"ids {bad} are not in [0, {len(self)})")
        return " ".join(self.words[i] for i in ids)


SPECIAL_TOKENS = ("[PAD]", "[CLS]", "[SEP]", "[MASK]", "[>]")


class JointVocabulary:
    """One id space for both modalities: specials, then text words, then visual words.

    ==========================  =============================================
    ``0 .. 4``                  ``[PAD] [CLS] [SEP] [MASK] [>]``
    ``text_offset + w``         text word ``w`` (``text_offset = 5``)
    ``visual_offset + v``       visual word ``v`` (``visual_offset = 5 + W``)
    ==========================  =============================================

    :meth:`text_id` and :meth:`visual_id` are the only places raw ids get their offset:
    indexing the embedding with a raw visual word would silently read a text word's row.
    """

    pad_id, cls_id, sep_id, mask_id, link_id = range(len(SPECIAL_TOKENS))

    def __init__(self, words: Sequence[str], n_visual: int):
        words = tuple(words)
        if not words or not all(isinstance(w, str) and w for w in words) or len(set(words)) != len(words):
            raise ValueError("words must be a non-empty sequence of distinct non-empty strings")
        clash = set(words) & set(SPECIAL_TOKENS)
        if clash:
            raise ValueError(f"words {sorted(clash)} clash with the special tokens")
        self.words, self.n_visual = words, check_int(n_visual, "n_visual")
        self.text_offset = len(SPECIAL_TOKENS)
        self.visual_offset = self.text_offset + len(words)

    @property
    def n_text(self) -> int:
        return len(self.words)

    @property
    def size(self) -> int:
        return self.visual_offset + self.n_visual

    @property
    def special_ids(self) -> tuple[int, ...]:
        return tuple(range(len(SPECIAL_TOKENS)))

    @property
    def text_ids(self) -> range:
        return range(self.text_offset, self.visual_offset)

    @property
    def visual_ids(self) -> range:
        return range(self.visual_offset, self.size)

    @staticmethod
    def _shift(ids, n: int, offset: int, what: str):
        t = torch.as_tensor(ids)
        if t.dtype == torch.bool or t.dtype.is_floating_point or t.dtype.is_complex:
            raise ValueError(f"{what} ids must be integers, got dtype {t.dtype}")
        bad = t[(t < 0) | (t >= n)]
        if len(bad):
            raise ValueError(f"{what} ids must lie in [0, {n}), got {bad.unique()[:8].tolist()}")
        out = t.long() + offset
        return int(out) if isinstance(ids, numbers.Integral) else out

    def text_id(self, w):
        """Joint id of raw text word(s) ``w`` in ``[0, W)``: an int for an int, else an int64 tensor."""
        return self._shift(w, self.n_text, self.text_offset, "text")

    def visual_id(self, v):
        """Joint id of visual word(s) ``v`` in ``[0, n_visual)``: an int for an int, else an int64 tensor."""
        return self._shift(v, self.n_visual, self.visual_offset, "visual")

    def _check_ids(self, ids) -> torch.Tensor:
        t = torch.as_tensor(ids)
        if t.dtype == torch.bool or t.dtype.is_floating_point or t.dtype.is_complex:
            raise ValueError(f"ids must be integers, got dtype {t.dtype}")
        if ((t < 0) | (t >= self.size)).any():
            raise ValueError(f"ids must lie in [0, {self.size}), got values from {int(t.min())} to {int(t.max())}")
        return t

    def is_special(self, ids) -> torch.Tensor:
        """``True`` where an id is a special token (``[PAD]`` included); same shape as ``ids``."""
        return self._check_ids(ids) < self.text_offset

    def modality(self, ids) -> torch.Tensor:
        """``0`` text, ``1`` video, ``-1`` special; int64, same shape as ``ids``."""
        t = self._check_ids(ids)
        return torch.where(t < self.text_offset, -1, (t >= self.visual_offset).long())

    def token(self, i: int) -> str:
        """The token's text: ``"[CLS]"``, a word, or ``"v17"`` for visual word 17."""
        i = int(self._check_ids(int(i)))
        if i < self.text_offset:
            return SPECIAL_TOKENS[i]
        if i < self.visual_offset:
            return self.words[i - self.text_offset]
        return f"v{i - self.visual_offset}"


# --------------------------------------------------------------------------- sequences and masking


def build_sequence(text_ids, visual_ids, vocab: JointVocabulary) -> tuple[torch.Tensor, torch.Tensor]:
    """One sequence from raw ids: ``(ids (L,), segments (L,))``, both int64.

    ========== ===================================== =====================
    kind       tokens                                segments
    ========== ===================================== =====================
    text+video ``[CLS] text [>] video [SEP]``        ``0 … 0 0 1 … 1 1``
    text       ``[CLS] text [SEP]``                  all 0
    video      ``[CLS] video [SEP]``                 ``0 1 … 1 1``
    ========== ===================================== =====================

    Segment 0 is the text side, ``[CLS]`` and ``[>]`` included (as BERT's sentence A with its
    ``[CLS]``); segment 1 is the video and the ``[SEP]`` that closes it (as BERT's sentence B).
    """
    if not isinstance(vocab, JointVocabulary):
        raise ValueError(f"vocab must be a JointVocabulary, got {type(vocab).__name__}")
    if text_ids is None and visual_ids is None:
        raise ValueError("a sequence needs text ids, visual ids or both")
    parts, segments = [torch.tensor([vocab.cls_id])], [torch.zeros(1, dtype=torch.long)]
    for what, raw in (("text", text_ids), ("visual", visual_ids)):
        if raw is None:
            continue
        raw = torch.as_tensor(raw)
        if raw.ndim != 1 or len(raw) == 0:
            raise ValueError(f"{what} ids must be a non-empty 1-D sequence (pass None to leave the modality out)")
        if what == "text":
            parts.append(vocab.text_id(raw))
            segments.append(torch.zeros(len(raw), dtype=torch.long))
        else:
            if text_ids is not None:
                parts.append(torch.tensor([vocab.link_id]))
                segments.append(torch.zeros(1, dtype=torch.long))
            parts.append(vocab.visual_id(raw))
            segments.append(torch.ones(len(raw), dtype=torch.long))
    parts.append(torch.tensor([vocab.sep_id]))
    segments.append(torch.full((1,), int(visual_ids is not None)))
    return torch.cat(parts), torch.cat(segments)


def pad_batch(
    sequences: Sequence[tuple[torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-pad ``(ids, segments)`` pairs with ``[PAD]`` (id 0, segment 0).

    Returns ``ids (B, L)``, ``segments (B, L)`` int64 and ``mask (B, L)`` bool, True = real token.
    """
    if not sequences:
        raise ValueError("pad_batch needs at least one sequence")
    for i, (ids, seg) in enumerate(sequences):
        if ids.ndim != 1 or ids.shape != seg.shape or len(ids) == 0:
            raise ValueError(
                f"sequence {i}: ids {tuple(ids.shape)} and segments {tuple(seg.shape)} must be 1-D, "
                "non-empty and of equal length"
            )
    L = max(len(ids) for ids, _ in sequences)
    B = len(sequences)
    ids = torch.full((B, L), JointVocabulary.pad_id, dtype=torch.long)  # (B, L)
    segments = torch.zeros(B, L, dtype=torch.long)  # (B, L)
    mask = torch.zeros(B, L, dtype=torch.bool)  # (B, L)
    for b, (i, s) in enumerate(sequences):
        ids[b, : len(i)], segments[b, : len(i)], mask[b, : len(i)] = i, s, True
    return ids, segments, mask


def mask_tokens(
    ids: torch.Tensor,
    vocab: JointVocabulary,
    generator: torch.Generator,
    p: float = 0.15,
    *,
    modality: int | None = None,
    mask_rate: float = 0.8,
    random_rate: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking of ``ids (B, L)`` -> ``(masked_ids (B, L), labels (B, L))``.

    Each non-special position (of ``modality`` 0 = text or 1 = video only, if given) is
    chosen with probability ``p``; a sequence with a candidate but no chosen position gets
    one candidate chosen uniformly, so every sequence contributes to the loss. That lifts
    the expected number chosen from ``n·p`` to ``n·p + (1-p)^n`` for ``n`` candidates.
    A chosen token becomes ``[MASK]`` with probability ``mask_rate``, a uniformly random
    token *of its own modality* with probability ``random_rate`` (never a special: a
    random ``[SEP]`` would fake a sequence boundary), and stays unchanged otherwise.
    ``labels`` is the original id at chosen positions and -100 elsewhere.
    """
    if not isinstance(ids, torch.Tensor) or ids.ndim != 2:
        raise ValueError(f"ids must be a (B, L) tensor, got {getattr(ids, 'shape', type(ids).__name__)!r}")
    g = _check_generator(generator)
    if not 0 < p <= 1:
        raise ValueError(f"p must lie in (0, 1], got {p!r}")
    if not (0 <= mask_rate and 0 <= random_rate and mask_rate + random_rate <= 1):
        raise ValueError(f"mask_rate={mask_rate} and random_rate={random_rate} must be >= 0 and sum to at most 1")
    if modality not in (None, 0, 1):
        raise ValueError(f"modality must be None, 0 (text) or 1 (video), got {modality!r}")
    kind = vocab.modality(ids)  # (B, L): -1 special, 0 text, 1 video
    candidate = kind >= 0 if modality is None else kind == modality  # (B, L)
    chosen = candidate & (torch.rand(ids.shape, generator=g) < p)  # (B, L)
    # rows with candidates but nothing chosen: the candidate with the largest random score
    score = torch.rand(ids.shape, generator=g).masked_fill(~candidate, -1.0)  # (B, L)
    forced = torch.zeros_like(chosen).scatter_(1, score.argmax(dim=1, keepdim=True), True)
    chosen |= forced & (candidate.any(dim=1) & ~chosen.any(dim=1))[:, None]

    action = torch.rand(ids.shape, generator=g)  # (B, L): < mask_rate: [MASK]; then random; else keep
    random_text = vocab.text_id(torch.randint(vocab.n_text, ids.shape, generator=g))  # (B, L)
    random_visual = vocab.visual_id(torch.randint(vocab.n_visual, ids.shape, generator=g))  # (B, L)
    random_same = torch.where(kind == 1, random_visual, random_text)  # (B, L)
    masked = torch.where(chosen & (action < mask_rate), vocab.mask_id, ids)
    is_random = chosen & (action >= mask_rate) & (action < mask_rate + random_rate)
    masked = torch.where(is_random, random_same, masked)
    labels = torch.where(chosen, ids, IGNORE)
    return masked, labels


def expected_unchanged_share(
    ids: torch.Tensor, labels: torch.Tensor, vocab: JointVocabulary, *, mask_rate: float = 0.8,
    random_rate: float = 0.1,
) -> float:
    """The expected share of the chosen positions of :func:`mask_tokens` that keep their token.

    A chosen token is kept with probability ``1 - mask_rate - random_rate``, and a random
    replacement, drawn uniformly from the ``n`` tokens of its own modality (``n = W`` text
    words or ``n_visual`` visual words), is the original token with probability ``1/n``:

        P(unchanged) = (1 - mask_rate - random_rate) + random_rate · mean over chosen of 1/n_modality

    ``ids (B, L)`` are the unmasked ids and ``labels (B, L)`` what :func:`mask_tokens` returned
    for them (the chosen positions are those whose label is not -100). BERT's 80/10/10 rule
    therefore leaves *more* than 10 % unchanged: 11 % of chosen text tokens with 10 words.
    """
    chosen = labels != IGNORE  # (B, L)
    if not chosen.any():
        raise ValueError("no position was chosen (every label is -100)")
    kind = vocab.modality(ids[chosen])  # (n_chosen,): 0 text, 1 video
    if (kind < 0).any():
        raise ValueError("a chosen position holds a special token: labels do not belong to ids")
    n = torch.where(kind == 1, vocab.n_visual, vocab.n_text).double()  # (n_chosen,)
    return (1 - mask_rate - random_rate) + random_rate * (1 / n).mean().item()


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class VideoBERTConfig:
    """Sizes of a :class:`VideoBERT`: a ``vocab_size`` joint vocabulary, sequences of at most
    ``max_len`` tokens, ``depth`` blocks of ``width`` with ``heads`` heads and a ``mlp_width`` MLP.
    ``dropout`` applies to the embeddings only (the blocks have none)."""

    vocab_size: int
    max_len: int
    width: int = 64
    depth: int = 2
    heads: int = 4
    mlp_width: int = 128
    n_segments: int = 2
    dropout: float = 0.0

    def __post_init__(self):
        for name in ("vocab_size", "max_len", "width", "depth", "heads", "mlp_width", "n_segments"):
            check_int(getattr(self, name), name)
        if self.width % self.heads:
            raise ValueError(f"heads={self.heads} must divide width={self.width}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout!r}")


class VideoBERT(nn.Module):
    """One BERT over the joint sequence: ``(ids, segments, mask) (B, L)`` -> hidden states ``(B, L, D)``.

    ``h = LN(E_tok[ids] + E_pos[0..L-1] + E_seg[segments])``, then ``depth`` pre-LN blocks
    (GELU MLP) attending to real tokens only, then a final LayerNorm.
    """

    def __init__(self, config: VideoBERTConfig):
        super().__init__()
        if not isinstance(config, VideoBERTConfig):
            raise ValueError(f"expected a VideoBERTConfig, got {type(config).__name__}")
        c = self.config = config
        d = c.width
        self.token_embed = nn.Embedding(c.vocab_size, d)
        self.position_embed = nn.Embedding(c.max_len, d)
        self.segment_embed = nn.Embedding(c.n_segments, d)
        for e in (self.token_embed, self.position_embed, self.segment_embed):
            nn.init.normal_(e.weight, std=0.02)  # BERT's init; N(0, 1) rows would swamp the tied MLM logits
        self.embed_norm = nn.LayerNorm(d)
        self.dropout = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(
            ResidualAttentionBlock(d, c.heads, mlp_width=c.mlp_width, activation=nn.GELU) for _ in range(c.depth)
        )
        self.norm = nn.LayerNorm(d)
        # MLM head as in BERT: transform, then decode with the (tied) token embedding plus a bias
        self.mlm_transform = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.LayerNorm(d))
        self.mlm_bias = nn.Parameter(torch.zeros(c.vocab_size))
        # alignment head on [CLS]: BERT's tanh pooler, then one logit
        self.alignment_head = nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, 1))

    def _check(self, ids, segments, mask) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        if not isinstance(ids, torch.Tensor) or ids.ndim != 2 or ids.dtype.is_floating_point or ids.dtype == torch.bool:
            raise ValueError(f"ids must be an integer tensor (B, L), got {getattr(ids, 'shape', type(ids).__name__)!r}")
        B, L = ids.shape
        if L > c.max_len:
            raise ValueError(f"sequences of {L} tokens are longer than max_len={c.max_len}")
        if ((ids < 0) | (ids >= c.vocab_size)).any():
            raise ValueError(f"ids must lie in [0, {c.vocab_size}), got values from {int(ids.min())} to {int(ids.max())}")
        if segments is None:
            segments = torch.zeros_like(ids)
        if segments.shape != ids.shape or segments.dtype.is_floating_point or segments.dtype == torch.bool:
            raise ValueError(f"segments must be an integer tensor of the ids' shape {(B, L)}, got {tuple(segments.shape)}")
        if ((segments < 0) | (segments >= c.n_segments)).any():
            raise ValueError(f"segments must lie in [0, {c.n_segments})")
        if mask is None:
            mask = torch.ones(B, L, dtype=torch.bool, device=ids.device)
        if mask.dtype != torch.bool or mask.shape != (B, L):
            raise ValueError(f"mask must be bool (B, L) = {(B, L)}, True = real token; got {mask.dtype} {tuple(mask.shape)}")
        if not mask.any(dim=1).all():
            raise ValueError("every sequence needs at least one real token (mask all False in some row)")
        return segments, mask

    def forward(self, ids: torch.Tensor, segments: torch.Tensor | None = None, mask: torch.Tensor | None = None):
        """``ids``, ``segments`` int ``(B, L)``, ``mask`` bool ``(B, L)`` (True = real) -> ``(B, L, D)``.

        ``segments`` defaults to all 0 and ``mask`` to all real.
        """
        return self.norm(self._run(ids, segments, mask))

    def _run(self, ids, segments, mask, return_weights: bool = False):
        """Embeddings and every block: ``(B, L, D)`` (and the last block's weights ``(B, h, L, L)``)."""
        segments, mask = self._check(ids, segments, mask)
        positions = torch.arange(ids.shape[1], device=ids.device)  # (L,)
        x = self.token_embed(ids) + self.position_embed(positions) + self.segment_embed(segments)  # (B, L, D)
        x = self.dropout(self.embed_norm(x))
        key_mask = mask[:, None, :]  # (B, 1, L): padding is never a key; padded queries are ignored later
        return run_blocks(self.blocks, x, key_mask, return_weights)

    @torch.no_grad()
    def attention_weights(self, ids: torch.Tensor, segments: torch.Tensor | None = None,
                          mask: torch.Tensor | None = None) -> torch.Tensor:
        """The last block's attention weights ``(B, h, L, L)``: row ``i`` is where token ``i`` looks."""
        return self._run(ids, segments, mask, return_weights=True)[1]

    def mlm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """``hidden (..., D)`` -> logits over the joint vocabulary ``(..., vocab_size)``."""
        return self.mlm_transform(hidden) @ self.token_embed.weight.T + self.mlm_bias

    def alignment_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """``hidden (B, L, D)`` -> ``(B,)``: logit that the text and the video belong together, from ``[CLS]``."""
        return self.alignment_head(hidden[:, 0])[:, 0]


# --------------------------------------------------------------------------- pre-training


@dataclass(frozen=True)
class PretrainConfig:
    """How to pre-train: ``steps`` AdamW steps (warm-up then cosine decay) of ``batch_size``
    sequences, split ``mix`` = (text-only, video-only, text+video) in proportion. A fraction
    ``negative_fraction`` of the text+video sequences has a mismatched video (alignment
    negatives); the loss is ``MLM + alignment_weight · BCE``."""

    steps: int = 300
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: int = 30
    seed: int = 0
    mask_prob: float = 0.15
    mix: tuple[float, float, float] = (0.25, 0.25, 0.5)
    negative_fraction: float = 0.5
    alignment_weight: float = 1.0

    def __post_init__(self):
        for name in ("steps", "batch_size"):
            check_int(getattr(self, name), name)
        check_int(self.warmup, "warmup", minimum=0)
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if not 0 < self.mask_prob <= 1:
            raise ValueError(f"mask_prob must lie in (0, 1], got {self.mask_prob!r}")
        if not 0 <= self.negative_fraction < 1:
            raise ValueError(f"negative_fraction must lie in [0, 1), got {self.negative_fraction!r}")
        if len(self.mix) != 3 or min(self.mix) < 0 or sum(self.mix) <= 0:
            raise ValueError(f"mix must be three non-negative weights (text, video, text+video), got {self.mix!r}")
        if self.kind_counts[2] < 1:
            raise ValueError(f"mix={self.mix} leaves no text+video sequence in a batch of {self.batch_size}")

    @property
    def kind_counts(self) -> tuple[int, int, int]:
        """Sequences per step of each kind: (text-only, video-only, text+video)."""
        total = sum(self.mix)
        n_text = round(self.batch_size * self.mix[0] / total)
        n_video = round(self.batch_size * self.mix[1] / total)
        return n_text, n_video, self.batch_size - n_text - n_video


def _check_texts(text_ids, vocab: JointVocabulary) -> list[list[int]]:
    """Validate captions of raw word ids: a non-empty list of non-empty lists."""
    if not isinstance(vocab, JointVocabulary):
        raise ValueError(f"vocab must be a JointVocabulary, got {type(vocab).__name__}")
    texts = [[int(w) for w in t] for t in text_ids]
    if not texts or any(len(t) == 0 for t in texts):
        raise ValueError("text_ids must hold at least one caption, and every caption at least one word")
    vocab.text_id(torch.tensor([w for t in texts for w in t]))  # raises on words outside the vocabulary
    return texts


def _check_videos(visual_ids, vocab: JointVocabulary) -> torch.Tensor:
    """Validate ``visual_ids (M, S)``: int64 visual words, ``M, S >= 1``."""
    if not isinstance(visual_ids, torch.Tensor) or visual_ids.ndim != 2 or visual_ids.dtype != torch.long:
        raise ValueError(f"visual_ids must be an int64 tensor (M, S), got {getattr(visual_ids, 'shape', visual_ids)!r}")
    if visual_ids.numel() == 0:
        raise ValueError(f"visual_ids must hold at least one video of at least one word, got {tuple(visual_ids.shape)}")
    vocab.visual_id(visual_ids)  # raises on words outside [0, n_visual)
    return visual_ids


def _check_pairs(text_ids, visual_ids, vocab: JointVocabulary) -> tuple[list[list[int]], torch.Tensor]:
    """Validate ``M`` pairs of raw ids: ``M`` captions and ``visual_ids (M, S)``."""
    texts, visual_ids = _check_texts(text_ids, vocab), _check_videos(visual_ids, vocab)
    if len(texts) != visual_ids.shape[0]:
        raise ValueError(f"{len(texts)} captions but {visual_ids.shape[0]} videos: pairs must match")
    return texts, visual_ids


def _caption_groups(texts: list[list[int]]) -> torch.Tensor:
    """``(M,)``: pairs with the same caption share a group number."""
    seen: dict[tuple[int, ...], int] = {}
    return torch.tensor([seen.setdefault(tuple(t), len(seen)) for t in texts])


def _other_caption(index: torch.Tensor, groups: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """For each pair in ``index (N,)``, a pair drawn uniformly among those whose caption differs: ``(N,)``.

    With the pairs sorted by group, the pairs outside group ``c`` are positions
    ``[0, start_c)`` and ``[start_c + n_c, M)``; a uniform draw ``r`` over the ``M - n_c`` of
    them maps to position ``r`` or ``r + n_c``.
    """
    counts = torch.bincount(groups)  # (G,)
    start = counts.cumsum(0) - counts  # (G,)
    order = groups.argsort(stable=True)  # (M,)
    c = groups[index]  # (N,)
    n_other = len(groups) - counts[c]  # (N,)
    if (n_other == 0).any():
        raise ValueError("every pair has the same caption: there is no mismatched video to use as a negative")
    r = (torch.rand(len(index), generator=g) * n_other).long().minimum(n_other - 1)  # (N,)
    return order[r + (r >= start[c]) * counts[c]]


def pretrain(
    model: VideoBERT,
    text_ids: Sequence[Sequence[int]],
    visual_ids: torch.Tensor,
    vocab: JointVocabulary,
    config: PretrainConfig = PretrainConfig(),
    *,
    progress: bool = True,
) -> dict[str, list[float]]:
    """Pre-train ``model`` on ``M`` (caption, video) pairs of raw ids; returns per-step losses
    ``{"loss", "mlm", "alignment"}``.

    Each step draws ``batch_size`` pairs with replacement and builds
    :attr:`PretrainConfig.kind_counts` text-only, video-only and text+video sequences, all
    masked by :func:`mask_tokens`, in one padded batch. The alignment loss (BCE on
    ``[CLS]``) runs on the text+video sequences; in ``negative_fraction`` of them the video
    is swapped for the video of a pair with a *different* caption, so every negative is a
    true negative. The MLM loss (cross-entropy on chosen positions) covers every sequence
    except those negatives, whose mismatched video would teach wrong text-video pairings.
    As with BERT's next-sentence task, alignment is judged on the masked input (one forward
    pass serves both losses). Same model initialisation and ``config.seed`` give the same run.
    """
    if not isinstance(model, VideoBERT):
        raise ValueError(f"model must be a VideoBERT, got {type(model).__name__}")
    if not isinstance(config, PretrainConfig):
        raise ValueError(f"config must be a PretrainConfig, got {type(config).__name__}")
    texts, visual_ids = _check_pairs(text_ids, visual_ids, vocab)
    if model.config.vocab_size != vocab.size:
        raise ValueError(f"the model has {model.config.vocab_size} token embeddings but the vocabulary {vocab.size} ids")
    longest = max(len(t) for t in texts) + visual_ids.shape[1] + 3  # [CLS] text [>] video [SEP]
    if longest > model.config.max_len:
        raise ValueError(f"the longest text+video sequence has {longest} tokens > max_len={model.config.max_len}")
    groups = _caption_groups(texts)
    n_text, n_video, n_joint = config.kind_counts
    n_neg = round(config.negative_fraction * n_joint)
    first_joint = n_text + n_video
    aligned = (torch.arange(n_joint) >= n_neg).float()  # (n_joint,): negatives come first
    M = len(texts)

    model.train()
    optimiser = Optimiser(model, config)
    g = torch.Generator().manual_seed(config.seed)
    history: dict[str, list[float]] = {"loss": [], "mlm": [], "alignment": []}
    bar = tqdm(range(config.steps), desc="VideoBERT", disable=not progress, leave=False, mininterval=0.5)
    for step in bar:
        pick = torch.randint(M, (config.batch_size,), generator=g).tolist()
        joint = pick[first_joint:]
        video_of = torch.tensor(joint)
        if n_neg:
            video_of[:n_neg] = _other_caption(video_of[:n_neg], groups, g)
        seqs = (
            [build_sequence(texts[i], None, vocab) for i in pick[:n_text]]
            + [build_sequence(None, visual_ids[i], vocab) for i in pick[n_text:first_joint]]
            + [build_sequence(texts[i], visual_ids[v], vocab) for i, v in zip(joint, video_of.tolist())]
        )
        ids, segments, mask = pad_batch(seqs)  # (B, L) each
        masked, labels = mask_tokens(ids, vocab, g, config.mask_prob)
        labels[first_joint : first_joint + n_neg] = IGNORE
        hidden = model(masked, segments, mask)  # (B, L, D)
        chosen = labels != IGNORE  # (B, L)
        mlm = F.cross_entropy(model.mlm_logits(hidden[chosen]), labels[chosen])  # logits (N_chosen, V)
        alignment = F.binary_cross_entropy_with_logits(model.alignment_logits(hidden[first_joint:]), aligned)
        loss = mlm + config.alignment_weight * alignment
        optimiser.step(loss)
        for key, value in (("loss", loss), ("mlm", mlm), ("alignment", alignment)):
            history[key].append(value.item())
        if step % 10 == 0:
            bar.set_postfix(mlm=f"{history['mlm'][-1]:.3f}", align=f"{history['alignment'][-1]:.3f}")
    bar.close()
    return history


# --------------------------------------------------------------------------- evaluation


@contextmanager
def _evaluating(model: nn.Module):
    """Eval mode and no gradients inside; the model's previous mode restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _joint_batch(texts, videos, vocab) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return pad_batch([build_sequence(t, v, vocab) for t, v in zip(texts, videos)])


def masked_token_accuracy(
    model: VideoBERT,
    text_ids: Sequence[Sequence[int]],
    visual_ids: torch.Tensor,
    vocab: JointVocabulary,
    modality: str,
    seed: int = 0,
    *,
    p: float = 0.15,
    batch_size: int = 256,
) -> float:
    """Accuracy of predicting the original token at masked positions of one ``modality``
    (``"text"`` or ``"video"``) of the text+video sequences of the ``M`` pairs.

    Positions of that modality are chosen as in :func:`mask_tokens` (probability ``p``, at
    least one per sequence) and all become ``[MASK]`` (no random or kept tokens: the model
    must predict each from the rest of its own modality and the other modality).
    """
    kinds = {"text": 0, "video": 1}
    if modality not in kinds:
        raise ValueError(f"modality must be 'text' or 'video', got {modality!r}")
    texts, visual_ids = _check_pairs(text_ids, visual_ids, vocab)
    g = torch.Generator().manual_seed(seed)
    correct = total = 0
    with _evaluating(model):
        for lo in range(0, len(texts), batch_size):
            ids, segments, mask = _joint_batch(texts[lo : lo + batch_size], visual_ids[lo : lo + batch_size], vocab)
            masked, labels = mask_tokens(ids, vocab, g, p, modality=kinds[modality], mask_rate=1.0, random_rate=0.0)
            chosen = labels != IGNORE  # (b, L)
            predicted = model.mlm_logits(model(masked, segments, mask)[chosen]).argmax(dim=-1)  # (N_chosen,)
            correct += (predicted == labels[chosen]).sum().item()
            total += int(chosen.sum())
    return correct / total


def alignment_accuracy(
    model: VideoBERT,
    text_ids: Sequence[Sequence[int]],
    visual_ids: torch.Tensor,
    vocab: JointVocabulary,
    seed: int = 0,
    *,
    batch_size: int = 256,
) -> float:
    """Accuracy of ``alignment_logit > 0`` on ``2M`` unmasked text+video sequences: each caption
    with its own video (positive) and with the video of a pair whose caption differs (negative)."""
    texts, visual_ids = _check_pairs(text_ids, visual_ids, vocab)
    g = torch.Generator().manual_seed(seed)
    own = torch.arange(len(texts))  # (M,)
    videos = torch.cat([own, _other_caption(own, _caption_groups(texts), g)])  # (2M,)
    aligned = torch.cat([torch.ones(len(own), dtype=torch.bool), torch.zeros(len(own), dtype=torch.bool)])  # (2M,)
    captions = texts + texts
    correct = 0
    with _evaluating(model):
        for lo in range(0, len(captions), batch_size):
            hi = lo + batch_size
            ids, segments, mask = _joint_batch(captions[lo:hi], visual_ids[videos[lo:hi]], vocab)
            predicted = model.alignment_logits(model(ids, segments, mask)) > 0  # (b,)
            correct += (predicted == aligned[lo:hi]).sum().item()
    return correct / len(captions)


def retrieval_scores(
    model: VideoBERT,
    text_ids: Sequence[Sequence[int]],
    visual_ids: torch.Tensor,
    vocab: JointVocabulary,
    *,
    batch_size: int = 512,
) -> torch.Tensor:
    """Alignment logit of every caption with every video: ``(Q, M)`` for ``Q`` captions and
    ``visual_ids (M, S)``. Row ``q`` ranks the videos for text query ``q``.

    A single-stream model has no separate text and video embeddings to compare: each of the
    ``Q·M`` pairs is its own forward pass (batched), which is why VideoBERT-style retrieval
    costs ``O(Q·M)`` model evaluations, against ``O(Q + M)`` for a two-stream model.
    """
    texts, visual_ids = _check_texts(text_ids, vocab), _check_videos(visual_ids, vocab)
    Q, M = len(texts), visual_ids.shape[0]
    scores = torch.empty(Q * M)  # (Q·M,), query-major
    with _evaluating(model):
        for lo in range(0, Q * M, batch_size):
            flat = range(lo, min(lo + batch_size, Q * M))
            ids, segments, mask = _joint_batch([texts[i // M] for i in flat], [visual_ids[i % M] for i in flat], vocab)
            scores[lo : lo + len(flat)] = model.alignment_logits(model(ids, segments, mask))
    return scores.reshape(Q, M)


def _check_relevant(scores: torch.Tensor | None, relevant: torch.Tensor) -> None:
    if not isinstance(relevant, torch.Tensor) or relevant.dtype != torch.bool or relevant.ndim != 2:
        raise ValueError(f"relevant must be a bool tensor (Q, M), got {getattr(relevant, 'shape', relevant)!r}")
    if scores is not None and (scores.ndim != 2 or scores.shape != relevant.shape):
        raise ValueError(f"scores {tuple(scores.shape)} and relevant {tuple(relevant.shape)} must both be (Q, M)")
    if not relevant.any(dim=1).all():
        raise ValueError("every query needs at least one relevant item, or its recall is undefined")


def recall_at_k(scores: torch.Tensor, relevant: torch.Tensor, ks: Sequence[int] = (1, 5)) -> dict[int, float]:
    """Fraction of queries with a relevant item among their ``k`` best-scored items, for each ``k``.

    ``scores (Q, M)`` (higher = better), ``relevant (Q, M)`` bool. Ties are broken towards the
    lower index (stable sort), so the result is deterministic.
    """
    _check_relevant(scores, relevant)
    order = scores.argsort(dim=1, descending=True, stable=True)  # (Q, M): best first
    hits = relevant.gather(1, order)  # (Q, M): relevance in ranked order
    first = hits.float().argmax(dim=1)  # (Q,): rank of the best-ranked relevant item (0-based)
    out = {}
    for k in ks:
        check_int(k, "k")
        out[k] = (first < k).sum().item() / len(first)
    return out


def chance_recall(relevant: torch.Tensor, k: int) -> float:
    """Expected recall@k of a uniformly random ranking, exactly.

    A query with ``r`` relevant items among ``M`` misses all of them in the top ``k`` with
    probability ``C(M-r, k) / C(M, k)``, so its expected hit is ``1 - C(M-r, k)/C(M, k)``
    (``k/M`` for ``r = 1``); the result averages that over queries.
    """
    _check_relevant(None, relevant)
    check_int(k, "k")
    M = relevant.shape[1]
    k = min(k, M)  # a top-k longer than the list is the whole list
    return sum(1 - math.comb(M - r, k) / math.comb(M, k) for r in relevant.sum(dim=1).tolist()) / relevant.shape[0]
