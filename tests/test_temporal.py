"""Temporal attention and X-CLIP's cross-frame attention."""

import pytest
import torch

from vidlearn.flops import block_macs, count_flops, cross_frame_macs, evaluate
from vidlearn.blocks import ResidualAttentionBlock
from vidlearn.temporal import CrossFrameAttention, KVCache, TemporalAttention

DT = torch.float64


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _layer(**kw):
    return TemporalAttention(12, 3, **kw).to(DT)


@pytest.mark.parametrize("positional", ["sinusoidal", "learned", None])
def test_causal_layer_has_no_gradient_from_the_future(positional):
    layer = _layer(causal=True, positional=positional)
    x = torch.randn(1, 6, 12, dtype=DT)
    J = torch.autograd.functional.jacobian(lambda inp: layer(inp)[0], x)[:, :, 0]  # (T, D, T, D)
    blocks = J.abs().sum(dim=(1, 3))  # (T, T)
    future = torch.triu(torch.ones(6, 6, dtype=torch.bool), diagonal=1)
    assert torch.all(blocks[future] == 0) and torch.all(blocks[~future] > 0)


@pytest.mark.parametrize("positional", ["sinusoidal", "learned", None])
def test_kv_cache_steps_equal_the_full_causal_pass(positional):
    layer = _layer(causal=True, positional=positional)
    x = torch.randn(2, 7, 12, dtype=DT)
    cache = layer.empty_cache(2, dtype=DT)
    outs = []
    for t in range(7):
        out, cache = layer.step(x[:, t], cache)
        outs.append(out)
    assert cache.length == 7
    torch.testing.assert_close(torch.stack(outs, 1), layer(x), atol=1e-12, rtol=0)


def test_step_needs_a_causal_layer():
    layer = _layer(causal=False)
    with pytest.raises(ValueError, match="causal"):
        layer.step(torch.randn(1, 12, dtype=DT), layer.empty_cache(1, dtype=DT))


@pytest.mark.parametrize("causal", [False, True])
def test_padding_changes_no_real_frame(causal):
    layer = _layer(causal=causal)
    short = torch.randn(1, 4, 12, dtype=DT)
    padded = torch.cat([short, 100 * torch.randn(1, 3, 12, dtype=DT)], dim=1)
    batch = torch.cat([torch.randn(1, 7, 12, dtype=DT), padded])
    out = layer(batch, lengths=[7, 4])
    torch.testing.assert_close(out[1, :4], layer(short)[0], atol=1e-12, rtol=0)


def test_weights_respect_the_mask():
    layer = _layer(causal=True)
    _, w = layer(torch.randn(2, 5, 12, dtype=DT), lengths=[5, 3], return_weights=True)  # (B, h, T, T)
    assert torch.all(w.triu(1) == 0)
    assert torch.all(w[1, :, :, 3:] == 0)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 5, dtype=DT))


def test_learned_encoding_has_a_length_limit():
    layer = _layer(positional="learned", max_frames=4)
    with pytest.raises(ValueError, match="4"):
        layer(torch.randn(1, 5, 12, dtype=DT))


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="positional"):
        TemporalAttention(12, 3, positional="rotary")
    with pytest.raises(ValueError, match=r"\(B, T, 12\)"):
        _layer()(torch.randn(5, 12, dtype=DT))
    with pytest.raises(ValueError, match="class"):
        CrossFrameAttention(12, 3)(torch.randn(2, 5, 12))


def test_cross_frame_attention_shapes_and_message_path():
    block = CrossFrameAttention(12, 3).to(DT)
    z = torch.randn(2, 4, 1 + 6, 12, dtype=DT, requires_grad=True)
    out, m = block(z, return_messages=True)
    assert out.shape == z.shape and m.shape == (2, 4, 12)
    (g,) = torch.autograd.grad(out[0, 3, 1:].sum(), z)
    assert g[0, 0, 0].abs().sum() > 0  # frame 0's [class] token reaches frame 3 through the messages
    assert g[0, 0, 1:].abs().sum() == 0  # frame 0's patches do not (one block)
    assert g[1].abs().sum() == 0  # clips in a batch never mix


def test_cross_frame_attention_equals_its_equations():
    block = CrossFrameAttention(12, 3).to(DT)
    z = torch.randn(1, 3, 5, 12, dtype=DT)
    m = block.message(z[:, :, 0])
    m = m + block.cfa(block.ln_message(m))
    frames = []
    for t in range(3):
        zt = torch.cat([z[:, t], m[:, t : t + 1]], dim=1)  # (1, 6, D)
        zt = zt + block.ifa(block.ln_1(zt))
        zt = zt[:, :5]
        frames.append(zt + block.mlp(block.ln_2(zt)))
    torch.testing.assert_close(block(z), torch.stack(frames, dim=1))


