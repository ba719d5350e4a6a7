"""Tests for vidlearn.vivit and the ViViT cost formulas in vidlearn.flops.

The factorised models are checked against references written here from their definitions:
joint attention over all ``n_t·N`` tokens under a mask (the masked form, which computes every
score), against which the reshaped implementations must agree. Everything numerical is float64.
"""

from __future__ import annotations

import pytest
import torch

from vidlearn.attention import MultiHeadAttention, merge_heads, scaled_dot_product_attention, split_heads
from vidlearn.flops import count_flops, vivit_macs, vivit_params
from vidlearn.vivit import (
    VARIANTS,
    ViViT,
    ViViTBlock,
    PAPER_TABLE_2,
    ViViTConfig,
    factorised_dot_product_attention,
    factorised_head_mask,
    same_frame_mask,
    same_location_mask,
)

DT = torch.float64
ATOL = 1e-9  # float64; a fused kernel and explicit reshapes sum in different orders
# every valid (variant, pooling): Models 3 and 4 have no CLS token
VARIANT_POOLINGS = [(v, p) for v in VARIANTS for p in ("cls", "mean")
                    if not (p == "cls" and v in ("factorised_self_attention", "factorised_dot_product"))]


def _model(config: ViViTConfig, seed: int = 0) -> ViViT:
    torch.manual_seed(seed)
    return ViViT(config).to(DT).eval()


def _video(config: ViViTConfig, B: int = 2, seed: int = 1, dtype=DT) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    c = config
    return torch.randn(B, c.frames, c.channels, c.image_size, c.image_size, generator=g, dtype=dtype)


def _tokens(B: int, n_t: int, N: int, D: int, seed: int = 2) -> torch.Tensor:
    return torch.randn(B, n_t, N, D, generator=torch.Generator().manual_seed(seed), dtype=DT)


# --------------------------------------------------------------------------- configs


def test_grid_properties():
    c = ViViTConfig.base_16x2()
    assert (c.n_t, c.n_h, c.n_w, c.N) == (16, 14, 14, 196)
    t = ViViTConfig.tiny()
    assert (t.n_t, t.N) == (4, 16)


@pytest.mark.parametrize("variant", VARIANTS)
def test_presets_default_pooling_and_temporal_depth(variant):
    c = ViViTConfig.base_16x2(variant)
    assert c.pooling == ("mean" if variant in ("factorised_self_attention", "factorised_dot_product") else "cls")
    assert c.temporal_depth == (4 if variant == "factorised_encoder" else 0)
    assert (c.depth, c.heads, c.width, c.mlp_width, c.num_classes) == (12, 12, 768, 3072, 400)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(variant="divided"), "variant"),
        (dict(heads=5), "divide"),
        (dict(variant="factorised_dot_product", heads=3, width=6), "odd"),
        (dict(variant="factorised_self_attention", pooling="cls"), "pooling='mean'"),
        (dict(variant="factorised_dot_product", pooling="cls"), "pooling='mean'"),
        (dict(variant="factorised_encoder", temporal_depth=0), "pooling='mean'"),
        (dict(variant="joint", temporal_depth=2), "temporal_depth"),
        (dict(pooling="max"), "pooling"),
        (dict(factorised_order="diagonal"), "factorised_order"),
        (dict(tubelet=(2, 8)), "tubelet"),
        (dict(frames=1), "tubelet"),
        (dict(depth=0), "depth"),
        (dict(temporal_depth=-1, variant="factorised_encoder"), "temporal_depth"),
        (dict(width=True), "width"),
    ],
)
def test_bad_configs_raise(kwargs, words):
    kwargs = dict(kwargs)  # parametrize shares the dict between runs
    variant = kwargs.pop("variant", "joint")
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        ViViTConfig.tiny(variant, **kwargs)


def test_configs_are_frozen():
    with pytest.raises(Exception):
        ViViTConfig.tiny().depth = 3


def test_wrong_video_size_raises():
    model = _model(ViViTConfig.tiny())
    with pytest.raises(ValueError, match="positional"):
        model(torch.zeros(1, 12, 3, 32, 32, dtype=DT))


def test_frame_logits_only_for_model_2():
    with pytest.raises(ValueError, match="factorised_encoder"):
        _model(ViViTConfig.tiny("joint")).frame_logits(_video(ViViTConfig.tiny()))


