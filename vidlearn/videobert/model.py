"""The VideoBERT model: token and position embeddings, a :class:`~vidlearn.crossmodal.SingleStreamEncoder`
(segment embedding, embedding LayerNorm, pre-LN blocks) over the joint sequence, a final
LayerNorm, an MLM head tied to the token embedding and an alignment head on ``[CLS]``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vidlearn.crossmodal import SingleStreamEncoder
from vidlearn.validation import check_int

__all__ = ["VideoBERTConfig", "VideoBERT"]


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

    The model owns the token and position embeddings, the final LayerNorm and the heads; the
    segment embedding, the embedding LayerNorm and dropout and the blocks are its
    :attr:`encoder`, a :class:`~vidlearn.crossmodal.SingleStreamEncoder` run on the joined
    sequence (:meth:`~vidlearn.crossmodal.SingleStreamEncoder.encode_joined`): the text/video
    split point differs per row, so the sequence comes joined, with a segment id per token.
    """

    def __init__(self, config: VideoBERTConfig):
        super().__init__()
        if not isinstance(config, VideoBERTConfig):
            raise ValueError(f"expected a VideoBERTConfig, got {type(config).__name__}")
        c = self.config = config
        d = c.width
        self.token_embed = nn.Embedding(c.vocab_size, d)
        self.position_embed = nn.Embedding(c.max_len, d)
        # The segment table is drawn here, between the position table and the re-initialisation,
        # and handed to the encoder: the seeded draws keep the order they had when VideoBERT held
        # it, so a seed gives the same model (and chapter 6 the same numbers).
        segment_embed = nn.Embedding(c.n_segments, d)
        for e in (self.token_embed, self.position_embed, segment_embed):
            nn.init.normal_(e.weight, std=0.02)  # BERT's init; N(0, 1) rows would swamp the tied MLM logits
        # segment embedding, LN(E_tok + E_pos + E_seg), dropout and the blocks: the course's one joint stream
        self.encoder = SingleStreamEncoder(d, c.heads, c.mlp_width, c.depth, c.n_segments, embed_norm=True,
                                           dropout=c.dropout, segment_embed=segment_embed.weight.detach())
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
        x = self.token_embed(ids) + self.position_embed(positions)  # (B, L, D)
        # padding is never a key; padded queries are ignored later
        return self.encoder.encode_joined(x, segments, mask, return_weights=return_weights)

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
