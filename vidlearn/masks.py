"""Attention masks, with one convention for the whole course.

A **boolean** mask says which key each query may look at: ``True`` = may attend,
``False`` = blocked. This is the meaning ``torch.nn.functional.scaled_dot_product_attention``
gives a boolean ``attn_mask`` (and the opposite of ``nn.MultiheadAttention``'s masks,
where ``True`` means *blocked*; see :func:`to_torch_mha`).

An **additive** (float) mask is added to the logits before the softmax: ``0`` keeps a
pair, ``-inf`` blocks it, any other value biases it.

Masks broadcast against the attention logits, whose shape is ``(..., L_q, L_k)``.

Why a fully blocked row needs care: with ``-inf`` logits everywhere in a row, softmax
computes ``exp(-inf - max) / sum`` with ``max = -inf``, i.e. ``exp(nan) / 0 = nan``, and
the NaN then spreads through every later layer (and every gradient). The course's
softmax (:func:`vidlearn.attention.softmax`) returns an all-zero row instead: a query
that may attend to nothing receives nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = [
    "causal_mask",
    "padding_mask",
    "combine_masks",
    "to_additive",
    "to_torch_mha",
    "validate_mask",
]


def causal_mask(T: int, *, device: torch.device | str | None = None) -> torch.Tensor:
    """Boolean ``(T, T)`` mask: query ``t`` may attend to keys ``s <= t`` (no peeking ahead)."""
    if not isinstance(T, int) or T < 1:
        raise ValueError(f"causal_mask needs a positive integer number of frames T, got {T!r}")
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()  # (T, T)


def padding_mask(
    lengths: Sequence[int] | torch.Tensor, T: int, *, device: torch.device | str | None = None
) -> torch.Tensor:
    """Boolean key mask ``(B, 1, T)`` for clips of different lengths padded to ``T`` frames.

    Clip ``b`` has real frames ``0 .. lengths[b]-1``; its padded frames may not be attended
    to. The singleton query axis lets it broadcast against ``(B, L_q, T)`` logits.
    """
    lengths = torch.as_tensor(lengths, device=device)
    if lengths.ndim != 1:
        raise ValueError(f"padding_mask expects a 1-D sequence of lengths, got shape {tuple(lengths.shape)}")
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise ValueError(f"padding_mask expects integer lengths, got dtype {lengths.dtype}")
    if (lengths < 0).any() or (lengths > T).any():
        raise ValueError(f"every length must lie in [0, T={T}], got {lengths.tolist()}")
    positions = torch.arange(T, device=lengths.device)  # (T,)
    return (positions[None, :] < lengths[:, None])[:, None, :]  # (B, 1, T)


def to_additive(mask: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Turn a boolean mask into an additive one (``True -> 0``, ``False -> -inf``).

    A float mask is already additive and passes unchanged (cast only if ``dtype`` is given);
    a boolean one becomes ``dtype`` (float32 by default).
    """
    if mask.dtype == torch.bool:
        out = torch.zeros(mask.shape, dtype=dtype or torch.float32, device=mask.device)
        return out.masked_fill(~mask, float("-inf"))
    if mask.dtype.is_floating_point:
        return mask if dtype is None else mask.to(dtype)
    raise ValueError(f"a mask must be bool (True = may attend) or floating (additive), got dtype {mask.dtype}")


def combine_masks(*masks: torch.Tensor | None) -> torch.Tensor | None:
    """Combine masks so that a pair is allowed only if every mask allows it.

    Boolean masks are AND-ed; if any mask is additive, all are converted to additive and
    summed. ``None`` entries are ignored. Shapes broadcast.
    """
    present = [m for m in masks if m is not None]
    if not present:
        return None
    for m in present:
        if not (m.dtype == torch.bool or m.dtype.is_floating_point):
            raise ValueError(f"cannot combine a mask of dtype {m.dtype}: use bool (True = may attend) or float")
    if all(m.dtype == torch.bool for m in present):
        out = present[0]
        for m in present[1:]:
            out = out & m
        return out
    dtype = next(m.dtype for m in present if m.dtype.is_floating_point)
    out = to_additive(present[0], dtype)
    for m in present[1:]:
        out = out + to_additive(m, dtype)
    return out


def to_torch_mha(mask: torch.Tensor) -> torch.Tensor:
    """Convert a course mask to ``nn.MultiheadAttention``'s convention (``True`` = blocked)."""
    if mask.dtype == torch.bool:
        return ~mask
    return to_additive(mask)


def validate_mask(mask: torch.Tensor, logits_shape: Sequence[int], *, name: str = "mask") -> None:
    """Raise ``ValueError`` unless ``mask`` is bool/float and broadcasts to ``logits_shape``.

    ``logits_shape`` is ``(..., L_q, L_k)``; the error message names the shape expected.
    """
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(mask).__name__}")
    if not (mask.dtype == torch.bool or mask.dtype.is_floating_point):
        raise ValueError(
            f"{name} has dtype {mask.dtype}; expected torch.bool (True = may attend) "
            "or a floating dtype (additive: 0 keeps, -inf blocks)"
        )
    shape = tuple(logits_shape)
    *_, Lq, Lk = shape
    ok = mask.ndim <= len(shape) and all(
        m in (1, s) for m, s in zip(reversed(mask.shape), reversed(shape))
    )
    if not ok:
        raise ValueError(
            f"{name} has shape {tuple(mask.shape)}, which does not broadcast to the attention "
            f"logits {shape}; expected ({Lq}, {Lk}) or a shape broadcastable to {shape} "
            f"(queries L_q={Lq} on the second-to-last axis, keys L_k={Lk} on the last)"
        )