@pytest.mark.parametrize("T,N,d", [(2, 3, 8), (5, 9, 16), (8, 4, 12)])
def test_cost_formulas_equal_the_flop_counter(T, N, d):
    block = CrossFrameAttention(d, 4 if d % 4 == 0 else 3)
    z = torch.randn(1, T, 1 + N, d)
    assert count_flops(block, z) == 2 * evaluate(cross_frame_macs(), T=T, N=N, d=d, mlp_ratio=4)
    res = ResidualAttentionBlock(d, 2)
    x = torch.randn(1, T * (1 + N), d)
    assert count_flops(res, x) == 2 * evaluate(block_macs(), L=T * (1 + N), d=d, mlp_ratio=4)


@pytest.mark.parametrize("t", [0, 1, 5, 17])
@pytest.mark.parametrize("d,h,B", [(12, 3, 1), (16, 4, 3)])
def test_one_cached_step_costs_four_projections_plus_t_plus_one_keys(t, d, h, B):
    # counted by hand, per clip: Q, K, V of the new frame and the output projection (d² each),
    # then 1×(t+1) scores of width d and the (t+1)-term weighted sum of width d
    layer = TemporalAttention(d, h, causal=True).to(DT)
    cache = layer.empty_cache(B, dtype=DT)
    with torch.no_grad():
        for _ in range(t):
            _, cache = layer.step(torch.randn(B, d, dtype=DT), cache)
    assert cache.length == t
    expected_macs = B * (4 * d * d + 2 * (t + 1) * d)
    assert count_flops(layer.step, torch.randn(B, d, dtype=DT), cache) == 2 * expected_macs


def test_cross_frame_block_is_cheaper_than_a_joint_block_by_less_than_its_scores_are():
    # ViT-B/16 sizes, d = 768, N = 196, T = 8: the formulas by hand, not through vidlearn.flops
    d, N, T = 768, 196, 8
    L = T * (1 + N)
    joint = 4 * L * d * d + 2 * L * L * d + 8 * L * d * d  # projections, QKᵀ and AV, MLP d → 4d → d
    xclip = (T * d * d  # message projection
             + 4 * T * d * d + 2 * T * T * d  # CFA over T messages
             + T * (4 * (N + 2) * d * d + 2 * (N + 2) ** 2 * d)  # IFA, per frame, over N + 2 tokens
             + 8 * T * (N + 1) * d * d)  # MLP over the frame tokens
    assert evaluate(block_macs(), L=L, d=d, mlp_ratio=4) == joint
    assert evaluate(cross_frame_macs(), T=T, N=N, d=d, mlp_ratio=4) == xclip
    assert round(joint / xclip, 2) == 1.28
    scores = (L * L * d) / (T * T * d + T * (N + 2) ** 2 * d)
    assert round(scores, 2) == 7.92


def test_step_rejects_inputs_that_do_not_fit_the_cache():
    layer = _layer(causal=True)  # d_model 12, 3 heads of width 4
    cache = layer.empty_cache(2, dtype=DT)
    _, cache = layer.step(torch.randn(2, 12, dtype=DT), cache)  # one frame cached
    with pytest.raises(ValueError, match=r"x_t of shape \(B, 12\), got \(2, 5, 12\); for a whole clip"):
        layer.step(torch.randn(2, 5, 12, dtype=DT), cache)
    with pytest.raises(ValueError, match=r"x_t has 3 clips but the cache holds 2"):
        layer.step(torch.randn(3, 12, dtype=DT), cache)
    with pytest.raises(ValueError, match=r"\(B, 12\), got \(2, 8\)"):
        layer.step(torch.randn(2, 8, dtype=DT), cache)
    with pytest.raises(ValueError, match="must be a KVCache"):
        layer.step(torch.randn(2, 12, dtype=DT), (cache.keys, cache.values))
    other = TemporalAttention(12, 4, causal=True).to(DT).empty_cache(2, dtype=DT)  # 4 heads of width 3
    with pytest.raises(ValueError, match=r"shape \(B, 3, t, 4\).*got \(2, 4, 0, 3\)"):
        layer.step(torch.randn(2, 12, dtype=DT), other)
    with pytest.raises(ValueError, match="same shape"):
        layer.step(torch.randn(2, 12, dtype=DT), KVCache(cache.keys, cache.values[:, :, :0]))
    assert cache.length == 1  # the failed calls left the cache as it was
