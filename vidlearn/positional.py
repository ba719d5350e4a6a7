"""Positional encodings for frames and space-time tokens.

Sinusoidal (Vaswani et al., 2017, §3.5)::

    PE[p, 2i]   = sin(p / base^(2i/d))
    PE[p, 2i+1] = cos(p / base^(2i/d))        base = 10000

Channel pair ``(2i, 2i+1)`` rotates at angular frequency ``ω_i = base^(-2i/d)``, so the
wavelengths run from ``2π`` (i = 0) towards ``base·2π``. Some tutorials print
``base = 1000``; the paper's value is 10000.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "sinusoidal_encoding",
    "frequencies",
    "relative_rotation",
    "space_time_sinusoidal_encoding",
    "SinusoidalPositionalEncoding",
    "LearnedPositionalEncoding",
    "SeparableSpaceTimeEncoding",
]


def _check_even(d_model: int, what: str = "d_model") -> None:
    if not isinstance(d_model, int) or d_model <= 0 or d_model % 2:
        raise ValueError(
            f"{what} must be a positive even integer (channels come in sin/cos pairs), got {d_model!r}"
        )


def frequencies(d_model: int, base: float = 10000.0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Angular frequencies ``ω_i = base^(-2i/d)`` for ``i = 0 .. d/2 - 1``: shape ``(d/2,)``."""
    _check_even(d_model)
    if base <= 1:
        raise ValueError(f"base must be > 1, got {base}")
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (d/2,)
    return (base ** (-two_i / d_model)).to(dtype)


def sinusoidal_encoding(
    n_positions: int, d_model: int, base: float = 10000.0, *, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """The Vaswani et al. table ``PE``: shape ``(n_positions, d_model)``; sin in even, cos in odd channels."""
    _check_even(d_model)
    if not isinstance(n_positions, int) or n_positions < 0:
        raise ValueError(f"n_positions must be a non-negative integer, got {n_positions!r}")
    p = torch.arange(n_positions, dtype=torch.float64)[:, None]  # (P, 1)
    angles = p * frequencies(d_model, base)[None, :]  # (P, d/2)
    pe = torch.empty(n_positions, d_model, dtype=torch.float64)  # (P, D)
    pe[:, 0::2] = torch.sin(angles)
    pe[:, 1::2] = torch.cos(angles)
    return pe.to(dtype)


def relative_rotation(k: float, d_model: int, base: float = 10000.0, *, dtype: torch.dtype = torch.float64):
    """Block-diagonal ``R(k)`` with ``PE[t + k] = R(k) @ PE[t]`` for every ``t``: ``(d, d)``.

    Block ``i`` is ``[[cos ω_i k, sin ω_i k], [-sin ω_i k, cos ω_i k]]`` (angle addition on
    the pair ``(sin ω_i t, cos ω_i t)``); it depends on the offset ``k`` only, not on ``t``.
    """
    w = frequencies(d_model, base) * k  # (d/2,)
    c, s = torch.cos(w), torch.sin(w)
    R = torch.zeros(d_model, d_model, dtype=torch.float64)  # (D, D)
    R[0::2, 0::2] = torch.diag(c)
    R[0::2, 1::2] = torch.diag(s)
    R[1::2, 0::2] = torch.diag(-s)
    R[1::2, 1::2] = torch.diag(c)
    return R.to(dtype)


def space_time_sinusoidal_encoding(
    T: int, H: int, W: int, d_model: int, base: float = 10000.0, *, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Separable sinusoidal encoding for a ``T×H×W`` grid of video tokens: ``(T, H, W, D)``.

    The channels are split into three groups (time, row, column), each a 1-D sinusoidal
    encoding of its own coordinate, so the time part is identical at every spatial
    location and vice versa. ``d_model`` must split into three even widths: the time
    group gets ``d - 2·d_s`` channels and each spatial group ``d_s = 2·⌊d/6⌋``.
    """
    _check_even(d_model)
    d_s = 2 * (d_model // 6)
    d_t = d_model - 2 * d_s
    if d_s == 0:
        raise ValueError(f"d_model={d_model} is too small to split into time, row and column groups (need >= 6)")
    pe_t = sinusoidal_encoding(T, d_t, base, dtype=dtype)  # (T, d_t)
    pe_h = sinusoidal_encoding(H, d_s, base, dtype=dtype)  # (H, d_s)
    pe_w = sinusoidal_encoding(W, d_s, base, dtype=dtype)  # (W, d_s)
    return torch.cat(
        [
            pe_t[:, None, None, :].expand(T, H, W, d_t),
            pe_h[None, :, None, :].expand(T, H, W, d_s),
            pe_w[None, None, :, :].expand(T, H, W, d_s),
        ],
        dim=-1,
    )  # (T, H, W, D)


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the sinusoidal table to frame features ``x (B, T, D)``; works for any ``T``."""

    def __init__(self, d_model: int, base: float = 10000.0):
        super().__init__()
        _check_even(d_model)
        self.d_model, self.base = d_model, base

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.d_model:
            raise ValueError(f"expected features of width {self.d_model}, got shape {tuple(x.shape)}")
        pe = sinusoidal_encoding(x.shape[-2], self.d_model, self.base, dtype=x.dtype).to(x.device)
        return x + pe  # (B, T, D)


class LearnedPositionalEncoding(nn.Module):
    """A learned table of ``max_positions`` vectors added to ``x (B, T, D)``.

    A clip longer than the table has no encoding for its later frames: that is an
    error here, not a silent wrap-around or a crash deep inside an index op.
    """

    def __init__(self, max_positions: int, d_model: int):
        super().__init__()
        self.max_positions, self.d_model = max_positions, d_model
        self.table = nn.Parameter(torch.randn(max_positions, d_model) * 0.02)  # (P, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T = x.shape[-2]
        if x.shape[-1] != self.d_model:
            raise ValueError(f"expected features of width {self.d_model}, got shape {tuple(x.shape)}")
        if T > self.max_positions:
            raise ValueError(
                f"the clip has T={T} positions but the learned table has only {self.max_positions}; "
                "a learned encoding cannot extrapolate: use a longer table, sample fewer frames, "
                "or use a sinusoidal encoding"
            )
        return x + self.table[:T]  # (B, T, D)


class SeparableSpaceTimeEncoding(nn.Module):
    """Learned space-time encoding ``E[t, n] = E_time[t] + E_space[n]`` for ``x (B, T, N, D)``.

    ``T·D + N·D`` parameters instead of ``T·N·D`` for a full table.
    """

    def __init__(self, n_frames: int, n_patches: int, d_model: int):
        super().__init__()
        self.time = LearnedPositionalEncoding(n_frames, d_model)
        self.space = LearnedPositionalEncoding(n_patches, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"expected video tokens of shape (B, T, N, D), got {tuple(x.shape)}")
        x = self.space(x)  # every frame gets the same spatial table: (B, T, N, D)
        # adds E_time[t] to all N tokens of frame t
        return self.time(x.transpose(1, 2)).transpose(1, 2)  # (B, T, N, D)
