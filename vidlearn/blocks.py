"""The transformer block: a residual stream that attention and an MLP write into.

* :class:`QuickGELU` — ``x · σ(1.702 x)``, CLIP's cheap approximation of GELU.
* :class:`ResidualAttentionBlock` — the block every model of the course is built from::

      pre-LN  (CLIP, ViT, ViViT):  x = x + attn(LN₁(x));   x = x + MLP(LN₂(x))
      post-LN (Vaswani et al.):    x = LN₁(x + attn(x));   x = LN₂(x + MLP(x))

  with ``MLP(x) = W₂ act(W₁ x + b₁) + b₂``, ``d → m → d``. ``return_weights=True`` also
  returns the block's attention weights ``(B, h, L, L)``, which is how the encoders built
  on it (``SingleStreamEncoder``, ``VideoBERT``) expose their last block's attention.
* :func:`layer_norm_jacobian` — ``∂x̂/∂x = (I − 11ᵀ/d − x̂x̂ᵀ/d)/σ`` of LayerNorm without its
  affine, in closed form (derived in ``vidlearn.derivations.blocks``).
"""

from __future__ import annotations

import torch
from torch import nn

from vidlearn.attention import MultiHeadAttention

__all__ = ["QuickGELU", "ResidualAttentionBlock", "run_blocks", "layer_norm_jacobian"]


class QuickGELU(nn.Module):
    """``x · σ(1.702 x)``: CLIP's cheap approximation of GELU ``x · Φ(x)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    """Transformer block ``(B, L, D) -> (B, L, D)``: self-attention, then a ``d → m → d`` MLP.

    ``norm_first=True`` (default) is pre-LN, as in CLIP: ``x + attn(LN(x))``, then
    ``x + MLP(LN(x))``; ``norm_first=False`` is the original post-LN ``LN(x + attn(x))``, then
    ``LN(x + MLP(x))``. The MLP width is ``m = mlp_ratio·d`` (or ``mlp_width``), with
    QuickGELU as in CLIP or another ``activation`` (ViT and ViViT use GELU).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        *,
        mlp_ratio: int = 4,
        mlp_width: int | None = None,
        activation: type[nn.Module] = QuickGELU,
        norm_first: bool = True,
    ):
        super().__init__()
        m = mlp_ratio * d_model if mlp_width is None else mlp_width
        self.norm_first = bool(norm_first)
        self.ln_1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, n_heads)
        self.ln_2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, m), activation(), nn.Linear(m, d_model))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, return_weights: bool = False):
        """``x (B, L, D)`` -> ``(B, L, D)``, and the attention weights ``(B, h, L, L)`` if
        ``return_weights``; ``mask`` as in :class:`MultiHeadAttention` (True = may attend)."""
        # weights only on request: without them attention takes torch's fused path
        res = self.attn(self.ln_1(x) if self.norm_first else x, mask=mask, return_weights=return_weights)
        a, w = res if return_weights else (res, None)
        if self.norm_first:
            x = x + a
            x = x + self.mlp(self.ln_2(x))
        else:
            x = self.ln_1(x + a)
            x = self.ln_2(x + self.mlp(x))
        return (x, w) if return_weights else x


def run_blocks(blocks, x: torch.Tensor, mask: torch.Tensor | None = None, return_weights: bool = False):
    """``x`` through every block of ``blocks`` in order; with ``return_weights``, also the last
    block's attention weights ``(B, h, L, L)`` (row ``i``: where token ``i`` looks)."""
    w = None
    for i, blk in enumerate(blocks):
        if return_weights and i == len(blocks) - 1:
            x, w = blk(x, mask=mask, return_weights=True)
        else:
            x = blk(x, mask=mask)
    if return_weights and w is None:
        raise ValueError("there are no blocks, so there are no attention weights")
    return (x, w) if return_weights else x


def layer_norm_jacobian(x: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """Jacobian of LayerNorm without affine at each token: ``x (..., d)`` -> ``(..., d, d)``.

    ``J = (I − 11ᵀ/d − x̂x̂ᵀ/d)/σ`` with ``x̂ = (x − μ)/σ`` and ``σ = √(Var x + eps)`` (biased
    variance, as ``nn.LayerNorm``), i.e. ``(I − 11ᵀ/d)/σ − (x − μ)(x − μ)ᵀ/(dσ³)``, exact for
    any ``eps``. Its null space holds ``1`` (a shift) and, for ``eps = 0``, ``x̂`` (a
    rescaling): LayerNorm's output does not see either.

    The default ``eps = 0`` is the exact ``x̂`` of the derivation (with ``eps > 0``, e.g.
    ``nn.LayerNorm``'s ``1e-5``, ``x̂`` is not in the null space: a rescaling keeps a
    singular value of order ``eps/σ²``). With ``eps = 0`` a constant token (``σ = 0``) has no
    Jacobian, LayerNorm divides by zero there, so it is a ``ValueError`` rather than NaN;
    pass ``eps > 0`` for such tokens. A negative ``eps`` is a ``ValueError`` too.
    """
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps!r}")
    d = x.shape[-1]
    centred = x - x.mean(-1, keepdim=True)  # (..., d)
    variance = centred.pow(2).mean(-1, keepdim=True)  # (..., 1): biased
    if eps == 0 and bool((variance == 0).any()):
        where = (variance[..., 0] == 0).nonzero()[0].tolist()
        token = f"token at index {tuple(where)}" if where else "the token"
        raise ValueError(
            f"{token} is constant (σ = 0): with eps = 0 LayerNorm divides by zero "
            "and has no Jacobian there; pass eps > 0 (nn.LayerNorm uses 1e-5)"
        )
    sigma = (variance + eps).sqrt()  # (..., 1)
    eye = torch.eye(d, dtype=x.dtype, device=x.device)  # (d, d)
    outer = centred[..., :, None] * centred[..., None, :] / sigma[..., None] ** 2  # (..., d, d): x̂x̂ᵀ
    return (eye - 1.0 / d - outer / d) / sigma[..., None]