# --------------------------------------------------------------------------- shapes and builds


@pytest.mark.parametrize("variant", VARIANTS)
def test_output_shape(variant):
    c = ViViTConfig.tiny(variant)
    out = _model(c)(_video(c, B=3))
    assert out.shape == (3, c.num_classes) and out.dtype == DT
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("order", ["spatial_first", "temporal_first"])
def test_model_3_orders_differ_but_both_run(order):
    c = ViViTConfig.tiny("factorised_self_attention", factorised_order=order)
    assert _model(c)(_video(c)).shape == (2, 2)


@pytest.mark.parametrize("variant", VARIANTS)
def test_base_builds_on_meta_and_params_match_formula(variant):
    c = ViViTConfig.base_16x2(variant)
    with torch.device("meta"):
        model = ViViT(c)
    assert all(p.is_meta for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) == vivit_params(c)


@pytest.mark.parametrize("variant, pooling", VARIANT_POOLINGS)
def test_tiny_params_match_formula(variant, pooling):
    for temporal_depth in ((0, 2) if variant == "factorised_encoder" and pooling == "mean" else (None,)):
        extra = {} if temporal_depth is None else {"temporal_depth": temporal_depth}
        c = ViViTConfig.tiny(variant, pooling=pooling, **extra)
        assert sum(p.numel() for p in ViViT(c).parameters()) == vivit_params(c)


@pytest.mark.parametrize("variant, pooling", VARIANT_POOLINGS)
def test_flop_counter_is_twice_the_macs(variant, pooling):
    c = ViViTConfig.tiny(variant, pooling=pooling)
    torch.manual_seed(0)
    model = ViViT(c).eval()
    assert count_flops(model, _video(c, B=1, dtype=torch.float32)) == 2 * vivit_macs(c)


def test_flop_counter_model_2_without_temporal_encoder():
    c = ViViTConfig.tiny("factorised_encoder", temporal_depth=0, pooling="mean")
    torch.manual_seed(0)
    assert count_flops(ViViT(c).eval(), _video(c, B=1, dtype=torch.float32)) == 2 * vivit_macs(c)


@pytest.mark.parametrize("variant", VARIANTS)
def test_flop_counter_at_paper_size_on_meta_equals_formula(variant):
    # meta tensors carry shapes only, so the counter sees the full ViViT-B for free
    c = ViViTConfig.base_16x2(variant)
    with torch.device("meta"):
        model = ViViT(c)
        flops = count_flops(model, torch.empty(1, c.frames, c.channels, c.image_size, c.image_size))
    assert flops == 2 * vivit_macs(c)


def test_model_4_formula_counts_only_the_neighbourhood_pairs():
    # independently: the masked form computes h·L² scores per layer at width d/h, twice (QKᵀ, AV);
    # the reshaped form computes only the pairs the mask allows, so the difference is the blocked pairs
    c = ViViTConfig.tiny("factorised_dot_product", depth=3)
    mask = factorised_head_mask(c.n_t, c.N, c.heads)  # (h, L, L)
    L, d_head = c.n_t * c.N, c.width // c.heads
    blocked = c.heads * L * L - int(mask.sum())
    masked_macs = vivit_macs(ViViTConfig.tiny("joint", depth=3, pooling="mean"))  # same computation, no mask
    assert masked_macs - vivit_macs(c) == c.depth * 2 * d_head * blocked


def test_model_4_at_paper_size_by_the_counter_is_within_1_5_percent_of_table_2():
    c = ViViTConfig.base_16x2("factorised_dot_product")
    with torch.device("meta"):
        flops = count_flops(ViViT(c), torch.empty(1, c.frames, c.channels, c.image_size, c.image_size))
    assert abs(flops / 2 / 1e9 / PAPER_TABLE_2["factorised_dot_product"][0] - 1) <= 0.015


@pytest.mark.parametrize("variant", list(PAPER_TABLE_2))
def test_base_presets_reproduce_paper_table_2(variant):
    gflops, mparams, _ = PAPER_TABLE_2[variant]
    if variant == "ave_pool":
        c = ViViTConfig.base_16x2("factorised_encoder", temporal_depth=0, pooling="mean")
    else:
        c = ViViTConfig.base_16x2(variant)
    # every model computes exactly the pairs it attends to (Model 4 by reshaping, not by a mask)
    assert abs(vivit_params(c) / 1e6 - mparams) <= 0.06
    assert -0.01 <= vivit_macs(c) / 1e9 / gflops - 1 < 0  # within 1 %, and always lower


