"""Two-stage retrieval: a cheap model shortlists, an expensive one orders the shortlist.

A dual encoder scores ``Q`` queries against ``M`` items with ``Q·M`` dot products; a joint
(single-stream) model needs a forward pass per pair. Re-ranking spends the joint passes only on
each query's top ``k`` of the first stage: ``Q·k`` joint passes instead of ``Q·M``.

Two facts follow from the construction and are tested: the set of the top ``k`` never changes
(so recall@k of the result equals the first stage's), and the order inside it is the second
stage's, so recall@1 can only move towards what the joint model would get on that shortlist.
"""

from __future__ import annotations

from typing import Callable

import torch

from vidlearn.validation import check_int

__all__ = ["shortlist", "rerank"]


def _check_scores(scores) -> torch.Tensor:
    if not isinstance(scores, torch.Tensor) or scores.ndim != 2 or not scores.dtype.is_floating_point:
        raise ValueError(f"scores must be a floating-point tensor (Q, M), got "
                         f"{getattr(scores, 'dtype', type(scores).__name__)} {tuple(getattr(scores, 'shape', ()))}")
    if 0 in scores.shape:
        raise ValueError(f"scores must have at least one query and one item, got shape {tuple(scores.shape)}")
    if not torch.isfinite(scores).all():
        raise ValueError("scores must be finite (a NaN or inf would make the order arbitrary)")
    return scores


def shortlist(scores: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k`` best items of each query, best first: ``scores (Q, M)`` -> indices ``(Q, k)``.

    Ties go to the lower index (stable sort), the same rule as
    :func:`vidlearn.videobert.recall_at_k`, so the shortlist is the top ``k`` that recall@k counts.
    """
    return _ranking(scores, k)[:, :k]  # (Q, k)


def _ranking(scores, k: int) -> torch.Tensor:
    """Every item of each query, best first ``(Q, M)``, after checking ``scores`` and ``k``."""
    scores = _check_scores(scores)
    check_int(k, "k")
    if k > scores.shape[1]:
        raise ValueError(f"k={k} is longer than the {scores.shape[1]} items to choose from")
    return scores.argsort(dim=1, descending=True, stable=True)  # (Q, M)


def rerank(first: torch.Tensor, k: int, score_pairs: Callable[[int, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Re-rank each query's top ``k`` of ``first (Q, M)`` by a second model.

    ``score_pairs(q, items)`` gets a query index and its shortlist ``items (k,)`` (int64 indices
    into the ``M`` items) and returns the second model's scores ``(k,)``, higher = better; it is
    called once per query, so a joint model pays ``k`` passes per query.

    Returns scores ``(Q, M)`` (higher = better) that encode the final order: the shortlist in the
    second model's order (ties: the first stage's order), then every other item in the first
    stage's order. The values are ``-rank`` (0 for the best) in float64, whatever ``first``'s dtype:
    a bfloat16 or float16 rank would lose whole numbers past 256 or 2048 and tie distinct ranks.
    """
    if not callable(score_pairs):
        raise ValueError(f"score_pairs must be callable (query index, items (k,)) -> scores (k,), got "
                         f"{type(score_pairs).__name__}")
    order = _ranking(first, k)  # (Q, M): the first stage's ranking, re-ordered in place below
    Q, M = order.shape
    top = order[:, :k].clone()  # (Q, k): the shortlist, kept apart from the rows being rewritten
    for q in range(Q):
        second = score_pairs(q, top[q].clone())  # a copy: the callee may not edit our shortlist
        if not isinstance(second, torch.Tensor) or second.shape != (k,) or not second.dtype.is_floating_point:
            raise ValueError(f"score_pairs must return a floating-point tensor of shape ({k},) for query {q}, got "
                             f"{getattr(second, 'dtype', type(second).__name__)} "
                             f"{tuple(getattr(second, 'shape', ()))}")
        if not torch.isfinite(second).all():
            raise ValueError(f"score_pairs returned a non-finite score for query {q}")
        # stable: equal second-stage scores keep the first stage's order
        order[q, :k] = top[q][second.detach().cpu().argsort(descending=True, stable=True)]
    ranks = torch.empty_like(order)  # (Q, M): rank of each item
    ranks.scatter_(1, order, torch.arange(M).expand(Q, M).contiguous())
    return -ranks.to(torch.float64)  # (Q, M), exact for any M below 2**53
