"""Tests for vidlearn.positional.

The sinusoidal table is recomputed here with ``math.sin``/``math.cos`` loops straight
from Vaswani et al. (2017, §3.5), and its properties (relative shifts are rotations, dot
products depend on the offset only, constant norm) are checked against identities
derived by hand, not against the library's own helpers.
"""

from __future__ import annotations

import math

import pytest
import torch

from vidlearn.positional import (
    LearnedPositionalEncoding,
    SeparableSpaceTimeEncoding,
    SinusoidalPositionalEncoding,
    frequencies,
    relative_rotation,
    sinusoidal_encoding,
    space_time_sinusoidal_encoding,
)

DT = torch.float64
ATOL = 1e-10


def _reference_pe(positions, d: int, base: float = 10000.0) -> torch.Tensor:
    """PE[p, 2i] = sin(p / base^(2i/d)), PE[p, 2i+1] = cos(p / base^(2i/d))."""
    rows = []
    for p in positions:
        row = []
        for i in range(d // 2):
            angle = p / base ** (2 * i / d)
            row += [math.sin(angle), math.cos(angle)]
        rows.append(row)
    return torch.tensor(rows, dtype=DT).reshape(len(positions), d)


@pytest.mark.parametrize("P,d", [(1, 2), (5, 4), (7, 6), (12, 8), (50, 16)])
def test_sinusoidal_matches_formula(P, d):
    ref = _reference_pe(range(P), d)
    pe = sinusoidal_encoding(P, d, dtype=DT)
    assert pe.shape == (P, d) and pe.dtype == DT
    torch.testing.assert_close(pe, ref, atol=1e-12, rtol=0)
    # default dtype is float32, the same table rounded
    pe32 = sinusoidal_encoding(P, d)
    assert pe32.dtype == torch.float32
    torch.testing.assert_close(pe32, ref.float(), atol=1e-6, rtol=0)


def test_sinusoidal_default_base_is_10000():
    ref_10000 = _reference_pe(range(40), 8, base=10000.0)
    ref_1000 = _reference_pe(range(40), 8, base=1000.0)
    default = sinusoidal_encoding(40, 8, dtype=DT)
    torch.testing.assert_close(default, ref_10000, atol=1e-12, rtol=0)
    assert not torch.allclose(default, ref_1000, atol=1e-3)

    other = sinusoidal_encoding(40, 8, base=1000.0, dtype=DT)
    torch.testing.assert_close(other, ref_1000, atol=1e-12, rtol=0)
    assert not torch.allclose(other, default, atol=1e-3)


def test_sinusoidal_zero_positions():
    assert sinusoidal_encoding(0, 4).shape == (0, 4)


@pytest.mark.parametrize("d", [1, 3, 7, 0, -2, 4.0])
def test_odd_or_bad_d_model_raises(d):
    with pytest.raises(ValueError, match="even"):
        sinusoidal_encoding(5, d)
    with pytest.raises(ValueError, match="even"):
        SinusoidalPositionalEncoding(d)


@pytest.mark.parametrize("d,base", [(4, 10000.0), (10, 10000.0), (8, 500.0)])
def test_frequencies_formula(d, base):
    expected = torch.tensor([base ** (-2 * i / d) for i in range(d // 2)], dtype=DT)
    torch.testing.assert_close(frequencies(d, base), expected, atol=1e-15, rtol=0)


# ---------------------------------------------------------------------------------------
# relative positions


@pytest.mark.parametrize("d", [2, 8, 16])
@pytest.mark.parametrize("k", [0, 1, 3, 10, -4])
def test_relative_rotation_shifts_positions(d, k):
    R = relative_rotation(k, d)
    assert R.shape == (d, d)
    pe = _reference_pe(range(40), d)
    for t in [4, 5, 9, 17, 25]:
        torch.testing.assert_close(R @ pe[t], pe[t + k], atol=ATOL, rtol=0)


def test_relative_rotation_fractional_offset():
    # R(k) is defined for any real k; check against the formula at fractional positions
    d, k = 8, 0.5
    R = relative_rotation(k, d)
    for t in [0.0, 1.25, 7.0]:
        a, b = _reference_pe([t], d)[0], _reference_pe([t + k], d)[0]
        torch.testing.assert_close(R @ a, b, atol=ATOL, rtol=0)


@pytest.mark.parametrize("d", [4, 12])
@pytest.mark.parametrize("k", [1, 2.5, 37])
def test_relative_rotation_is_orthogonal(d, k):
    R = relative_rotation(k, d)
    eye = torch.eye(d, dtype=DT)
    torch.testing.assert_close(R @ R.T, eye, atol=ATOL, rtol=0)
    torch.testing.assert_close(R.T @ R, eye, atol=ATOL, rtol=0)
    # undoing a shift by k is a shift by -k
    torch.testing.assert_close(R.T, relative_rotation(-k, d), atol=ATOL, rtol=0)


def test_relative_rotation_zero_is_identity_and_composes():
    d = 10
    torch.testing.assert_close(relative_rotation(0, d), torch.eye(d, dtype=DT), atol=0, rtol=0)
    torch.testing.assert_close(
        relative_rotation(3, d) @ relative_rotation(4, d), relative_rotation(7, d), atol=ATOL, rtol=0
    )


@pytest.mark.parametrize("d", [4, 16])
@pytest.mark.parametrize("k", [0, 1, 5, 13])
def test_dot_product_depends_on_offset_only(d, k):
    pe = sinusoidal_encoding(60, d, dtype=DT)
    dots = torch.stack([pe[t] @ pe[t + k] for t in range(60 - k)])
    # sin a sin b + cos a cos b = cos(a - b): the dot product is Σ_i cos(ω_i k)
    expected = sum(math.cos(k / 10000 ** (2 * i / d)) for i in range(d // 2))
    torch.testing.assert_close(dots, torch.full_like(dots, expected), atol=ATOL, rtol=0)


@pytest.mark.parametrize("d", [2, 6, 32])
def test_norm_is_constant(d):
    pe = sinusoidal_encoding(100, d, dtype=DT)
    # each (sin, cos) pair has squared norm 1, and there are d/2 pairs
    torch.testing.assert_close((pe**2).sum(-1), torch.full((100,), d / 2, dtype=DT), atol=ATOL, rtol=0)


# ---------------------------------------------------------------------------------------
# modules


@pytest.mark.parametrize("T", [1, 7, 33])
def test_sinusoidal_module_adds_table(T):
    d = 8
    x = torch.randn(3, T, d, generator=torch.Generator().manual_seed(0), dtype=DT)
    out = SinusoidalPositionalEncoding(d)(x)
    torch.testing.assert_close(out - x, _reference_pe(range(T), d).expand(3, T, d), atol=ATOL, rtol=0)


def test_sinusoidal_module_respects_base_and_width():
    x = torch.zeros(1, 5, 6, dtype=DT)
    torch.testing.assert_close(
        SinusoidalPositionalEncoding(6, base=100.0)(x)[0], _reference_pe(range(5), 6, 100.0), atol=ATOL, rtol=0
    )
    with pytest.raises(ValueError, match="6"):
        SinusoidalPositionalEncoding(6)(torch.zeros(1, 5, 4))


@pytest.mark.parametrize("T", [1, 5, 16])
def test_learned_encoding_within_table(T):
    torch.manual_seed(0)
    enc = LearnedPositionalEncoding(16, 4)
    x = torch.randn(2, T, 4)
    out = enc(x)
    for t in range(T):
        torch.testing.assert_close(out[:, t], x[:, t] + enc.table[t], atol=0, rtol=0)


@pytest.mark.parametrize("max_positions,T", [(16, 17), (8, 32), (1, 2)])
def test_learned_encoding_too_long_clip_raises(max_positions, T):
    enc = LearnedPositionalEncoding(max_positions, 4)
    with pytest.raises(ValueError, match="table") as err:
        enc(torch.zeros(1, T, 4))
    msg = str(err.value)
    assert str(max_positions) in msg and f"T={T}" in msg


def test_learned_encoding_wrong_width_raises():
    with pytest.raises(ValueError, match="4"):
        LearnedPositionalEncoding(8, 4)(torch.zeros(1, 3, 5))


# ---------------------------------------------------------------------------------------
# space-time


def _split(d: int) -> tuple[int, int]:
    # the documented split: two spatial groups of 2·⌊d/6⌋ channels, time gets the rest
    d_s = 2 * (d // 6)
    return d - 2 * d_s, d_s


@pytest.mark.parametrize("T,H,W,d", [(4, 3, 5, 12), (2, 2, 2, 6), (3, 4, 4, 16), (5, 1, 3, 8)])
def test_space_time_encoding_structure(T, H, W, d):
    pe = space_time_sinusoidal_encoding(T, H, W, d, dtype=DT)
    assert pe.shape == (T, H, W, d)
    d_t, d_s = _split(d)
    time, rows, cols = pe[..., :d_t], pe[..., d_t : d_t + d_s], pe[..., d_t + d_s :]
    # time channels do not depend on where in the frame a token is, and so on
    assert torch.equal(time, time[:, :1, :1].expand_as(time))
    assert torch.equal(rows, rows[:1, :, :1].expand_as(rows))
    assert torch.equal(cols, cols[:1, :1, :].expand_as(cols))
    torch.testing.assert_close(time[:, 0, 0], _reference_pe(range(T), d_t), atol=ATOL, rtol=0)
    torch.testing.assert_close(rows[0, :, 0], _reference_pe(range(H), d_s), atol=ATOL, rtol=0)
    torch.testing.assert_close(cols[0, 0, :], _reference_pe(range(W), d_s), atol=ATOL, rtol=0)

    # every token gets its own code
    flat = pe.reshape(T * H * W, d)
    dist = torch.cdist(flat, flat) + torch.eye(T * H * W, dtype=DT) * 1e9
    assert dist.min() > 1e-6


@pytest.mark.parametrize("d", [2, 4])
def test_space_time_encoding_too_narrow_raises(d):
    with pytest.raises(ValueError, match="too small"):
        space_time_sinusoidal_encoding(2, 2, 2, d)


@pytest.mark.parametrize("T,N,D", [(4, 9, 8), (1, 1, 2), (8, 16, 6)])
def test_separable_space_time_encoding(T, N, D):
    torch.manual_seed(0)
    enc = SeparableSpaceTimeEncoding(T, N, D)
    assert sum(p.numel() for p in enc.parameters()) == (T + N) * D
    x = torch.randn(2, T, N, D)
    out = enc(x)
    assert out.shape == x.shape
    time, space = enc.time.table, enc.space.table
    for t in range(T):
        for n in range(N):
            torch.testing.assert_close(out[:, t, n], x[:, t, n] + time[t] + space[n], atol=1e-6, rtol=0)


def test_separable_space_time_rejects_3d_input():
    with pytest.raises(ValueError, match="B, T, N, D"):
        SeparableSpaceTimeEncoding(4, 9, 8)(torch.zeros(4, 9, 8))
