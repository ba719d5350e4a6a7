"""Tests for vidlearn.masks: the course's one mask convention (True = may attend).

Expected masks are built element by element from their definitions with Python loops,
so a vectorised slip in the library (an off-by-one in ``tril``, a flipped comparison)
cannot also hide in the expectation.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vidlearn.attention import MultiHeadAttention, scaled_dot_product_attention, softmax
from vidlearn.masks import (
    causal_mask,
    combine_masks,
    padding_mask,
    to_additive,
    to_torch_mha,
    validate_mask,
)

DT = torch.float64
ATOL = 1e-10
NEG_INF = float("-inf")


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------
# causal_mask


@pytest.mark.parametrize("T", [1, 2, 5, 8])
def test_causal_mask_values(T):
    m = causal_mask(T)
    assert m.dtype == torch.bool and m.shape == (T, T)
    expected = torch.tensor([[s <= t for s in range(T)] for t in range(T)])
    assert torch.equal(m, expected)
    assert m.diagonal().all()  # a frame may always look at itself


@pytest.mark.parametrize("T", [0, -1, -5, 2.0, "3", None])
def test_causal_mask_rejects_bad_T(T):
    with pytest.raises(ValueError, match="T"):
        causal_mask(T)


def test_causal_mask_blocks_the_future():
    # changing a later frame must not change any earlier frame's output
    g = _gen(1)
    x = torch.randn(7, 4, generator=g, dtype=DT)
    y = x.clone()
    y[5:] = torch.randn(2, 4, generator=g, dtype=DT)
    m = causal_mask(7)
    for fast in (False, True):
        ox = scaled_dot_product_attention(x, x, x, m, fast=fast)
        oy = scaled_dot_product_attention(y, y, y, m, fast=fast)
        torch.testing.assert_close(ox[:5], oy[:5], atol=ATOL, rtol=0)
        assert not torch.allclose(ox[5:], oy[5:])


# ---------------------------------------------------------------------------------------
# padding_mask


@pytest.mark.parametrize(
    "lengths,T",
    [([3, 0, 5], 5), ([1], 1), ([4, 4], 4), ([2, 7, 1, 5], 8)],
)
@pytest.mark.parametrize("as_tensor", [False, True])
def test_padding_mask_values(lengths, T, as_tensor):
    m = padding_mask(torch.tensor(lengths) if as_tensor else lengths, T)
    assert m.dtype == torch.bool and m.shape == (len(lengths), 1, T)
    expected = torch.tensor([[[t < n for t in range(T)]] for n in lengths])
    assert torch.equal(m, expected)


@pytest.mark.parametrize(
    "lengths,T,match",
    [
        ([3, 6], 5, "T=5"),  # longer than the padded clip
        ([-1, 2], 5, "0, T=5"),  # negative
        ([1.5, 2.0], 5, "integer"),  # fractional frames make no sense
        ([[1, 2]], 5, "1-D"),
        ([True, False], 5, "integer"),
    ],
)
def test_padding_mask_rejects_bad_lengths(lengths, T, match):
    with pytest.raises(ValueError, match=match):
        padding_mask(lengths, T)


# ---------------------------------------------------------------------------------------
# combine_masks / to_additive / to_torch_mha


def test_combine_bool_masks_is_and():
    g = _gen(2)
    a = torch.rand(3, 4, 4, generator=g) < 0.5
    b = torch.rand(3, 4, 4, generator=g) < 0.5
    c = torch.rand(3, 4, 4, generator=g) < 0.5
    out = combine_masks(a, b, c)
    assert out.dtype == torch.bool
    expected = torch.tensor(
        [[[bool(a[i, j, k]) and bool(b[i, j, k]) and bool(c[i, j, k]) for k in range(4)] for j in range(4)] for i in range(3)]
    )
    assert torch.equal(out, expected)


def test_combine_causal_and_padding_broadcasts():
    lengths, T = [5, 3, 1], 5
    out = combine_masks(causal_mask(T), padding_mask(lengths, T))  # (T, T) with (B, 1, T)
    expected = torch.tensor(
        [[[s <= t and s < n for s in range(T)] for t in range(T)] for n in lengths]
    )
    assert torch.equal(out, expected)


@pytest.mark.parametrize("float_dtype", [torch.float32, torch.float64])
def test_combine_with_float_is_additive_sum(float_dtype):
    g = _gen(3)
    b = torch.rand(4, 6, generator=g) < 0.6
    f = torch.randn(4, 6, generator=g, dtype=float_dtype)
    out = combine_masks(b, f)
    assert out.dtype == float_dtype
    expected = torch.tensor(
        [[(0.0 if b[i, j] else NEG_INF) + float(f[i, j]) for j in range(6)] for i in range(4)], dtype=float_dtype
    )
    assert torch.equal(out, expected)
    # order does not matter
    assert torch.equal(combine_masks(f, b), expected)


def test_combine_two_floats_adds():
    g = _gen(4)
    f1 = torch.randn(3, 5, generator=g, dtype=DT)
    f2 = torch.randn(1, 5, generator=g, dtype=DT)
    assert torch.equal(combine_masks(f1, f2), f1 + f2)


def test_combine_masks_none_handling():
    m = causal_mask(4)
    assert combine_masks() is None
    assert combine_masks(None) is None
    assert combine_masks(None, None) is None
    assert torch.equal(combine_masks(None, m, None), m)
    f = torch.randn(4, 4, generator=_gen(5))
    assert torch.equal(combine_masks(f, None), f)


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8])
def test_combine_masks_rejects_int(dtype):
    with pytest.raises(ValueError, match="dtype"):
        combine_masks(causal_mask(3), torch.ones(3, 3, dtype=dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_to_additive_bool(dtype):
    m = torch.rand(5, 7, generator=_gen(6)) < 0.5
    out = to_additive(m, dtype)
    assert out.dtype == dtype
    expected = torch.tensor([[0.0 if m[i, j] else NEG_INF for j in range(7)] for i in range(5)], dtype=dtype)
    assert torch.equal(out, expected)


def test_to_additive_float_passes_values():
    f = torch.randn(3, 3, generator=_gen(7))
    f[0, 1] = NEG_INF
    assert torch.equal(to_additive(f), f)


def test_to_additive_rejects_int():
    with pytest.raises(ValueError, match="dtype"):
        to_additive(torch.ones(2, 2, dtype=torch.int32))


def test_bool_and_additive_masks_give_the_same_attention():
    g = _gen(8)
    q, k, v = (torch.randn(2, 5, 3, generator=g, dtype=DT) for _ in range(3))
    m = combine_masks(causal_mask(5), padding_mask([5, 3], 5))
    for fast in (False, True):
        a = scaled_dot_product_attention(q, k, v, m, fast=fast)
        b = scaled_dot_product_attention(q, k, v, to_additive(m, DT), fast=fast)
        torch.testing.assert_close(a, b, atol=ATOL, rtol=0)


def test_to_torch_mha_bool_inverts():
    m = torch.rand(4, 6, generator=_gen(9)) < 0.5
    out = to_torch_mha(m)
    assert out.dtype == torch.bool
    assert torch.equal(out, torch.tensor([[not bool(m[i, j]) for j in range(6)] for i in range(4)]))


def test_to_torch_mha_keeps_float_dtype():
    # An additive mask already has nn.MultiheadAttention's meaning, so converting it
    # should change nothing: same dtype, same values.
    f = torch.randn(4, 6, generator=_gen(10), dtype=DT)
    out = to_torch_mha(f)
    assert out.dtype == DT
    assert torch.equal(out, f)


# ---------------------------------------------------------------------------------------
# validate_mask


@pytest.mark.parametrize(
    "shape",
    [(4, 5), (1, 5), (4, 1), (5,), (3, 4, 5), (2, 3, 4, 5), (2, 1, 1, 5), (1, 1, 1, 1), ()],
)
def test_validate_mask_accepts_broadcastable(shape):
    validate_mask(torch.ones(shape, dtype=torch.bool), (2, 3, 4, 5))
    validate_mask(torch.zeros(shape), (2, 3, 4, 5))


@pytest.mark.parametrize("shape", [(5, 4), (4, 6), (3, 5), (2, 4, 5), (1, 2, 3, 4, 5), (2, 3, 4, 5, 1)])
def test_validate_mask_rejects_bad_shape(shape):
    with pytest.raises(ValueError, match=r"\(4, 5\)") as err:
        validate_mask(torch.ones(shape, dtype=torch.bool), (2, 3, 4, 5))
    assert str(tuple(shape)) in str(err.value)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int8, torch.uint8, torch.complex64])
def test_validate_mask_rejects_dtype(dtype):
    with pytest.raises(ValueError, match="dtype") as err:
        validate_mask(torch.ones(4, 5, dtype=dtype), (4, 5))
    assert str(dtype) in str(err.value)


def test_validate_mask_rejects_non_tensor_and_uses_name():
    with pytest.raises(ValueError, match="attn_bias must be a torch.Tensor"):
        validate_mask([[True]], (1, 1), name="attn_bias")
    with pytest.raises(ValueError, match="^my_mask"):
        validate_mask(torch.ones(3, 3, dtype=torch.bool), (4, 5), name="my_mask")


# ---------------------------------------------------------------------------------------
# fully masked rows and padded frames


def test_naive_softmax_of_blocked_row_is_nan_library_gives_zeros():
    row = torch.full((2, 6), NEG_INF, dtype=DT)
    row[1, 2] = 0.0
    naive = torch.softmax(row, dim=-1)
    assert naive[0].isnan().all()  # exp(-inf - (-inf)) = exp(nan)
    out = softmax(row, dim=-1)
    assert torch.equal(out[0], torch.zeros(6, dtype=DT))
    assert torch.equal(out[1], naive[1])
    # and the NaN really does spread: one NaN weight row poisons the product with V
    v = torch.randn(6, 3, generator=_gen(11), dtype=DT)
    assert (naive @ v)[0].isnan().all() and (out @ v).isfinite().all()


def _padded_clips(g, lengths, T, D):
    """Padded batch whose padded frames hold large garbage, not zeros.

    Garbage (not zeros) makes the test fail if a padded key leaks into the softmax.
    """
    x = torch.randn(len(lengths), T, D, generator=g, dtype=DT)
    for b, n in enumerate(lengths):
        x[b, n:] = 100 * torch.randn(T - n, D, generator=g, dtype=DT)
    return x


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("lengths,T", [([5, 3, 1], 5), ([2, 8, 6], 8)])
def test_padded_frames_change_nothing_sdpa(lengths, T, causal, fast):
    g = _gen(12)
    x = _padded_clips(g, lengths, T, 4)
    mask = padding_mask(lengths, T)
    if causal:
        mask = combine_masks(mask, causal_mask(T))
    out = scaled_dot_product_attention(x, x, x, mask, fast=fast)
    for b, n in enumerate(lengths):
        clip = x[b, :n]
        ref = F.scaled_dot_product_attention(clip, clip, clip, is_causal=causal)
        torch.testing.assert_close(out[b, :n], ref, atol=ATOL, rtol=0)


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_padded_frames_change_nothing_mha(causal, fast):
    g = _gen(13)
    lengths, T, D = [6, 2, 4], 6, 8
    torch.manual_seed(13)
    mha = MultiHeadAttention(D, 2, fast=fast).to(DT)
    x = _padded_clips(g, lengths, T, D)
    mask = padding_mask(lengths, T)
    if causal:
        mask = combine_masks(mask, causal_mask(T))
    out = mha(x, mask=mask)
    for b, n in enumerate(lengths):
        ref = mha(x[b, :n], mask=causal_mask(n) if causal else None)  # unbatched, unpadded
        torch.testing.assert_close(out[b, :n], ref, atol=ATOL, rtol=0)
