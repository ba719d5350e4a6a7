"""(caption, video) pairs of raw ids, as :func:`~vidlearn.videobert.pretrain.pretrain` and the
metrics take them: validation, caption groups, and true negatives (a video whose caption differs)."""

from __future__ import annotations

import torch

from vidlearn.videobert.vocab import JointVocabulary


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