def test_base_costs_are_ordered_as_expected():
    macs = {v: vivit_macs(ViViTConfig.base_16x2(v)) for v in VARIANTS}
    # Model 4 is the cheapest: half of Model 3's attention, one set of projections
    assert macs["factorised_dot_product"] < macs["factorised_encoder"] < macs["factorised_self_attention"] < macs["joint"]


# --------------------------------------------------------------------------- masks


def test_masks_by_definition():
    n_t, N = 3, 4
    f, s = same_frame_mask(n_t, N), same_location_mask(n_t, N)
    assert f.shape == s.shape == (12, 12) and f.dtype == s.dtype == torch.bool
    for i in range(12):
        for j in range(12):
            assert f[i, j] == (i // N == j // N)
            assert s[i, j] == (i % N == j % N)
    assert (f & s).equal(torch.eye(12, dtype=torch.bool))  # the only common neighbour is oneself
    h = factorised_head_mask(n_t, N, 4)
    assert h.shape == (4, 12, 12)
    assert h[0].equal(f) and h[1].equal(f) and h[2].equal(s) and h[3].equal(s)
    with pytest.raises(ValueError, match="odd"):
        factorised_head_mask(n_t, N, 3)
    with pytest.raises(ValueError, match="n_t"):
        same_frame_mask(0, N)


# --------------------------------------------------------------------------- Model 3


def _block(factorised: bool, heads: int = 4, D: int = 16, seed: int = 3) -> ViViTBlock:
    torch.manual_seed(seed)
    return ViViTBlock(D, heads, 24, factorised=factorised).to(DT)


def test_model_3_spatial_step_is_joint_attention_under_same_frame_mask():
    blk = _block(True)
    B, n_t, N, D = 2, 3, 5, 16
    x = _tokens(B, n_t, N, D)
    flat = x.reshape(B, n_t * N, D)  # time-major
    ref = flat + blk.attn(blk.ln_1(flat), mask=same_frame_mask(n_t, N))
    torch.testing.assert_close(blk.spatial(x).reshape(B, n_t * N, D), ref, atol=ATOL, rtol=0)


def test_model_3_temporal_step_is_joint_attention_under_same_location_mask():
    blk = _block(True)
    B, n_t, N, D = 2, 3, 5, 16
    x = _tokens(B, n_t, N, D)
    flat = x.reshape(B, n_t * N, D)
    ref = flat + blk.attn_t(blk.ln_t(flat), mask=same_location_mask(n_t, N))
    torch.testing.assert_close(blk.temporal(x).reshape(B, n_t * N, D), ref, atol=ATOL, rtol=0)


@pytest.mark.parametrize("order", ["spatial_first", "temporal_first"])
def test_model_3_block_is_two_masked_joint_attentions_then_mlp(order):
    torch.manual_seed(3)
    blk = ViViTBlock(16, 4, 24, factorised=True, order=order).to(DT)
    B, n_t, N, D = 2, 3, 5, 16
    x = _tokens(B, n_t, N, D)
    z = x.reshape(B, n_t * N, D)
    spatial = lambda z: z + blk.attn(blk.ln_1(z), mask=same_frame_mask(n_t, N))  # noqa: E731
    temporal = lambda z: z + blk.attn_t(blk.ln_t(z), mask=same_location_mask(n_t, N))  # noqa: E731
    for step in (spatial, temporal) if order == "spatial_first" else (temporal, spatial):
        z = step(z)
    z = z + blk.mlp(blk.ln_2(z))
    torch.testing.assert_close(blk(x).reshape(B, n_t * N, D), z, atol=ATOL, rtol=0)


# --------------------------------------------------------------------------- Model 4


def test_model_4_blocks_reshape_and_take_no_mask():
    c = ViViTConfig.tiny("factorised_dot_product")
    model = _model(c)
    assert all(blk.dot_product and not blk.factorised for blk in model.blocks)
    with pytest.raises(ValueError, match="no mask"):
        model.blocks[0](_tokens(1, c.n_t, c.N, c.width), mask=torch.ones(c.n_t * c.N, c.n_t * c.N, dtype=torch.bool))
    with pytest.raises(ValueError, match="odd"):
        ViViTBlock(16, 3, 24, dot_product=True)
    with pytest.raises(ValueError, match="not both"):
        ViViTBlock(16, 4, 24, dot_product=True, factorised=True)


def _explicit_head_groups(a, x, n_t, h):
    """Spatial heads per frame, temporal heads per location, written with plain loops over groups."""
    B, L, D = x.shape
    N = L // n_t
    q, k, v = (split_heads(w(x), h) for w in (a.w_q, a.w_k, a.w_v))  # (B, h, L, e)
    out = torch.zeros_like(q)
    for i in range(n_t):  # the N tokens of frame i
        idx = torch.arange(i * N, (i + 1) * N)
        g = slice(0, h // 2)
        out[:, g, idx] = scaled_dot_product_attention(q[:, g, idx], k[:, g, idx], v[:, g, idx])
    for s in range(N):  # the n_t tokens at location s
        idx = torch.arange(s, L, N)
        g = slice(h // 2, h)
        out[:, g, idx] = scaled_dot_product_attention(q[:, g, idx], k[:, g, idx], v[:, g, idx])
    return a.w_o(merge_heads(out))  # (B, L, D)


def test_model_4_reshaped_attention_equals_masked_joint_attention_and_explicit_groups():
    blk = _block(False, heads=4)
    a = blk.attn
    B, n_t, N, D, h = 2, 3, 5, 16, 4
    x = _tokens(B, n_t, N, D)  # (B, n_t, N, D)
    flat = x.reshape(B, n_t * N, D)  # time-major
    got = factorised_dot_product_attention(a, x).reshape(B, n_t * N, D)
    masked = a(flat, mask=factorised_head_mask(n_t, N, h)[None])  # (B, L, D)
    torch.testing.assert_close(got, masked, atol=ATOL, rtol=0)
    torch.testing.assert_close(got, _explicit_head_groups(a, flat, n_t, h), atol=ATOL, rtol=0)


def test_model_4_weights_are_the_masked_weights():
    blk = _block(False, heads=4)
    a = blk.attn
    B, n_t, N, D, h = 2, 3, 5, 16, 4
    x = _tokens(B, n_t, N, D)
    out, w = factorised_dot_product_attention(a, x, return_weights=True)
    mask = factorised_head_mask(n_t, N, h)[None]
    ref_out, ref_w = a(x.reshape(B, n_t * N, D), mask=mask, return_weights=True)
    torch.testing.assert_close(out.reshape(B, -1, D), ref_out, atol=ATOL, rtol=0)
    torch.testing.assert_close(w, ref_w, atol=ATOL, rtol=0)
    assert (w[~mask.expand_as(w)] == 0).all()  # exactly zero outside each head's neighbourhood
    torch.testing.assert_close(w.sum(-1), torch.ones(B, h, n_t * N, dtype=DT), atol=ATOL, rtol=0)


def test_model_4_attention_rejects_bad_input():
    a = _block(False, heads=4).attn
    with pytest.raises(ValueError, match="B, n_t, N"):
        factorised_dot_product_attention(a, torch.zeros(2, 15, 16, dtype=DT))
    with pytest.raises(ValueError, match="odd"):
        factorised_dot_product_attention(MultiHeadAttention(15, 3).to(DT), torch.zeros(1, 2, 3, 15, dtype=DT))
    with pytest.raises(ValueError, match="MultiHeadAttention"):
        factorised_dot_product_attention(torch.nn.Linear(16, 16), torch.zeros(1, 2, 3, 16))


def test_model_4_forward_equals_the_masked_joint_path():
    """Reshaped (the model) and masked (the definition) Model 4, on the same weights, agree in float64."""
    c4 = ViViTConfig.tiny("factorised_dot_product")
    model = _model(c4)
    video = _video(c4)
    x = model.tokens(video).flatten(1, 2) + model.pos_embed  # (B, L, D)
    mask = factorised_head_mask(c4.n_t, c4.N, c4.heads)[None]
    for blk in model.blocks:
        x = x + blk.attn(blk.ln_1(x), mask=mask)
        x = x + blk.mlp(blk.ln_2(x))
    ref = model.head(model.norm(x).mean(dim=1))
    torch.testing.assert_close(model(video), ref, atol=ATOL, rtol=0)


# --------------------------------------------------------------------------- last_attention


@pytest.mark.parametrize("variant", VARIANTS)
def test_last_attention_shapes_rows_and_neighbourhoods(variant):
    c = ViViTConfig.tiny(variant)
    model = _model(c)
    video = _video(c)
    w = model.last_attention(video)
    L = c.n_t * c.N
    expected = {
        "joint": {"joint": (2, c.heads, 1 + L, 1 + L)},
        "factorised_encoder": {"spatial": (2, c.n_t, c.heads, 1 + c.N, 1 + c.N),
                               "temporal": (2, c.heads, 1 + c.n_t, 1 + c.n_t)},
        "factorised_self_attention": {"spatial": (2, c.heads, L, L), "temporal": (2, c.heads, L, L)},
        "factorised_dot_product": {"dot_product": (2, c.heads, L, L)},
    }[variant]
    assert {k: tuple(v.shape) for k, v in w.items()} == expected
    for v in w.values():
        torch.testing.assert_close(v.sum(-1), torch.ones(v.shape[:-1], dtype=DT), atol=ATOL, rtol=0)
    frame, place = same_frame_mask(c.n_t, c.N), same_location_mask(c.n_t, c.N)
    if variant == "factorised_self_attention":
        assert (w["spatial"][..., ~frame] == 0).all() and (w["temporal"][..., ~place] == 0).all()
    if variant == "factorised_dot_product":
        allowed = factorised_head_mask(c.n_t, c.N, c.heads)[None].expand_as(w["dot_product"])
        assert (w["dot_product"][~allowed] == 0).all()
    # reading the weights does not change the output
    torch.testing.assert_close(model(video), _model(c)(video), atol=0, rtol=0)


def test_last_attention_model_3_matches_masked_weights():
    c = ViViTConfig.tiny("factorised_self_attention", depth=1)
    model = _model(c)
    video = _video(c)
    x = model.tokens(video) + model.pos_embed.reshape(c.n_t, c.N, c.width)  # (B, n_t, N, D)
    blk = model.blocks[0]
    flat = x.flatten(1, 2)
    _, ref_s = blk.attn(blk.ln_1(flat), mask=same_frame_mask(c.n_t, c.N), return_weights=True)
    torch.testing.assert_close(model.last_attention(video)["spatial"], ref_s, atol=ATOL, rtol=0)


# --------------------------------------------------------------------------- Model 2


def test_model_2_without_temporal_encoder_is_per_frame_classification_averaged():
    c = ViViTConfig.tiny("factorised_encoder", temporal_depth=0, pooling="mean")
    model = _model(c)
    video = _video(c)
    frame_logits = model.frame_logits(video)
    assert frame_logits.shape == (2, c.n_t, c.num_classes)
    torch.testing.assert_close(model(video), frame_logits.mean(dim=1), atol=ATOL, rtol=0)


def test_model_2_frame_logits_see_only_their_own_temporal_index():
    c = ViViTConfig.tiny("factorised_encoder", temporal_depth=0, pooling="mean")
    model = _model(c)
    video = _video(c)
    changed = video.clone()
    changed[:, : c.tubelet[0]] += 1.0  # the frames of temporal index 0 only
    before, after = model.frame_logits(video), model.frame_logits(changed)
    torch.testing.assert_close(after[:, 1:], before[:, 1:], atol=ATOL, rtol=0)
    assert not torch.allclose(after[:, 0], before[:, 0])


def test_model_2_has_one_spatial_cls_per_temporal_index():
    c = ViViTConfig.tiny("factorised_encoder")
    model = _model(c)
    assert model.cls_token.shape == (c.width,)  # shared by the temporal indices, not one per patch
    assert model.pos_embed.shape == (1 + c.N, c.width)
    assert model.temporal_pos_embed.shape == (1 + c.n_t, c.width)
    assert len(model.blocks) == c.depth and len(model.temporal_blocks) == c.temporal_depth
    assert model.spatial_features(_video(c)).shape == (2, c.n_t, c.width)
