"""Tests for vidlearn.attention against torch's own implementations.

Every expected value comes from torch (``F.scaled_dot_product_attention``,
``nn.MultiheadAttention``, ``torch.softmax``) or from the formula written out here; no
numbers are copied from the library's own output. Float64 throughout so that a 1e-10
tolerance separates "the same computation" from "a subtly different one".
"""

from __future__ import annotations

import math
import zlib

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vidlearn.attention import (
    MultiHeadAttention,
    attention_weights,
    merge_heads,
    scaled_dot_product_attention,
    softmax,
    split_heads,
)
from vidlearn.masks import causal_mask, padding_mask, to_torch_mha

DT = torch.float64
ATOL = 1e-10


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(g: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=g, dtype=DT)


def _bool_mask(g: torch.Generator, shape: tuple[int, ...]) -> torch.Tensor:
    """Random boolean mask with at least one allowed key per query row.

    A fully blocked row is its own test below: torch's reference gives it a
    different treatment in different versions, so the comparisons avoid it.
    """
    m = torch.rand(shape, generator=g) < 0.5
    keep = torch.randint(0, shape[-1], shape[:-1], generator=g)
    return m.scatter(-1, keep[..., None], True)


def _additive_mask(g: torch.Generator, shape: tuple[int, ...]) -> torch.Tensor:
    """Finite biases plus some -inf entries, never a whole row of -inf."""
    bias = _randn(g, *shape)
    return bias.masked_fill(~_bool_mask(g, shape), float("-inf"))


def _make_mask(kind: str, g: torch.Generator, batch: tuple[int, ...], Lq: int, Lk: int):
    if kind == "none":
        return None
    if kind == "causal":
        # causal_mask is square; for cross-attention the lower-triangular pattern still
        # leaves key 0 open to every query.
        return causal_mask(Lq) if Lq == Lk else torch.ones(Lq, Lk, dtype=torch.bool).tril()
    if kind == "bool":
        return _bool_mask(g, (*batch, Lq, Lk))
    if kind == "bool_keys":
        # a per-key mask broadcast over queries, the shape padding masks have
        return _bool_mask(g, (*batch[:-1], 1, 1, Lk) if batch else (1, Lk))
    if kind == "additive":
        return _additive_mask(g, (*batch, Lq, Lk))
    raise AssertionError(kind)


# (leading batch/head axes, L_q, L_k, d_k, d_v)
SHAPES = [
    ((2, 3), 6, 6, 4, 4),  # batched self-attention
    ((), 7, 5, 3, 6),  # unbatched, odd sizes, cross-attention, d_v != d_k
    ((2, 3), 7, 5, 3, 2),  # batched version of the odd case
    ((4,), 1, 9, 5, 5),  # a single query
    ((1, 2), 5, 1, 2, 3),  # a single key
]
MASK_KINDS = ["none", "causal", "bool", "bool_keys", "additive"]


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("kind", MASK_KINDS)
@pytest.mark.parametrize("batch,Lq,Lk,dk,dv", SHAPES)
def test_sdpa_matches_torch(batch, Lq, Lk, dk, dv, kind, fast):
    # crc32, not hash(): str hashes change between runs
    g = _gen(zlib.crc32(repr((batch, Lq, Lk, dk, dv, kind)).encode()))
    q, k, v = _randn(g, *batch, Lq, dk), _randn(g, *batch, Lk, dk), _randn(g, *batch, Lk, dv)
    mask = _make_mask(kind, g, batch, Lq, Lk)
    out = scaled_dot_product_attention(q, k, v, mask, fast=fast)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert out.shape == (*batch, Lq, dv)
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)


@pytest.mark.parametrize("fast", [False, True])
def test_sdpa_matches_explicit_formula(fast):
    # A second reference that does not go through torch's SDPA at all, so the
    # fast path (which *is* torch's SDPA) is also checked against the math.
    g = _gen(1)
    q, k, v = _randn(g, 2, 5, 4), _randn(g, 2, 8, 4), _randn(g, 2, 8, 3)
    mask = _additive_mask(g, (2, 5, 8))
    logits = q @ k.transpose(-2, -1) / math.sqrt(4) + mask
    ref = torch.softmax(logits, dim=-1) @ v
    out = scaled_dot_product_attention(q, k, v, mask, fast=fast)
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("scale", [0.25, 1.0, 3.0])
def test_sdpa_explicit_scale(scale, fast):
    g = _gen(2)
    q, k, v = _randn(g, 3, 6, 4), _randn(g, 3, 6, 4), _randn(g, 3, 6, 4)
    out = scaled_dot_product_attention(q, k, v, scale=scale, fast=fast)
    ref = F.scaled_dot_product_attention(q, k, v, scale=scale)
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)


