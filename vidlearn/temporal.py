"""Attention along time: a temporal attention layer and X-CLIP's cross-frame attention.

* :class:`TemporalAttention` — multi-head self-attention over the ``T`` frame features of a
  clip ``(B, T, D)``, bidirectional or causal, with sinusoidal or learned temporal encodings,
  padding masks for clips of different lengths, and incremental (one frame at a time)
  decoding with a key/value cache that gives exactly the full causal computation.
* :class:`CrossFrameAttention` — X-CLIP's cross-frame communication (Ni et al., 2022,
  arXiv 2208.02816, Eqs. 7–9): each frame's [class] token is projected to a *message
  token*, the ``T`` message tokens attend to each other (cross-frame fusion attention, CFA),
  each message token joins its own frame's tokens (intra-frame diffusion attention, IFA:
  what the messages gathered diffuses into the frame), and is dropped before the MLP.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vidlearn.attention import MultiHeadAttention, merge_heads, scaled_dot_product_attention, split_heads
from vidlearn.blocks import QuickGELU
from vidlearn.masks import causal_mask, combine_masks, padding_mask
from vidlearn.positional import LearnedPositionalEncoding, sinusoidal_encoding

__all__ = ["KVCache", "TemporalAttention", "CrossFrameAttention"]


@dataclass
class KVCache:
    """Keys and values of the frames seen so far: each ``(B, h, t, e)``."""

    keys: torch.Tensor
    values: torch.Tensor

    @property
    def length(self) -> int:
        return self.keys.shape[-2]


class TemporalAttention(nn.Module):
    """Self-attention over frames: ``(B, T, D) -> (B, T, D)``.

    ``causal=True`` lets frame ``t`` attend to frames ``s <= t`` only. ``positional`` is
    ``"sinusoidal"`` (any length), ``"learned"`` (at most ``max_frames``) or ``None``.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        *,
        causal: bool = False,
        positional: str | None = "sinusoidal",
        max_frames: int = 64,
    ):
        super().__init__()
        if positional not in ("sinusoidal", "learned", None):
            raise ValueError(f"positional must be 'sinusoidal', 'learned' or None, got {positional!r}")
        self.d_model, self.causal, self.positional = d_model, causal, positional
        self.attn = MultiHeadAttention(d_model, n_heads)
        self.learned = LearnedPositionalEncoding(max_frames, d_model) if positional == "learned" else None

    def _encode(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Add the temporal encoding of positions ``start .. start+T-1`` to ``x (B, T, D)``."""
        T = x.shape[1]
        if self.positional == "sinusoidal":
            pe = sinusoidal_encoding(start + T, self.d_model, dtype=x.dtype).to(x.device)[start:]  # (T, D)
            return x + pe
        if self.positional == "learned":
            if start + T > self.learned.max_positions:
                raise ValueError(f"frame {start + T - 1} is beyond the learned table of {self.learned.max_positions}")
            return x + self.learned.table[start : start + T]
        return x

    def mask(self, T: int, lengths=None, device=None) -> torch.Tensor | None:
        """The boolean mask used for ``T`` frames: causal and/or padding (True = may attend)."""
        causal = causal_mask(T, device=device) if self.causal else None
        padding = padding_mask(lengths, T, device=device) if lengths is not None else None
        return combine_masks(causal, padding)

    def forward(self, x: torch.Tensor, lengths=None, return_weights: bool = False):
        """``x (B, T, D)``; ``lengths`` (B,) marks frames ``>= lengths[b]`` as padding."""
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"expected frame features (B, T, {self.d_model}), got {tuple(x.shape)}")
        mask = self.mask(x.shape[1], lengths, x.device)  # (T, T) or (B, 1|T, T)
        return self.attn(self._encode(x), mask=mask, return_weights=return_weights)

    def empty_cache(self, batch: int, *, dtype=torch.float32, device=None) -> KVCache:
        e = self.d_model // self.attn.n_heads
        empty = torch.zeros(batch, self.attn.n_heads, 0, e, dtype=dtype, device=device)  # (B, h, 0, e)
        return KVCache(empty, empty.clone())

    def _check_step(self, x_t, cache) -> None:
        """Clear errors for :meth:`step`'s inputs, before ``cat`` or broadcasting fails opaquely."""
        h = self.attn.n_heads
        e = self.d_model // h
        if not isinstance(cache, KVCache):
            raise ValueError(f"cache must be a KVCache (start with empty_cache(batch)), got {type(cache).__name__}")
        for name, kv in (("keys", cache.keys), ("values", cache.values)):
            if not isinstance(kv, torch.Tensor) or kv.ndim != 4 or kv.shape[1] != h or kv.shape[3] != e:
                shape = tuple(kv.shape) if isinstance(kv, torch.Tensor) else type(kv).__name__
                raise ValueError(
                    f"cache {name} must have shape (B, {h}, t, {e}) for this layer ({h} heads of width {e}), got {shape}"
                )
        if cache.keys.shape != cache.values.shape:
            raise ValueError(
                f"cache keys {tuple(cache.keys.shape)} and values {tuple(cache.values.shape)} must have the same shape"
            )
        if not isinstance(x_t, torch.Tensor) or x_t.ndim != 2 or x_t.shape[-1] != self.d_model:
            shape = tuple(x_t.shape) if isinstance(x_t, torch.Tensor) else type(x_t).__name__
            raise ValueError(
                f"step takes one frame per clip, x_t of shape (B, {self.d_model}), got {shape}"
                + ("; for a whole clip (B, T, D) call the layer itself" if isinstance(x_t, torch.Tensor) and x_t.ndim == 3 else "")
            )
        if x_t.shape[0] != cache.keys.shape[0]:
            raise ValueError(
                f"x_t has {x_t.shape[0]} clips but the cache holds {cache.keys.shape[0]}: the batch sizes must match"
            )

    def step(self, x_t: torch.Tensor, cache: KVCache) -> tuple[torch.Tensor, KVCache]:
        """Causal attention for the next frame ``x_t (B, D)`` given the cache of earlier frames.

        The new frame's key and value are appended to the cache; its query attends to every
        cached frame and itself. Over a clip this equals ``forward`` with ``causal=True``.

        ``x_t`` must be ``(B, d_model)`` with ``B`` the cache's batch, and ``cache`` a
        :class:`KVCache` of this layer's heads and head width; anything else is a ``ValueError``.

        Cost per clip, with ``t`` frames cached: ``4d² + 2(t + 1)d`` MACs, i.e. ``O(d² + t·d)``:
        the new frame's four projections (Q, K, V and the output, ``d²`` each) plus its scores
        and weighted sum over ``t + 1`` keys. The cache saves the ``2t·d²`` MACs of
        re-projecting the earlier frames' keys and values.
        """
        if not self.causal:
            raise ValueError("incremental decoding needs causal=True: a bidirectional layer looks at future frames")
        self._check_step(x_t, cache)
        x = self._encode(x_t[:, None], start=cache.length)  # (B, 1, D)
        a = self.attn
        q = split_heads(a.w_q(x), a.n_heads)  # (B, h, 1, e)
        k = torch.cat([cache.keys, split_heads(a.w_k(x), a.n_heads)], dim=-2)  # (B, h, t+1, e)
        v = torch.cat([cache.values, split_heads(a.w_v(x), a.n_heads)], dim=-2)  # (B, h, t+1, e)
        out = a.w_o(merge_heads(scaled_dot_product_attention(q, k, v)))  # (B, 1, D)
        return out[:, 0], KVCache(k, v)


class CrossFrameAttention(nn.Module):
    """X-CLIP cross-frame communication block over frame tokens ``(B, T, 1 + N, D)``.

    Token 0 of every frame is its [class] token. With ``z_t`` the tokens of frame ``t``::

        m_t   = W_msg z_t[0]                          message token        (B, T, D)
        m     = m + CFA(LN(m))                         cross-frame fusion attention (over T)
        [z_t; m_t] += IFA(LN([z_t; m_t]))              intra-frame diffusion attention, per
                                                       frame, over 1 + N + 1 tokens
        z_t   = [z_t; m_t][:-1]                        drop the message token
        z_t   = z_t + MLP(LN(z_t))
    """

    def __init__(self, d_model: int, n_heads: int, *, mlp_ratio: int = 4):
        super().__init__()
        self.message = nn.Linear(d_model, d_model)
        self.ln_message = nn.LayerNorm(d_model)
        self.cfa = MultiHeadAttention(d_model, n_heads)
        self.ln_1 = nn.LayerNorm(d_model)
        self.ifa = MultiHeadAttention(d_model, n_heads)
        self.ln_2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, mlp_ratio * d_model), QuickGELU(), nn.Linear(mlp_ratio * d_model, d_model)
        )

    def forward(self, z: torch.Tensor, return_messages: bool = False):
        if z.ndim != 4:
            raise ValueError(f"expected frame tokens (B, T, 1 + N, D) with the [class] token first, got {tuple(z.shape)}")
        B, T, L, D = z.shape
        m = self.message(z[:, :, 0])  # (B, T, D): one message per frame, from its [class] token
        m = m + self.cfa(self.ln_message(m))  # (B, T, D): cross-frame fusion attention among messages
        zm = torch.cat([z, m[:, :, None]], dim=2).reshape(B * T, L + 1, D)  # (B·T, 1+N+1, D)
        zm = zm + self.ifa(self.ln_1(zm))  # intra-frame diffusion attention, each frame on its own
        z = zm[:, :L].reshape(B, T, L, D)  # (B, T, 1+N, D): the message token is dropped
        z = z + self.mlp(self.ln_2(z))
        return (z, m) if return_messages else z
