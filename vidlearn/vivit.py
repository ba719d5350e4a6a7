"""ViViT: the four video transformers of Arnab et al. (2021, arXiv 2103.15691, §3.3).

A clip ``(B, T, C, H, W)`` is cut into ``n_t×n_h×n_w`` tubelets (:class:`TubeletEmbedding`),
giving tokens ``(B, n_t, N, D)`` with ``N = n_h·n_w`` tokens per temporal index. The four
models differ only in which tokens attend to which:

* **Model 1, joint** (``"joint"``): every token attends to every token, ``n_t·N (+1 CLS)``
  of them, in ``L`` blocks. Cost per layer grows as ``(n_t·N)²``.
* **Model 2, factorised encoder** (``"factorised_encoder"``): a *spatial* encoder (``L``
  blocks) runs on each temporal index on its own, ``1 + N`` tokens with a spatial CLS token;
  the ``n_t`` CLS outputs go through a *temporal* encoder (``L_t`` blocks, its own CLS).
  With ``L_t = 0`` and mean pooling it is per-frame classification averaged over time
  (:meth:`ViViT.frame_logits`): the head is affine, so ``head(mean_t z_t) = mean_t head(z_t)``.
* **Model 3, factorised self-attention** (``"factorised_self_attention"``): each block
  does spatial self-attention (among the ``N`` tokens of one temporal index), then temporal
  self-attention (among the ``n_t`` tokens at one spatial location), then the MLP. No CLS
  token: global average pooling.
* **Model 4, factorised dot-product** (``"factorised_dot_product"``): one attention layer
  per block whose first ``h/2`` heads attend within the same temporal index and the other
  ``h/2`` within the same spatial location; the heads are concatenated before ``W_O``.

Token order is time-major everywhere: token ``i_t·N + i_s`` is spatial position ``i_s`` of
temporal index ``i_t``. In that order Model 3's two steps are joint attention under
:func:`same_frame_mask` and :func:`same_location_mask`, and Model 4 is joint attention under
:func:`factorised_head_mask` (one mask per head group). Those masked forms are the
*definitions* the tests and chapter 5 check against; the models are computed by reshaping,
so that each attention is an ordinary batched attention over ``N`` or ``n_t`` tokens and no
masked-out score is ever computed (:func:`factorised_dot_product_attention`). Model 4 thus
costs ``n_t·N·(N + n_t)·d`` attention MACs per layer, as the paper counts it, not the
``2(n_t·N)²·d`` of the masked form.

Every model builds on the meta device (``with torch.device("meta"): ViViT(cfg)``), so the
parameter count of a ViViT-B costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn

from vidlearn.attention import MultiHeadAttention, merge_heads, scaled_dot_product_attention, split_heads
from vidlearn.blocks import ResidualAttentionBlock, run_blocks
from vidlearn.tubelets import TubeletEmbedding, token_grid
from vidlearn.validation import check_int

__all__ = [
    "VARIANTS",
    "ViViTConfig",
    "ViViTBlock",
    "ViViT",
    "same_frame_mask",
    "same_location_mask",
    "factorised_head_mask",
    "factorised_dot_product_attention",
    "PAPER_TABLE_1",
    "PAPER_TABLE_2",
]

VARIANTS = ("joint", "factorised_encoder", "factorised_self_attention", "factorised_dot_product")
_POOLINGS = ("cls", "mean")
_ORDERS = ("spatial_first", "temporal_first")
# Models 3 and 4 attend within the (temporal index, spatial location) grid; a CLS token has
# no place on that grid, so they pool by averaging.
_GRID_ONLY = ("factorised_self_attention", "factorised_dot_product")


# --------------------------------------------------------------------------- the paper's numbers

# Arnab et al., Table 2 (ViViT-B, 16x2 tubelets, Kinetics-400): variant -> (GFLOPs, parameters
# in millions, K400 top-1 %). The paper's "FLOPs" are multiply-accumulates. "ave_pool" is
# Model 2 with its temporal encoder replaced by averaging over time (our temporal_depth=0).
PAPER_TABLE_2 = {
    "joint": (455.2, 88.9, 80.0),
    "factorised_encoder": (284.4, 115.1, 78.8),
    "factorised_self_attention": (372.3, 117.3, 77.4),
    "factorised_dot_product": (277.1, 88.9, 76.3),
    "ave_pool": (283.9, 86.7, 75.8),
}
# Arnab et al., Table 1 (ViViT-B, Model 1, Kinetics-400 top-1 %): how the tubelet embedding
# is initialised from a 2D ViT patch embedding.
PAPER_TABLE_1 = {
    "uniform frame sampling (2D patches)": 78.5,
    "tubelets, random initialisation": 73.2,
    "tubelets, filter inflation": 77.6,
    "tubelets, central frame": 79.2,
}


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class ViViTConfig:
    """Sizes of a ViViT. ``depth`` is ``L`` (for Model 2, the spatial depth ``L_s``);
    ``temporal_depth`` is Model 2's ``L_t`` and must be 0 for the other models.

    ``pooling`` is ``"cls"`` or ``"mean"``; ``None`` picks ``"cls"`` for Models 1–2 and
    ``"mean"`` for Models 3–4 (which have no CLS token). ``factorised_order`` orders
    Model 3's spatial and temporal attention inside a block.
    """

    frames: int = 32
    image_size: int = 224
    channels: int = 3
    tubelet: tuple[int, int, int] = (2, 16, 16)
    width: int = 768
    depth: int = 12
    heads: int = 12
    mlp_width: int = 3072
    temporal_depth: int = 0
    num_classes: int = 400
    variant: str = "joint"
    pooling: str | None = None
    factorised_order: str = "spatial_first"

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        for name in ("frames", "image_size", "channels", "width", "depth", "heads", "mlp_width", "num_classes"):
            check_int(getattr(self, name), name)
        check_int(self.temporal_depth, "temporal_depth", minimum=0)
        if isinstance(self.tubelet, list):
            object.__setattr__(self, "tubelet", tuple(self.tubelet))  # frozen, and hashable
        # token_grid checks the tubelet and that at least one whole tubelet fits
        token_grid(self.frames, self.image_size, self.image_size, self.tubelet)
        if self.width % self.heads:
            raise ValueError(f"heads={self.heads} must divide width={self.width}")
        if self.variant == "factorised_dot_product" and self.heads % 2:
            raise ValueError(
                f"factorised_dot_product splits the heads in two halves (spatial, temporal); heads={self.heads} is odd"
            )
        if self.temporal_depth and self.variant != "factorised_encoder":
            raise ValueError(
                f"temporal_depth is the depth of Model 2's temporal encoder; variant {self.variant!r} has none, "
                f"so it must be 0 (got {self.temporal_depth})"
            )
        if self.pooling is None:
            object.__setattr__(self, "pooling", "mean" if self.variant in _GRID_ONLY else "cls")
        if self.pooling not in _POOLINGS:
            raise ValueError(f"pooling must be one of {_POOLINGS}, got {self.pooling!r}")
        if self.pooling == "cls" and self.variant in _GRID_ONLY:
            raise ValueError(
                f"{self.variant} has no CLS token (every token sits on the time × space grid): use pooling='mean'"
            )
        if self.pooling == "cls" and self.variant == "factorised_encoder" and self.temporal_depth == 0:
            raise ValueError(
                "factorised_encoder with temporal_depth=0 has no temporal encoder for a temporal CLS token to "
                "pass through: use pooling='mean' (per-frame classification averaged over time)"
            )
        if self.factorised_order not in _ORDERS:
            raise ValueError(f"factorised_order must be one of {_ORDERS}, got {self.factorised_order!r}")

    @property
    def n_t(self) -> int:
        """Temporal indices: ``⌊T/t⌋``."""
        return self.frames // self.tubelet[0]

    @property
    def n_h(self) -> int:
        return self.image_size // self.tubelet[1]

    @property
    def n_w(self) -> int:
        return self.image_size // self.tubelet[2]

    @property
    def N(self) -> int:
        """Tokens per temporal index: ``n_h·n_w``."""
        return self.n_h * self.n_w

    @classmethod
    def base_16x2(cls, variant: str = "joint", **overrides) -> ViViTConfig:
        """ViViT-B/16x2 on Kinetics-400: ``L=12``, 12 heads, ``d=768``, MLP 3072, 32×224×224 clips,
        2×16×16 tubelets, 400 classes; Model 2 gets a 4-layer temporal encoder."""
        sizes = dict(
            frames=32, image_size=224, channels=3, tubelet=(2, 16, 16), width=768, depth=12, heads=12,
            mlp_width=3072, num_classes=400, temporal_depth=4 if variant == "factorised_encoder" else 0,
        )
        return cls(variant=variant, **{**sizes, **overrides})

    @classmethod
    def tiny(cls, variant: str = "joint", **overrides) -> ViViTConfig:
        """A CPU-sized ViViT: 8×32×32 clips, 2×8×8 tubelets (``n_t=4``, ``N=16``), ``d=32``, 2 layers, 4 heads."""
        sizes = dict(
            frames=8, image_size=32, channels=3, tubelet=(2, 8, 8), width=32, depth=2, heads=4,
            mlp_width=64, num_classes=2, temporal_depth=1 if variant == "factorised_encoder" else 0,
        )
        return cls(variant=variant, **{**sizes, **overrides})


# --------------------------------------------------------------------------- masks


def _check_grid(n_t: int, N: int) -> None:
    check_int(n_t, "n_t")
    check_int(N, "N")


def same_frame_mask(n_t: int, N: int, *, device=None) -> torch.Tensor:
    """Boolean ``(n_t·N, n_t·N)``: token ``i_t·N + i_s`` may attend to the tokens of its own temporal index."""
    _check_grid(n_t, N)
    t = torch.arange(n_t * N, device=device) // N  # (n_t·N,) temporal index of each token
    return t[:, None] == t[None, :]  # (n_t·N, n_t·N)


def same_location_mask(n_t: int, N: int, *, device=None) -> torch.Tensor:
    """Boolean ``(n_t·N, n_t·N)``: token ``i_t·N + i_s`` may attend to the tokens at its own spatial location."""
    _check_grid(n_t, N)
    s = torch.arange(n_t * N, device=device) % N  # (n_t·N,) spatial location of each token
    return s[:, None] == s[None, :]  # (n_t·N, n_t·N)


def factorised_head_mask(n_t: int, N: int, heads: int, *, device=None) -> torch.Tensor:
    """Model 4's per-head mask ``(h, n_t·N, n_t·N)``: heads ``0..h/2-1`` get :func:`same_frame_mask`
    (spatial heads), heads ``h/2..h-1`` get :func:`same_location_mask` (temporal heads)."""
    check_int(heads, "heads")
    if heads % 2:
        raise ValueError(f"the heads are split in two equal groups; heads={heads} is odd")
    half = heads // 2
    L = n_t * N
    spatial = same_frame_mask(n_t, N, device=device)[None].expand(half, L, L)
    temporal = same_location_mask(n_t, N, device=device)[None].expand(half, L, L)
    return torch.cat([spatial, temporal], dim=0)  # (h, L, L)


def factorised_dot_product_attention(attn: MultiHeadAttention, x: torch.Tensor, *, return_weights: bool = False):
    """Model 4's attention computed by reshaping: ``x (B, n_t, N, D) -> (B, n_t, N, D)``.

    Q, K, V come from ``attn``'s projections and are split into ``h`` heads of width ``e = D/h``.
    Heads ``0..h/2-1`` attend among the ``N`` tokens of each temporal index, heads ``h/2..h-1``
    among the ``n_t`` tokens of each spatial location; each group is one batched attention
    (its neighbourhood is a leading axis). The heads are put back in order, concatenated,
    and ``W_O`` is applied. It equals ``attn(x_flat, mask=factorised_head_mask(n_t, N, h)[None])``
    on the time-major flattening, at ``n_t·N·(N + n_t)·D`` attention MACs instead of
    ``2(n_t·N)²·D``.

    ``return_weights=True`` also returns the weights as ``(B, h, n_t·N, n_t·N)`` in the time-major
    order, exactly zero outside each head's neighbourhood (for inspection: this allocates the
    full matrix that the computation itself avoids).
    """
    if not isinstance(attn, MultiHeadAttention):
        raise ValueError(f"attn must be a MultiHeadAttention, got {type(attn).__name__}")
    if x.ndim != 4 or x.shape[-1] != attn.d_model:
        raise ValueError(f"expected tokens (B, n_t, N, {attn.d_model}), got {tuple(x.shape)}")
    h = attn.n_heads
    if h % 2:
        raise ValueError(f"the heads are split in two equal groups; the attention has {h} heads, an odd number")
    B, n_t, N, D = x.shape
    flat = x.reshape(B, n_t * N, D)  # (B, n_t·N, D), time-major
    q, k, v = (split_heads(w(flat), h) for w in (attn.w_q, attn.w_k, attn.w_v))  # (B, h, n_t·N, e)
    g = h // 2
    # spatial heads: the frame index joins the batch axes, attention runs over the N locations
    per_frame = "b g (t s) e -> b (g t) s e"
    # temporal heads: the location index joins the batch axes, attention runs over the n_t indices
    per_place = "b g (t s) e -> b (g s) t e"
    qs, ks, vs = (rearrange(z[:, :g], per_frame, t=n_t) for z in (q, k, v))  # (B, g·n_t, N, e)
    qt, kt, vt = (rearrange(z[:, g:], per_place, t=n_t) for z in (q, k, v))  # (B, g·N, n_t, e)
    # the fused kernel when no weights are wanted (count_flops' MATH backend sees it as matmuls)
    fast = attn.fast and not return_weights
    spatial = scaled_dot_product_attention(qs, ks, vs, return_weights=return_weights, fast=fast)
    temporal = scaled_dot_product_attention(qt, kt, vt, return_weights=return_weights, fast=fast)
    (spatial, ws), (temporal, wt) = (spatial, temporal) if return_weights else ((spatial, None), (temporal, None))
    heads = torch.cat(
        [rearrange(spatial, "b (g t) s e -> b g (t s) e", t=n_t), rearrange(temporal, "b (g s) t e -> b g (t s) e", s=N)],
        dim=1,
    )  # (B, h, n_t·N, e), heads in their original order
    out = attn.w_o(merge_heads(heads)).reshape(B, n_t, N, D)  # (B, n_t, N, D)
    if not return_weights:
        return out
    ws = rearrange(ws, "b (g t) s r -> b g t s r", t=n_t)  # (B, h/2, n_t, N, N)
    wt = rearrange(wt, "b (g s) t u -> b g s t u", s=N)  # (B, h/2, N, n_t, n_t)
    return out, torch.cat([_spatial_to_full(ws), _temporal_to_full(wt)], dim=1)  # (B, h, L, L)


def _spatial_to_full(w: torch.Tensor) -> torch.Tensor:
    """Per-frame weights ``(B, g, n_t, N, N)`` as time-major ``(B, g, n_t·N, n_t·N)``, zero across frames."""
    eye = torch.eye(w.shape[2], dtype=w.dtype, device=w.device)
    full = torch.einsum("bgtsr,tu->bgtsur", w, eye)  # key (u, r) is kept only when u == t
    return rearrange(full, "b g t s u r -> b g (t s) (u r)")


def _temporal_to_full(w: torch.Tensor) -> torch.Tensor:
    """Per-location weights ``(B, g, N, n_t, n_t)`` as time-major ``(B, g, n_t·N, n_t·N)``, zero across locations."""
    eye = torch.eye(w.shape[2], dtype=w.dtype, device=w.device)
    full = torch.einsum("bgstu,sr->bgtsur", w, eye)  # key (u, r) is kept only when r == s
    return rearrange(full, "b g t s u r -> b g (t s) (u r)")


# --------------------------------------------------------------------------- the block


class ViViTBlock(ResidualAttentionBlock):
    """Pre-LN transformer block shared by all four models (GELU MLP, as in ViT/ViViT).

    Unfactorised (Models 1 and 2): ``x (B, L, D)``, ``x += MSA(LN(x))`` (``mask`` as in
    :class:`MultiHeadAttention`), then ``x += MLP(LN(x))``.

    ``factorised=True`` (Model 3): ``x (B, n_t, N, D)``;
    ``x += MSA_s(LN(x))`` over the ``N`` tokens of each temporal index (:meth:`spatial`),
    ``x += MSA_t(LN(x))`` over the ``n_t`` tokens of each location (:meth:`temporal`), in
    ``order``, then ``x += MLP(LN(x))``.

    ``dot_product=True`` (Model 4): ``x (B, n_t, N, D)``; ``x += MSA(LN(x))`` with half the
    heads per temporal index and half per location (:func:`factorised_dot_product_attention`),
    then ``x += MLP(LN(x))``.

    ``return_weights=True`` also returns the attention weights as time-major ``(B, h, n_t·N, n_t·N)``
    matrices (zero outside each head's neighbourhood); Model 3's block returns a pair
    ``(spatial, temporal)``, one per step.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        mlp_width: int,
        *,
        factorised: bool = False,
        dot_product: bool = False,
        order: str = "spatial_first",
    ):
        if order not in _ORDERS:
            raise ValueError(f"order must be one of {_ORDERS}, got {order!r}")
        if factorised and dot_product:
            raise ValueError("a block is factorised (Model 3) or dot_product (Model 4), not both")
        if dot_product and n_heads % 2:
            raise ValueError(f"dot_product splits the heads in two equal groups; n_heads={n_heads} is odd")
        super().__init__(d_model, n_heads, mlp_width=mlp_width, activation=nn.GELU)
        self.order = order
        self.dot_product = bool(dot_product)
        # Model 3's temporal attention has its own weights and LayerNorm (the paper's Eq. 5–6)
        self.ln_t = nn.LayerNorm(d_model) if factorised else None
        self.attn_t = MultiHeadAttention(d_model, n_heads) if factorised else None

    @property
    def factorised(self) -> bool:
        return self.attn_t is not None

    def spatial(self, x: torch.Tensor, return_weights: bool = False):
        """``x + MSA(LN(x))`` among the ``N`` tokens of each temporal index: ``(B, n_t, N, D)``."""
        B, n_t, N, D = x.shape
        res = self.attn(self.ln_1(x).reshape(B * n_t, N, D), return_weights=return_weights)  # (B·n_t, N, D)
        y, w = res if return_weights else (res, None)
        out = x + y.reshape(B, n_t, N, D)
        if not return_weights:
            return out
        return out, _spatial_to_full(rearrange(w, "(b t) g s r -> b g t s r", t=n_t))  # (B, h, L, L)

    def temporal(self, x: torch.Tensor, return_weights: bool = False):
        """``x + MSA_t(LN_t(x))`` among the ``n_t`` tokens at each spatial location: ``(B, n_t, N, D)``."""
        if not self.factorised:
            raise ValueError("this block has no temporal attention: build it with factorised=True")
        B, n_t, N, D = x.shape
        y = self.ln_t(x).transpose(1, 2).reshape(B * N, n_t, D)  # (B·N, n_t, D)
        res = self.attn_t(y, return_weights=return_weights)
        y, w = res if return_weights else (res, None)
        out = x + y.reshape(B, N, n_t, D).transpose(1, 2)  # (B, n_t, N, D)
        if not return_weights:
            return out
        return out, _temporal_to_full(rearrange(w, "(b s) g t u -> b g s t u", s=N))  # (B, h, L, L)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, return_weights: bool = False):
        if not (self.factorised or self.dot_product):
            return super().forward(x, mask=mask, return_weights=return_weights)  # (B, L, D)
        kind = "factorised" if self.factorised else "dot_product"
        if x.ndim != 4:
            raise ValueError(f"a {kind} block expects tokens (B, n_t, N, D), got {tuple(x.shape)}")
        if mask is not None:
            raise ValueError(f"a {kind} block takes no mask: its neighbourhoods are the frame and the location")
        if self.dot_product:
            res = factorised_dot_product_attention(self.attn, self.ln_1(x), return_weights=return_weights)
            y, w = res if return_weights else (res, None)
            x = x + y  # (B, n_t, N, D)
        else:
            steps = (self.spatial, self.temporal) if self.order == "spatial_first" else (self.temporal, self.spatial)
            ws = {}
            for step in steps:
                res = step(x, return_weights=return_weights)
                x, ws[step.__name__] = res if return_weights else (res, None)
            w = (ws["spatial"], ws["temporal"])
        x = x + self.mlp(self.ln_2(x))
        return (x, w) if return_weights else x