@pytest.mark.parametrize("kind", ["none", "causal", "bool", "additive"])
@pytest.mark.parametrize("batch,Lq,Lk,dk,dv", SHAPES)
def test_return_weights(batch, Lq, Lk, dk, dv, kind):
    g = _gen(3)
    q, k, v = _randn(g, *batch, Lq, dk), _randn(g, *batch, Lk, dk), _randn(g, *batch, Lk, dv)
    mask = _make_mask(kind, g, batch, Lq, Lk)
    out, w = scaled_dot_product_attention(q, k, v, mask, return_weights=True)
    assert w.shape == (*batch, Lq, Lk)
    torch.testing.assert_close(w.sum(-1), torch.ones(*batch, Lq, dtype=DT), atol=ATOL, rtol=0)

    logits = (q @ k.transpose(-2, -1)) / math.sqrt(dk)
    if mask is not None and mask.dtype == torch.bool:
        logits = logits.masked_fill(~mask, float("-inf"))
    elif mask is not None:
        logits = logits + mask
    torch.testing.assert_close(w, torch.softmax(logits, dim=-1), atol=ATOL, rtol=0)
    torch.testing.assert_close(out, w @ v, atol=ATOL, rtol=0)
    torch.testing.assert_close(attention_weights(q, k, mask), w, atol=0, rtol=0)
    if mask is not None and mask.dtype == torch.bool:
        # blocked pairs get exactly zero weight, not merely a tiny one
        assert (w.masked_select(~mask.expand_as(w)) == 0).all()


def _fully_masked(kind: str, Lq: int, Lk: int, rows: list[int]) -> torch.Tensor:
    m = torch.ones(Lq, Lk, dtype=torch.bool)
    m[rows] = False
    if kind == "bool":
        return m
    return torch.zeros(Lq, Lk, dtype=DT).masked_fill(~m, float("-inf"))


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("kind", ["bool", "additive"])
@pytest.mark.parametrize("batch", [(), (2, 3)])
def test_fully_masked_rows_are_zero(batch, kind, fast):
    g = _gen(4)
    Lq, Lk, rows = 5, 4, [1, 3]
    q, k, v = _randn(g, *batch, Lq, 3), _randn(g, *batch, Lk, 3), _randn(g, *batch, Lk, 2)
    mask = _fully_masked(kind, Lq, Lk, rows)
    out = scaled_dot_product_attention(q, k, v, mask, fast=fast)
    assert not out.isnan().any()
    assert torch.equal(out[..., rows, :], torch.zeros_like(out[..., rows, :]))
    # the rows that do see keys are untouched by their blocked neighbours
    live = [r for r in range(Lq) if r not in rows]
    ref = F.scaled_dot_product_attention(q[..., live, :], k, v)
    torch.testing.assert_close(out[..., live, :], ref, atol=ATOL, rtol=0)


@pytest.mark.parametrize("kind", ["bool", "additive"])
def test_fully_masked_rows_have_finite_gradients(kind):
    g = _gen(5)
    Lq, Lk, rows = 5, 4, [0, 2]
    q, k, v = (t.requires_grad_() for t in (_randn(g, 2, Lq, 3), _randn(g, 2, Lk, 3), _randn(g, 2, Lk, 2)))
    out, w = scaled_dot_product_attention(q, k, v, _fully_masked(kind, Lq, Lk, rows), return_weights=True)
    assert not w.isnan().any()
    assert torch.equal(w[..., rows, :], torch.zeros_like(w[..., rows, :]))
    (out * _randn(g, *out.shape)).sum().backward()
    for t in (q, k, v):
        assert t.grad is not None and t.grad.isfinite().all()
    # a query that attends to nothing has a constant (zero) output, so its gradient is 0
    assert torch.equal(q.grad[..., rows, :], torch.zeros_like(q.grad[..., rows, :]))


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("factor", [1e4, -1e4, 1e6])
def test_large_logits_are_stable(factor, fast):
    g = _gen(6)
    q, k, v = _randn(g, 2, 6, 4) * factor, _randn(g, 2, 7, 4), _randn(g, 2, 7, 4)
    out = scaled_dot_product_attention(q, k, v, fast=fast)
    assert out.isfinite().all()
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), atol=ATOL, rtol=0)
    # the unshifted formula exp(x)/Σexp(x) overflows at this size, so this test can tell
    # a stable softmax from a naive one
    logits = q @ k.transpose(-2, -1) / 2
    naive = torch.exp(logits) / torch.exp(logits).sum(-1, keepdim=True)
    assert not naive.isfinite().all()


