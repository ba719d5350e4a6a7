"""Scaled dot-product attention and multi-head attention.

Two paths compute the same thing:

* the **from-scratch** path writes out ``softmax(Q Kᵀ / √d_k + M) V`` with a numerically
  stable softmax, and can return the attention weights;
* the **fast** path calls ``torch.nn.functional.scaled_dot_product_attention`` (fused
  kernels, no weights returned).

Masks follow :mod:`vidlearn.masks`: boolean ``True`` = may attend, or additive floats.
A query whose keys are all blocked gets an all-zero output (never NaN).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vidlearn.masks import validate_mask

__all__ = [
    "softmax",
    "attention_weights",
    "scaled_dot_product_attention",
    "split_heads",
    "merge_heads",
    "MultiHeadAttention",
]


def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Stable softmax ``exp(x - max) / Σ exp(x - max)`` along ``dim``.

    Subtracting the row maximum changes nothing mathematically (softmax is shift
    invariant) but keeps ``exp`` from overflowing. A row that is ``-inf`` everywhere
    (every key blocked) returns zeros instead of ``0/0 = NaN``.
    """
    m = x.amax(dim=dim, keepdim=True)
    # An all -inf row has max -inf; shifting by it would give (-inf) - (-inf) = NaN.
    m = torch.where(m == float("-inf"), torch.zeros_like(m), m).detach()
    e = torch.exp(x - m)
    s = e.sum(dim=dim, keepdim=True)
    return e / torch.where(s == 0, torch.ones_like(s), s)


def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim < 2:
            raise ValueError(f"{name} must have shape (..., L, d), got {tuple(t.shape)}")
        if not t.dtype.is_floating_point:
            raise ValueError(f"{name} must be a floating tensor, got dtype {t.dtype}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"queries and keys need the same width d_k: q has {tuple(q.shape)}, k has {tuple(k.shape)}"
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"keys and values need the same length L_k: k has {tuple(k.shape)}, v has {tuple(v.shape)}"
        )
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"q, k, v must share a dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    try:
        torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError:
        raise ValueError(
            f"the leading (batch/head) axes of q {tuple(q.shape)}, k {tuple(k.shape)}, "
            f"v {tuple(v.shape)} do not broadcast"
        ) from None


def attention_weights(
    q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None = None, *, scale: float | None = None
) -> torch.Tensor:
    """Attention weights ``softmax(q kᵀ · scale + mask)``: ``(..., L_q, L_k)``, rows sum to 1.

    ``scale`` defaults to ``1/√d_k``. Rows whose keys are all blocked are all zero.
    """
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    logits = (q @ k.transpose(-2, -1)) * scale  # (..., L_q, L_k)
    if mask is not None:
        validate_mask(mask, logits.shape)
        if mask.dtype == torch.bool:
            logits = logits.masked_fill(~mask, float("-inf"))
        else:
            logits = logits + mask.to(logits.dtype)
    return softmax(logits, dim=-1)


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    return_weights: bool = False,
    *,
    scale: float | None = None,
    fast: bool = False,
):
    """``softmax(q kᵀ/√d_k + mask) v``.

    Shapes: ``q (..., L_q, d_k)``, ``k (..., L_k, d_k)``, ``v (..., L_k, d_v)``;
    ``mask`` broadcasts to ``(..., L_q, L_k)``. Returns ``(..., L_q, d_v)``, and the
    weights ``(..., L_q, L_k)`` as a second value if ``return_weights``.

    ``fast=True`` uses torch's fused kernel (no weights available).
    """
    if fast:
        if return_weights:
            raise ValueError("the fast path does not compute weights; use fast=False with return_weights=True")
        return _fast_attention(q, k, v, mask, scale)
    _check_qkv(q, k, v)
    w = attention_weights(q, k, mask, scale=scale)  # (..., L_q, L_k)
    out = w @ v  # (..., L_q, d_v)
    return (out, w) if return_weights else out


def _fast_attention(q, k, v, mask, scale):
    """torch's fused kernel. Inputs are validated only when torch rejects them, so the
    happy path pays no Python overhead, and a bad input still gets the course's message."""
    if mask is not None and mask.dtype.is_floating_point and mask.dtype != q.dtype:
        mask = mask.to(q.dtype)
    try:
        if mask is not None and mask.dtype != torch.bool and not mask.dtype.is_floating_point:
            raise RuntimeError("integer mask")  # torch would accept some of these silently
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    except (RuntimeError, TypeError, ValueError, IndexError):
        _check_qkv(q, k, v)
        if mask is not None:
            logits_shape = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2]) + (q.shape[-2], k.shape[-2])
            validate_mask(mask, logits_shape)
        raise


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """``(B, L, h·e) -> (B, h, L, e)``: head ``i`` owns channels ``i·e .. (i+1)·e - 1``."""
    if x.shape[-1] % n_heads:
        raise ValueError(f"width {x.shape[-1]} is not divisible by n_heads={n_heads}")
    return rearrange(x, "... l (h e) -> ... h l e", h=n_heads)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``(B, h, L, e) -> (B, L, h·e)``, the inverse of :func:`split_heads`."""
    return rearrange(x, "... h l e -> ... l (h e)")


class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate Q, K, V and output projections.

    ``MHA(X_q, X_kv) = concat_i(attn(X_q W_Q^i, X_kv W_K^i, X_kv W_V^i)) W_O`` with
    ``h`` heads of width ``d_model / h``.

    Inputs ``x (B, L_q, D)`` and optional ``context (B, L_k, D)`` (self-attention when
    omitted); unbatched ``(L, D)`` inputs work too. ``mask`` is ``(L_q, L_k)``,
    ``(B, L_q, L_k)`` / ``(B, 1, L_k)`` (per clip), or ``(B, h, L_q, L_k)`` (per head).
    """

    def __init__(self, d_model: int, n_heads: int, *, bias: bool = True, fast: bool = True):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        self.d_model, self.n_heads, self.fast = d_model, n_heads, fast
        self.d_head = d_model // n_heads
        self.w_q = nn.Linear(d_model, d_model, bias=bias)
        self.w_k = nn.Linear(d_model, d_model, bias=bias)
        self.w_v = nn.Linear(d_model, d_model, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        return_weights: bool = False,
    ):
        context = x if context is None else context
        for name, t in (("x", x), ("context", context)):
            if t.ndim not in (2, 3) or t.shape[-1] != self.d_model:
                raise ValueError(
                    f"{name} must have shape (B, L, {self.d_model}) or (L, {self.d_model}), got {tuple(t.shape)}"
                )
        if x.ndim != context.ndim:
            raise ValueError(
                f"x {tuple(x.shape)} and context {tuple(context.shape)} must both be batched (B, L, D) "
                "or both unbatched (L, D)"
            )
        unbatched = x.ndim == 2
        if unbatched:
            x, context = x[None], context[None]
        if mask is not None and mask.ndim == 3:
            mask = mask[:, None]  # (B, 1, L_q, L_k): the same mask for every head
        q = split_heads(self.w_q(x), self.n_heads)  # (B, h, L_q, e)
        k = split_heads(self.w_k(context), self.n_heads)  # (B, h, L_k, e)
        v = split_heads(self.w_v(context), self.n_heads)  # (B, h, L_k, e)
        use_fast = self.fast and not return_weights
        res = scaled_dot_product_attention(q, k, v, mask, return_weights, fast=use_fast)
        out, w = res if return_weights else (res, None)
        out = self.w_o(merge_heads(out))  # (B, L_q, D)
        if unbatched:
            out, w = out[0], (w[0] if w is not None else None)
        return (out, w) if return_weights else out