# --------------------------------------------------------------------------- the model


def _embedding(*shape: int) -> nn.Parameter:
    # N(0, 0.02²) as ViT; torch.randn follows the ambient device, so this also builds on "meta"
    return nn.Parameter(torch.randn(*shape) * 0.02)


class ViViT(nn.Module):
    """A ViViT classifier ``(B, T, C, H, W) -> (B, num_classes)`` for any of the four variants."""

    def __init__(self, config: ViViTConfig):
        super().__init__()
        if not isinstance(config, ViViTConfig):
            raise ValueError(f"expected a ViViTConfig, got {type(config).__name__}")
        c = self.config = config
        d, n_t, N = c.width, c.n_t, c.N
        self.embed = TubeletEmbedding(c.channels, d, c.tubelet)

        def encoder(depth: int, factorised: bool = False, dot_product: bool = False) -> nn.ModuleList:
            return nn.ModuleList(
                ViViTBlock(d, c.heads, c.mlp_width, factorised=factorised, dot_product=dot_product,
                           order=c.factorised_order)
                for _ in range(depth)
            )

        cls = c.pooling == "cls"
        if c.variant == "factorised_encoder":
            # the spatial CLS token is shared by all temporal indices: one CLS per index, not per patch
            self.cls_token = _embedding(d)
            self.pos_embed = _embedding(1 + N, d)
            self.blocks = encoder(c.depth)
            self.norm = nn.LayerNorm(d)
            has_temporal = c.temporal_depth > 0
            # with no temporal encoder there is nothing to embed or normalise: the spatial
            # CLS outputs are averaged as they are, which makes L_t = 0 per-frame classification
            self.temporal_cls_token = _embedding(d) if has_temporal and cls else None
            self.temporal_pos_embed = _embedding(n_t + cls, d) if has_temporal else None
            self.temporal_blocks = encoder(c.temporal_depth)
            self.temporal_norm = nn.LayerNorm(d) if has_temporal else None
        else:
            self.cls_token = _embedding(d) if cls else None
            self.pos_embed = _embedding(cls + n_t * N, d)
            self.blocks = encoder(
                c.depth,
                factorised=c.variant == "factorised_self_attention",
                dot_product=c.variant == "factorised_dot_product",
            )
            self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, c.num_classes)

    # ---------------------------------------------------------------- pieces

    def tokens(self, video: torch.Tensor) -> torch.Tensor:
        """Tubelet tokens ``(B, n_t, N, D)``, checked against the grid the config was built for."""
        x = self.embed(video)  # (B, n_t, N, D)
        c = self.config
        if x.shape[1:3] != (c.n_t, c.N):
            raise ValueError(
                f"video {tuple(video.shape)} gives a token grid n_t={x.shape[1]}, N={x.shape[2]}; the positional "
                f"embeddings were built for n_t={c.n_t}, N={c.N} ({c.frames}×{c.image_size}×{c.image_size} clips)"
            )
        return x

    def _with_cls(self, x: torch.Tensor, cls: torch.Tensor | None) -> torch.Tensor:
        """Prepend ``cls (D,)`` to ``x (B', L, D)``: ``(B', 1 + L, D)``; unchanged when ``cls`` is None."""
        if cls is None:
            return x
        return torch.cat([cls.expand(x.shape[0], 1, -1), x], dim=1)

    def _pool(self, x: torch.Tensor, cls: bool) -> torch.Tensor:
        """``(B, L, D) -> (B, D)``: the CLS output (token 0) or the mean over tokens."""
        return x[:, 0] if cls else x.mean(dim=1)

    def _spatial_encoder(self, video: torch.Tensor, return_weights: bool = False):
        """Model 2's spatial encoder: normalised CLS outputs ``(B, n_t, D)`` [and its last block's weights]."""
        x = self.tokens(video)  # (B, n_t, N, D)
        B, n_t, N, D = x.shape
        x = self._with_cls(x.reshape(B * n_t, N, D), self.cls_token) + self.pos_embed  # (B·n_t, 1+N, D)
        # each temporal index on its own: the weights are (B·n_t, h, 1+N, 1+N)
        x, w = run_blocks(self.blocks, x, return_weights=True) if return_weights else (run_blocks(self.blocks, x), None)
        z = self.norm(x[:, 0]).reshape(B, n_t, D)  # (B, n_t, D)
        if not return_weights:
            return z
        return z, rearrange(w, "(b t) g i j -> b t g i j", t=n_t)  # (B, n_t, h, 1+N, 1+N)

    def spatial_features(self, video: torch.Tensor) -> torch.Tensor:
        """Model 2: the spatial encoder's normalised CLS output for each temporal index, ``(B, n_t, D)``."""
        if self.config.variant != "factorised_encoder":
            raise ValueError(f"spatial_features belongs to factorised_encoder, not {self.config.variant!r}")
        return self._spatial_encoder(video)

    def frame_logits(self, video: torch.Tensor) -> torch.Tensor:
        """Model 2: logits from each temporal index alone, ``head(spatial CLS_t)``: ``(B, n_t, num_classes)``.

        With ``temporal_depth=0`` the model's output is their mean over time (the head is affine).
        """
        return self.head(self.spatial_features(video))

    # ---------------------------------------------------------------- forward

    def features(self, video: torch.Tensor) -> torch.Tensor:
        """The pooled representation the head classifies: ``(B, D)``."""
        return self._encode(video, False)[0]

    def last_attention(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        """The attention weights of each encoder's last block on ``video``, by name (row ``i``: where
        token ``i`` looks; every row sums to 1, or is all zero for a token with nothing to attend to):

        * Model 1: ``"joint"`` ``(B, h, [1+]n_t·N, [1+]n_t·N)``, the CLS token (if any) first;
        * Model 2: ``"spatial"`` ``(B, n_t, h, 1+N, 1+N)`` (spatial CLS first) and, if ``L_t > 0``,
          ``"temporal"`` ``(B, h, [1+]n_t, [1+]n_t)``;
        * Model 3: ``"spatial"`` and ``"temporal"``, each time-major ``(B, h, n_t·N, n_t·N)``;
        * Model 4: ``"dot_product"`` ``(B, h, n_t·N, n_t·N)``, spatial heads first.

        Attention weights say where a layer mixes information from, not why the model decides.
        """
        with torch.no_grad():
            return self._encode(video, True)[1]

    def _encode(self, video: torch.Tensor, return_weights: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c = self.config
        cls = c.pooling == "cls"
        weights: dict[str, torch.Tensor] = {}
        if c.variant == "factorised_encoder":
            res = self._spatial_encoder(video, return_weights)
            z, weights["spatial"] = res if return_weights else (res, None)  # (B, n_t, D)
            if c.temporal_depth == 0:
                return z.mean(dim=1), weights  # (B, D)
            z = self._with_cls(z, self.temporal_cls_token) + self.temporal_pos_embed  # (B, [1+]n_t, D)
            if return_weights:
                z, weights["temporal"] = run_blocks(self.temporal_blocks, z, return_weights=True)
            else:
                z = run_blocks(self.temporal_blocks, z)
            return self._pool(self.temporal_norm(z), cls), weights  # (B, D)
        x = self.tokens(video)  # (B, n_t, N, D)
        B, n_t, N, D = x.shape
        if c.variant in _GRID_ONLY:
            # Models 3 and 4: the blocks attend within frames and locations of the grid itself
            x = x + self.pos_embed.reshape(n_t, N, D)  # (B, n_t, N, D)
            if return_weights:
                x, w = run_blocks(self.blocks, x, return_weights=True)
                if c.variant == "factorised_self_attention":
                    weights["spatial"], weights["temporal"] = w  # one per step of the last block
                else:
                    weights["dot_product"] = w
            else:
                x = run_blocks(self.blocks, x)
            return self.norm(x).mean(dim=(1, 2)), weights  # (B, D)
        # joint attention (Model 1)
        x = self._with_cls(x.reshape(B, n_t * N, D), self.cls_token) + self.pos_embed  # (B, [1+]n_t·N, D)
        if return_weights:
            x, weights["joint"] = run_blocks(self.blocks, x, return_weights=True)
        else:
            x = run_blocks(self.blocks, x)
        return self._pool(self.norm(x), cls), weights  # (B, D)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """``video (B, T, C, H, W)`` -> logits ``(B, num_classes)``."""
        return self.head(self.features(video))