@pytest.mark.parametrize("dim", [-1, 0, 1])
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 6)])
def test_softmax_matches_torch(shape, dim):
    if dim >= len(shape):
        dim = -1
    x = _randn(_gen(7), *shape) * 5
    torch.testing.assert_close(softmax(x, dim=dim), torch.softmax(x, dim=dim), atol=ATOL, rtol=0)


def test_softmax_partial_and_full_minus_inf_rows():
    x = _randn(_gen(8), 4, 5)
    x[0, [1, 3]] = float("-inf")  # partly blocked: torch handles this one correctly
    x[2] = float("-inf")  # fully blocked: torch gives NaN
    out = softmax(x)
    torch.testing.assert_close(out[[0, 1, 3]], torch.softmax(x[[0, 1, 3]], -1), atol=ATOL, rtol=0)
    assert torch.equal(out[2], torch.zeros(5, dtype=DT))
    assert torch.softmax(x, -1)[2].isnan().all()


def test_softmax_large_values():
    x = _randn(_gen(9), 3, 7) * 1e5
    out = softmax(x)
    assert out.isfinite().all()
    torch.testing.assert_close(out, torch.softmax(x, -1), atol=ATOL, rtol=0)


# ---------------------------------------------------------------------------------------
# heads


@pytest.mark.parametrize("batch", [(), (2,), (2, 3)])
@pytest.mark.parametrize("h,e", [(1, 4), (3, 2), (4, 5)])
def test_split_merge_heads(batch, h, e):
    x = _randn(_gen(10), *batch, 6, h * e)
    s = split_heads(x, h)
    assert s.shape == (*batch, h, 6, e)
    for i in range(h):
        assert torch.equal(s[..., i, :, :], x[..., i * e : (i + 1) * e])
    assert torch.equal(merge_heads(s), x)
    y = _randn(_gen(11), *batch, h, 6, e)
    assert torch.equal(split_heads(merge_heads(y), h), y)


def test_split_heads_rejects_indivisible_width():
    with pytest.raises(ValueError, match="divisible"):
        split_heads(torch.zeros(2, 3, 10), 3)


# ---------------------------------------------------------------------------------------
# MultiHeadAttention vs nn.MultiheadAttention


def _pair(D: int, h: int, fast: bool, bias: bool = True, seed: int = 0):
    torch.manual_seed(seed)
    ours = MultiHeadAttention(D, h, bias=bias, fast=fast).to(DT)
    ref = nn.MultiheadAttention(D, h, bias=bias, batch_first=True).to(DT)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([ours.w_q.weight, ours.w_k.weight, ours.w_v.weight]))
        ref.out_proj.weight.copy_(ours.w_o.weight)
        if bias:
            ref.in_proj_bias.copy_(torch.cat([ours.w_q.bias, ours.w_k.bias, ours.w_v.bias]))
            ref.out_proj.bias.copy_(ours.w_o.bias)
    return ours, ref


