"""Visual words: clip features quantised by hierarchical k-means (VideoBERT's visual vocabulary).

:func:`segment_features` cuts videos into segments and encodes each, ``(B, T, C, H, W) ->
(B, S, F)``; :func:`kmeans` clusters ``(M, F)`` features; :class:`HierarchicalKMeans` builds
the ``k``-ary tree whose leaves are the visual words (the paper: ``k = 12``, depth 4).
A feature goes down the tree greedily (nearest child at each level), so its word is an
approximation of the nearest leaf that looks at ``k·depth`` centroids instead of ``k^depth``.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
from torch import nn

from vidlearn.validation import check_int

__all__ = ["segment_features", "kmeans", "HierarchicalKMeans"]


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
