"""Evaluating VideoBERT: masked-token and alignment accuracy, the ``(Q, M)`` retrieval scores
of a single-stream model (one joint pass per caption-video pair), recall@k and its exact
chance level."""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import contextmanager

import torch
from torch import nn

from vidlearn.validation import check_int
from vidlearn.videobert.model import VideoBERT
from vidlearn.videobert.pairs import _caption_groups, _check_pairs, _check_texts, _check_videos, _other_caption
from vidlearn.videobert.sequences import IGNORE, build_sequence, mask_tokens, pad_batch
from vidlearn.videobert.vocab import JointVocabulary

__all__ = [
    "masked_token_accuracy",
    "alignment_accuracy",
    "retrieval_scores",
    "recall_at_k",
    "chance_recall",
]


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