def _mha_masks(kind: str, g, B: int | None, h: int, Lq: int, Lk: int):
    """(our mask, torch kwargs) for the same blocking pattern.

    torch's boolean masks mean True = blocked, and its 3-D masks are (B·h, L_q, L_k)
    in batch-major order, so per-clip masks are repeated per head.
    """
    if kind == "none":
        return None, {}
    if kind == "causal":
        m = causal_mask(Lq)
        return m, {"attn_mask": to_torch_mha(m)}
    if kind == "bool2d":
        m = _bool_mask(g, (Lq, Lk))
        return m, {"attn_mask": to_torch_mha(m)}
    if kind == "additive2d":
        m = _additive_mask(g, (Lq, Lk))
        return m, {"attn_mask": to_torch_mha(m)}
    if kind == "per_clip":
        m = _bool_mask(g, (B, Lq, Lk))
        return m, {"attn_mask": to_torch_mha(m).repeat_interleave(h, dim=0)}
    if kind == "per_head":
        m = _bool_mask(g, (B, h, Lq, Lk))
        return m, {"attn_mask": to_torch_mha(m).reshape(B * h, Lq, Lk)}
    if kind == "padding":
        lengths = torch.randint(1, Lk + 1, (B,), generator=g)
        m = padding_mask(lengths, Lk)  # (B, 1, L_k)
        return m, {"key_padding_mask": ~m[:, 0, :]}
    raise AssertionError(kind)


MHA_CASES = [
    # (B or None for unbatched, L_q, L_k or None for self-attention, D, h, mask kind)
    (2, 6, None, 12, 3, "none"),
    (2, 6, None, 12, 3, "causal"),
    (2, 6, None, 12, 3, "bool2d"),
    (2, 6, None, 12, 3, "additive2d"),
    (3, 5, None, 8, 2, "per_clip"),
    (2, 5, None, 8, 4, "per_head"),
    (3, 7, None, 8, 2, "padding"),
    (2, 4, 9, 12, 4, "none"),
    (2, 4, 9, 12, 4, "bool2d"),
    (2, 4, 9, 12, 4, "additive2d"),
    (2, 5, 3, 6, 3, "per_clip"),
    (3, 5, 7, 6, 1, "padding"),
    (None, 6, None, 12, 3, "none"),
    (None, 6, None, 12, 3, "causal"),
    (None, 5, 8, 12, 6, "none"),
    (None, 5, 8, 12, 6, "bool2d"),
    (None, 5, 8, 12, 6, "additive2d"),
]


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("B,Lq,Lk,D,h,kind", MHA_CASES)
def test_mha_matches_torch(B, Lq, Lk, D, h, kind, fast):
    g = _gen(12)
    ours, ref = _pair(D, h, fast)
    lead = () if B is None else (B,)
    x = _randn(g, *lead, Lq, D)
    ctx = None if Lk is None else _randn(g, *lead, Lk, D)
    kv = x if ctx is None else ctx
    mask, kw = _mha_masks(kind, g, B, h, Lq, kv.shape[-2])

    out = ours(x, ctx, mask=mask)
    expected, _ = ref(x, kv, kv, need_weights=False, **kw)
    assert out.shape == (*lead, Lq, D)
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=0)

    out_w, w = ours(x, ctx, mask=mask, return_weights=True)
    expected_avg, w_avg = ref(x, kv, kv, need_weights=True, average_attn_weights=True, **kw)
    _, w_heads = ref(x, kv, kv, need_weights=True, average_attn_weights=False, **kw)
    torch.testing.assert_close(out_w, expected_avg, atol=ATOL, rtol=0)
    assert w.shape == (*lead, h, Lq, kv.shape[-2])
    torch.testing.assert_close(w.mean(dim=-3), w_avg, atol=ATOL, rtol=0)
    torch.testing.assert_close(w, w_heads, atol=ATOL, rtol=0)


@pytest.mark.parametrize("fast", [True, False])
def test_mha_without_bias_matches_torch(fast):
    g = _gen(13)
    ours, ref = _pair(8, 2, fast, bias=False)
    x, ctx = _randn(g, 2, 5, 8), _randn(g, 2, 3, 8)
    expected, _ = ref(x, ctx, ctx, need_weights=False)
    torch.testing.assert_close(ours(x, ctx), expected, atol=ATOL, rtol=0)


def test_mha_fast_and_scratch_agree_with_gradients():
    # the module's two settings must be interchangeable, gradients included
    g = _gen(14)
    fast, _ = _pair(12, 3, True, seed=1)
    slow, _ = _pair(12, 3, False, seed=1)
    x = _randn(g, 2, 6, 12)
    mask = padding_mask([6, 4], 6) & causal_mask(6)
    (fast(x, mask=mask) ** 2).sum().backward()
    (slow(x, mask=mask) ** 2).sum().backward()
    for (name, pf), (_, ps) in zip(fast.named_parameters(), slow.named_parameters()):
        torch.testing.assert_close(pf.grad, ps.grad, atol=ATOL, rtol=0, msg=name)


