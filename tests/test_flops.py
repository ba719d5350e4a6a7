"""Tests for vidlearn.flops: the symbolic cost formulas against torch's FLOP counter.

The counter's convention is 2 FLOPs per multiply-accumulate for matrix products, and
the formulas count MACs per clip, so a batch of B clips should measure 2·B·MACs.
"""

from __future__ import annotations

import pytest
import sympy as sp
import torch

from vidlearn.attention import MultiHeadAttention
from vidlearn.flops import attention_macs, count_flops, mha_macs, mha_params

# (batch, n_q, n_k or None for self-attention, d, h)
SIZES = [
    (1, 8, None, 16, 4),
    (2, 5, None, 12, 3),
    (1, 16, None, 32, 1),
    (3, 7, 11, 8, 2),  # cross-attention, n_q < n_k
    (1, 9, 4, 24, 6),  # cross-attention, n_q > n_k
]


def _module_and_inputs(B, n_q, n_k, d, h, fast=True):
    torch.manual_seed(0)
    mha = MultiHeadAttention(d, h, fast=fast)
    x = torch.randn(B, n_q, d)
    ctx = None if n_k is None else torch.randn(B, n_k, d)
    return mha, x, ctx


def _projection_macs(n_q, n_k, d):
    # Q and output projections act on the n_q query tokens, K and V on the n_k context tokens
    return 2 * n_q * d * d + 2 * n_k * d * d


def _attention_core_macs(n_q, n_k, d):
    # QKᵀ is n_q·n_k dot products of width d/h per head, AV the same; h·(d/h) = d
    return 2 * n_q * n_k * d


def test_counter_convention_two_flops_per_mac():
    # the premise of every test below: FlopCounterMode counts 2 per multiply-accumulate
    a, b = torch.randn(3, 5), torch.randn(5, 7)
    assert count_flops(torch.matmul, a, b) == 2 * 3 * 5 * 7


@pytest.mark.parametrize("B,n_q,n_k,d,h", SIZES)
def test_mha_macs_formula(B, n_q, n_k, d, h):
    nk = n_q if n_k is None else n_k
    assert mha_macs(n_q, n_k, d, h) == _projection_macs(n_q, nk, d) + _attention_core_macs(n_q, nk, d)
    assert attention_macs(n_q, n_k, sp.Rational(d, h)) * h == _attention_core_macs(n_q, nk, d)


@pytest.mark.parametrize("B,n_q,n_k,d,h", SIZES)
def test_count_flops_forced_math_equals_formula(B, n_q, n_k, d, h):
    mha, x, ctx = _module_and_inputs(B, n_q, n_k, d, h)
    measured = count_flops(mha, x, ctx, force_math=True)
    assert measured == B * 2 * int(mha_macs(n_q, n_k, d, h))


@pytest.mark.parametrize("B,n_q,n_k,d,h", SIZES)
def test_count_flops_symbolic_formula_substituted(B, n_q, n_k, d, h):
    # the same check through the symbolic expression, so subs() on the printed formula works
    N, M, D, H = sp.symbols("N M d h", positive=True, integer=True)
    expr = mha_macs("N", "M", "d", "h")
    value = expr.subs({N: n_q, M: n_q if n_k is None else n_k, D: d, H: h})
    mha, x, ctx = _module_and_inputs(B, n_q, n_k, d, h)
    assert count_flops(mha, x, ctx) == B * 2 * int(value)


@pytest.mark.parametrize("B,n_q,n_k,d,h", SIZES)
def test_fused_cpu_kernel_hides_attention(B, n_q, n_k, d, h):
    nk = n_q if n_k is None else n_k
    mha, x, ctx = _module_and_inputs(B, n_q, n_k, d, h)
    fused = count_flops(mha, x, ctx, force_math=False)
    math_ = count_flops(mha, x, ctx, force_math=True)
    # the fused CPU kernel counts 0, so only the four projections remain
    assert fused == B * 2 * _projection_macs(n_q, nk, d)
    assert math_ - fused == B * 2 * h * int(attention_macs(n_q, nk, sp.Rational(d, h)))


@pytest.mark.parametrize("B,n_q,n_k,d,h", SIZES)
def test_from_scratch_path_is_always_counted(B, n_q, n_k, d, h):
    # the from-scratch path is plain matmuls, which the counter sees with or without MATH
    mha, x, ctx = _module_and_inputs(B, n_q, n_k, d, h, fast=False)
    expected = B * 2 * int(mha_macs(n_q, n_k, d, h))
    assert count_flops(mha, x, ctx, force_math=False) == expected
    assert count_flops(mha, x, ctx, force_math=True) == expected


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("d,h", [(4, 1), (8, 2), (12, 3), (64, 8)])
def test_mha_params_matches_module(d, h, bias):
    mha = MultiHeadAttention(d, h, bias=bias)
    assert mha_params(d, bias=bias) == sum(p.numel() for p in mha.parameters())
    D = sp.Symbol("d", positive=True, integer=True)
    assert mha_params(bias=bias).subs(D, d) == sum(p.numel() for p in mha.parameters())


def test_mha_macs_is_independent_of_heads():
    h = sp.Symbol("h", positive=True, integer=True)
    expr = mha_macs()
    assert h not in expr.free_symbols
    assert sp.diff(mha_macs("N", "M", "d", "h"), h) == 0
    assert sp.simplify(mha_macs(h=1) - mha_macs(h=16)) == 0
    # and it is the formula written out independently
    N, d = sp.symbols("N d", positive=True, integer=True)
    assert sp.simplify(expr - (4 * N * d**2 + 2 * N**2 * d)) == 0


@pytest.mark.parametrize("h", [1, 2, 4, 8])
def test_measured_count_does_not_change_with_heads(h):
    # the symbolic cancellation of h shows up in the measured count too
    mha, x, _ = _module_and_inputs(2, 10, None, 16, h)
    assert count_flops(mha, x) == 2 * 2 * (_projection_macs(10, 10, 16) + _attention_core_macs(10, 10, 16))


def test_forward_seconds_warms_up_then_takes_the_median_without_grad():
    from vidlearn.flops import forward_seconds

    calls = []

    class Probe(torch.nn.Module):
        def forward(self, x):
            calls.append(torch.is_grad_enabled())
            return x * 2

    seconds = forward_seconds(Probe(), torch.ones(3), repeats=4)
    assert len(calls) == 5 and not any(calls)  # one warm-up + four timed calls, all without grad
    assert 0 <= seconds < 1
    with pytest.raises(ValueError, match="repeats"):
        forward_seconds(Probe(), torch.ones(3), repeats=0)
