"""From video to tokens: uniform frame sampling and tubelet embedding (ViViT, Arnab et al., 2021).

A video ``(B, T, C, H, W)`` becomes a grid of tokens in one of two ways:

* **Uniform frame sampling** picks ``n_frames`` frames spread evenly over the clip and cuts
  each into ``h×w`` patches, like an image ViT: ``n_frames·n_h·n_w`` tokens, each seeing one
  frame only.
* **Tubelet embedding** cuts the clip into non-overlapping ``t×h×w`` tubes and projects each
  linearly (a ``Conv3d`` whose kernel and stride are both the tubelet): ``n_t·n_h·n_w``
  tokens, each seeing ``t`` consecutive frames, so motion is mixed in at the first layer.

Token grid, for both: ``n_t = ⌊T/t⌋``, ``n_h = ⌊H/h⌋``, ``n_w = ⌊W/w⌋``. Frames, rows and
columns that do not fill a whole tubelet are **dropped** (the last ``T mod t`` frames, the
bottom ``H mod h`` rows and the right ``W mod w`` columns), exactly as ``Conv3d`` with no
padding does.

Layout: the course keeps time before channels, ``(B, T, C, H, W)``; torch's convolutions
want ``(B, C, T, H, W)``, so the permute happens here and nowhere else.

A tubelet embedding can start from a pretrained 2D patch embedding ``(D, C, h, w)``:
:func:`inflate_2d_filter` (I3D-style: repeat over time, divide by ``t``) or
:func:`central_frame_init` (the 2D filter at the middle frame, zeros elsewhere). On a video
that does not move, both give exactly the 2D filter's response.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import nn

from vidlearn.validation import check_int

__all__ = [
    "TokenGrid",
    "token_grid",
    "tubelet_tokens",
    "uniform_frame_indices",
    "TubeletEmbedding",
    "UniformFrameSampling",
    "inflate_2d_filter",
    "central_frame_init",
]


# --------------------------------------------------------------------------- checks


def _sizes(sizes, n: int, what: str, names: str) -> tuple[int, ...]:
    """Validate a tuple of ``n`` positive sizes, e.g. a tubelet ``(t, h, w)``."""
    if isinstance(sizes, torch.Size):
        sizes = tuple(sizes)
    if not isinstance(sizes, (tuple, list)) or len(sizes) != n:
        raise ValueError(f"{what} must be a tuple of {n} positive integers {names}, got {sizes!r}")
    return tuple(check_int(s, f"{what} size {name}") for s, name in zip(sizes, names.strip("()").split(", ")))


def _check_video(video: torch.Tensor, in_channels: int | None = None) -> None:
    if not isinstance(video, torch.Tensor):
        raise ValueError(f"expected a video tensor (B, T, C, H, W), got {type(video).__name__}")
    if video.ndim != 5:
        raise ValueError(
            f"expected a video of shape (B, T, C, H, W) (time before channels), got shape {tuple(video.shape)}"
        )
    if in_channels is not None and video.shape[2] != in_channels:
        raise ValueError(
            f"expected {in_channels} channels in dim 2 of (B, T, C, H, W), got shape {tuple(video.shape)}; "
            "is the video laid out (B, C, T, H, W)?"
        )


# --------------------------------------------------------------------------- the token grid


class TokenGrid(NamedTuple):
    """The number of tokens along time, height and width: ``(n_t, n_h, n_w)``."""

    n_t: int
    n_h: int
    n_w: int

    @property
    def n_tokens(self) -> int:
        """``N = n_t·n_h·n_w``, the sequence length a transformer sees."""
        return self.n_t * self.n_h * self.n_w

    @property
    def n_patches(self) -> int:
        """``n_h·n_w``, the tokens per time step."""
        return self.n_h * self.n_w


def token_grid(T: int, H: int, W: int, tubelet: Sequence[int]) -> TokenGrid:
    """``(⌊T/t⌋, ⌊H/h⌋, ⌊W/w⌋)`` for a ``T×H×W`` video cut into ``t×h×w`` tubelets.

    Leftover frames, rows and columns are dropped (floor). A video smaller than one
    tubelet along any axis has no token there, which is an error rather than an empty grid.
    """
    t, h, w = _sizes(tubelet, 3, "tubelet", "(t, h, w)")
    sizes = {"T": T, "H": H, "W": W}
    for name, v in sizes.items():
        check_int(v, f"video size {name}")
    for (name, v), (kname, k) in zip(sizes.items(), (("t", t), ("h", h), ("w", w))):
        if v < k:
            raise ValueError(
                f"video size {name}={v} is smaller than the tubelet's {kname}={k}: not one whole tubelet fits"
            )
    return TokenGrid(T // t, H // h, W // w)


def tubelet_tokens(video: torch.Tensor, tubelet: Sequence[int]) -> torch.Tensor:
    """Cut ``video (B, T, C, H, W)`` into flattened tubelets: ``(B, n_t, n_h, n_w, C·t·h·w)``.

    Each tubelet's values are flattened in the order **(C, t, h, w)** (channel slowest,
    column fastest): the order of a ``Conv3d`` weight ``(D, C, t, h, w)``. With that order
    the tubelet embedding is one matrix product,
    ``tokens = tubelet_tokens(video, (t, h, w)) @ conv.weight.reshape(D, -1).T + conv.bias``.
    Leftover frames, rows and columns are dropped, as in :func:`token_grid`.
    """
    _check_video(video)
    t, h, w = _sizes(tubelet, 3, "tubelet", "(t, h, w)")
    B, T, C, H, W = video.shape
    n_t, n_h, n_w = token_grid(T, H, W, (t, h, w))
    kept = video[:, : n_t * t, :, : n_h * h, : n_w * w]  # (B, n_t·t, C, n_h·h, n_w·w)
    tubes = kept.reshape(B, n_t, t, C, n_h, h, n_w, w)
    # grid axes first, then (C, t, h, w) to match the Conv3d weight layout
    tubes = tubes.permute(0, 1, 4, 6, 3, 2, 5, 7)  # (B, n_t, n_h, n_w, C, t, h, w)
    return tubes.reshape(B, n_t, n_h, n_w, C * t * h * w)  # (B, n_t, n_h, n_w, C·t·h·w)


def uniform_frame_indices(T: int, n_frames: int) -> torch.Tensor:
    """Indices of ``n_frames`` frames spread evenly over ``0..T-1``: ``round(linspace(0, T-1, n))``.

    The first and last frames are always included (for ``n_frames >= 2``); rounding is
    torch's round-half-to-even. Asking for more frames than the clip has is an error:
    the indices would repeat frames.
    """
    check_int(T, "number of frames T")
    check_int(n_frames, "n_frames")
    if n_frames > T:
        raise ValueError(f"cannot sample n_frames={n_frames} distinct frames from a clip of T={T} frames")
    # float64 so that k·(T-1)/(n-1) lands exactly on .5 where it should, whatever the default dtype
    return torch.linspace(0, T - 1, n_frames, dtype=torch.float64).round().long()  # (n_frames,)


# --------------------------------------------------------------------------- embeddings


class TubeletEmbedding(nn.Module):
    """Linear projection of non-overlapping ``t×h×w`` tubelets: ``(B, T, C, H, W) -> (B, n_t, n_h·n_w, D)``.

    A ``Conv3d`` with ``kernel_size = stride = tubelet`` and no padding, so each output
    position sees exactly one tubelet and leftovers at the end of each axis are dropped.
    ``forward(video, flatten=True)`` returns the token sequence ``(B, N, D)``, time-major
    (all tokens of the first time step, then the second, ...).
    """

    def __init__(self, in_channels: int, d_model: int, tubelet: Sequence[int] = (2, 16, 16), *, bias: bool = True):
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels")
        self.d_model = check_int(d_model, "d_model")
        self.tubelet = _sizes(tubelet, 3, "tubelet", "(t, h, w)")
        self.proj = nn.Conv3d(in_channels, d_model, kernel_size=self.tubelet, stride=self.tubelet, bias=bias)

    def grid(self, T: int, H: int, W: int) -> TokenGrid:
        """The token grid this embedding produces for a ``T×H×W`` video."""
        return token_grid(T, H, W, self.tubelet)

    def forward(self, video: torch.Tensor, flatten: bool = False) -> torch.Tensor:
        _check_video(video, self.in_channels)
        B, T, C, H, W = video.shape
        self.grid(T, H, W)  # a clear error for a too-small video, before Conv3d's opaque one
        x = self.proj(video.transpose(1, 2))  # (B, D, n_t, n_h, n_w)
        x = x.flatten(3).permute(0, 2, 3, 1)  # (B, n_t, n_h·n_w, D)
        return x.flatten(1, 2) if flatten else x  # (B, N, D) or (B, n_t, n_h·n_w, D)

    @classmethod
    def from_patch_embedding(cls, weight2d: torch.Tensor, bias: torch.Tensor | None, t: int, init: str = "central"):
        """A tubelet embedding initialised from a 2D patch embedding ``(D, C, h, w)``.

        ``init`` is ``"central"`` (:func:`central_frame_init`) or ``"inflate"``
        (:func:`inflate_2d_filter`); the bias is copied unchanged, since both
        initialisations already reproduce the 2D response on a static video.
        """
        inits = {"central": central_frame_init, "inflate": inflate_2d_filter}
        if init not in inits:
            raise ValueError(f"init must be one of {sorted(inits)}, got {init!r}")
        weight3d = inits[init](weight2d, t)  # (D, C, t, h, w)
        D, C, _, h, w = weight3d.shape
        # in the filter's dtype before copying, so a float64 filter is not rounded through float32
        emb = cls(C, D, (t, h, w), bias=bias is not None).to(weight2d.dtype)
        with torch.no_grad():
            emb.proj.weight.copy_(weight3d)
            if bias is not None:
                if bias.shape != (D,):
                    raise ValueError(f"bias must have shape ({D},) to match the weight, got {tuple(bias.shape)}")
                emb.proj.bias.copy_(bias)
        return emb


class UniformFrameSampling(nn.Module):
    """Sample ``n_frames`` frames uniformly, cut each into ``h×w`` patches: ``(B, n_frames, n_h·n_w, D)``.

    Frame indices are :func:`uniform_frame_indices` of the input clip's length; each frame
    goes through the same 2D patch embedding (a ``Conv2d`` with ``kernel_size = stride =
    patch``), so a token sees one frame and the frames between samples are never seen.
    ``forward(video, flatten=True)`` returns ``(B, n_frames·n_h·n_w, D)``.
    """

    def __init__(self, n_frames: int, d_model: int, patch: Sequence[int] = (16, 16), in_channels: int = 3):
        super().__init__()
        self.n_frames = check_int(n_frames, "n_frames")
        self.d_model = check_int(d_model, "d_model")
        self.in_channels = check_int(in_channels, "in_channels")
        self.patch = _sizes(patch, 2, "patch", "(h, w)")
        self.proj = nn.Conv2d(in_channels, d_model, kernel_size=self.patch, stride=self.patch)

    def indices(self, T: int) -> torch.Tensor:
        """The frames sampled from a clip of ``T`` frames: ``(n_frames,)``."""
        return uniform_frame_indices(T, self.n_frames)

    def grid(self, T: int, H: int, W: int) -> TokenGrid:
        """The token grid for a ``T×H×W`` clip: ``(n_frames, ⌊H/h⌋, ⌊W/w⌋)``."""
        self.indices(T)  # raises if the clip is too short
        _, n_h, n_w = token_grid(T, H, W, (1, *self.patch))
        return TokenGrid(self.n_frames, n_h, n_w)

    def forward(self, video: torch.Tensor, flatten: bool = False) -> torch.Tensor:
        _check_video(video, self.in_channels)
        B, T, C, H, W = video.shape
        n_f, n_h, n_w = self.grid(T, H, W)
        frames = video[:, self.indices(T).to(video.device)]  # (B, n_frames, C, H, W)
        x = self.proj(frames.flatten(0, 1))  # (B·n_frames, D, n_h, n_w)
        x = x.flatten(2).transpose(1, 2).reshape(B, n_f, n_h * n_w, self.d_model)  # (B, n_frames, n_h·n_w, D)
        return x.flatten(1, 2) if flatten else x  # (B, N, D) or (B, n_frames, n_h·n_w, D)


# --------------------------------------------------------------------------- initialisation from 2D


def _check_filter(weight2d: torch.Tensor, t: int) -> None:
    if not isinstance(weight2d, torch.Tensor) or weight2d.ndim != 4:
        shape = tuple(weight2d.shape) if isinstance(weight2d, torch.Tensor) else type(weight2d).__name__
        raise ValueError(f"expected a 2D patch-embedding weight of shape (D, C, h, w), got {shape}")
    check_int(t, "tubelet length t")


def inflate_2d_filter(weight2d: torch.Tensor, t: int) -> torch.Tensor:
    """I3D-style inflation: ``(D, C, h, w) -> (D, C, t, h, w)``, the 2D filter repeated over time, divided by ``t``.

    Dividing by ``t`` keeps the response to a static video (``t`` equal frames) equal to
    the 2D response; on a moving video the response is the mean of the ``t`` per-frame
    2D responses.
    """
    _check_filter(weight2d, t)
    return weight2d.unsqueeze(2).repeat(1, 1, t, 1, 1) / t  # (D, C, t, h, w)


def central_frame_init(weight2d: torch.Tensor, t: int) -> torch.Tensor:
    """ViViT's central-frame initialisation: ``(D, C, t, h, w)``, the 2D filter at time ``⌊t/2⌋``, zeros elsewhere.

    The response to a static video equals the 2D response; on a moving video it is the
    2D response of the middle frame alone (until training teaches the other frames' weights).
    """
    _check_filter(weight2d, t)
    D, C, h, w = weight2d.shape
    weight3d = weight2d.new_zeros(D, C, t, h, w)  # (D, C, t, h, w)
    weight3d[:, :, t // 2] = weight2d
    return weight3d