# ---------------------------------------------------------------------------------------
# input validation


def _q(*shape, dtype=DT):
    return torch.zeros(*shape, dtype=dtype)


@pytest.mark.parametrize("fast", [False, True])
def test_mismatched_dk_raises(fast):
    with pytest.raises(ValueError, match="d_k"):
        scaled_dot_product_attention(_q(4, 3), _q(5, 4), _q(5, 4), fast=fast)


@pytest.mark.parametrize("fast", [False, True])
def test_mismatched_lk_raises(fast):
    with pytest.raises(ValueError, match="L_k") as err:
        scaled_dot_product_attention(_q(4, 3), _q(5, 3), _q(6, 3), fast=fast)
    assert "(5, 3)" in str(err.value) and "(6, 3)" in str(err.value)


@pytest.mark.parametrize("which", [0, 1, 2])
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_non_floating_inputs_raise(which, dtype):
    args = [_q(4, 3), _q(4, 3), _q(4, 3)]
    args[which] = _q(4, 3, dtype=dtype)
    with pytest.raises(ValueError, match="floating") as err:
        scaled_dot_product_attention(*args)
    assert str(dtype) in str(err.value)


def test_mixed_dtypes_raise():
    with pytest.raises(ValueError, match="dtype"):
        scaled_dot_product_attention(_q(4, 3), _q(4, 3, dtype=torch.float32), _q(4, 3))


def test_unbroadcastable_batch_axes_raise():
    with pytest.raises(ValueError, match="broadcast"):
        scaled_dot_product_attention(_q(2, 4, 3), _q(3, 4, 3), _q(3, 4, 3))


@pytest.mark.parametrize("d_model,h", [(10, 3), (12, 5), (7, 2)])
def test_mha_indivisible_width_raises(d_model, h):
    with pytest.raises(ValueError, match="divisible") as err:
        MultiHeadAttention(d_model, h)
    assert str(d_model) in str(err.value) and str(h) in str(err.value)


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("bad_shape", [(3, 5), (4, 6), (4, 5, 5), (2, 2, 4, 5)])
def test_wrong_mask_shape_names_expected_shape(bad_shape, fast):
    q, k, v = _q(3, 4, 2), _q(3, 5, 2), _q(3, 5, 2)  # logits (3, 4, 5)
    with pytest.raises(ValueError, match="mask") as err:
        scaled_dot_product_attention(q, k, v, torch.ones(bad_shape, dtype=torch.bool), fast=fast)
    assert "(4, 5)" in str(err.value)


@pytest.mark.parametrize("fast", [True, False])
def test_mha_wrong_mask_shape_raises(fast):
    m = MultiHeadAttention(8, 2, fast=fast)
    with pytest.raises(ValueError, match=r"\(6, 6\)"):
        m(torch.zeros(2, 6, 8), mask=torch.ones(5, 6, dtype=torch.bool))


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8])
def test_int_mask_raises(dtype, fast):
    with pytest.raises(ValueError, match="dtype") as err:
        scaled_dot_product_attention(_q(4, 3), _q(4, 3), _q(4, 3), torch.ones(4, 4, dtype=dtype), fast=fast)
    assert str(dtype) in str(err.value)


def test_fast_path_refuses_weights():
    with pytest.raises(ValueError, match="weights"):
        scaled_dot_product_attention(_q(4, 3), _q(4, 3), _q(4, 3), return_weights=True, fast=True)


@pytest.mark.parametrize("shape", [(2, 6, 7), (6,), (1, 2, 6, 8)])
def test_mha_wrong_input_shape_raises(shape):
    with pytest.raises(ValueError, match="8"):
        MultiHeadAttention(8, 2)(torch.zeros(shape))


def test_mha_rejects_unbatched_queries_with_batched_context():
    # silently attending with clip 0's context only would hide a shape bug
    m = MultiHeadAttention(8, 2)
    with pytest.raises(ValueError, match="both be batched"):
        m(torch.randn(5, 8), torch.randn(3, 4, 8))
