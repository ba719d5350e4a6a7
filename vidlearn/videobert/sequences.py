"""VideoBERT's input sequences: ``[CLS] text [>] video [SEP]`` (:func:`build_sequence`),
right-padded batches ``(B, L)`` (:func:`pad_batch`) and BERT's 15 % / 80-10-10 masking with
random replacements kept inside the token's own modality (:func:`mask_tokens`,
:func:`expected_unchanged_share`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vidlearn.videobert.visual_words import _check_generator
from vidlearn.videobert.vocab import JointVocabulary

__all__ = ["IGNORE", "build_sequence", "pad_batch", "mask_tokens", "expected_unchanged_share"]

IGNORE = -100  # label of a position the MLM loss skips (F.cross_entropy's ignore_index)


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
