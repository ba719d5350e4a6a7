"""Tests for vidlearn.crossmodal and the cross-modal cost formulas in vidlearn.flops.

References are written here from the definitions (per-head softmax attention, pre-LN
residual blocks); everything numerical is float64. The central claims: joint self-attention
over ``[text; video]`` under :func:`cross_modal_block_mask` *is* two cross-attentions, and the
joint score matrix contains the cross-attention scores as its off-diagonal blocks.
"""

from __future__ import annotations

import pytest
import sympy as sp
import torch

from vidlearn.attention import MultiHeadAttention
from vidlearn.crossmodal import (
    CoAttentionBlock,
    CrossAttention,
    SingleStreamEncoder,
    TwoStreamEncoder,
    attention_logits,
    cross_modal_block_mask,
    modality_block_mask,
    split_cross_attention,
)
from vidlearn.flops import (
    attention_macs,
    block_macs,
    co_attention_block_macs,
    count_flops,
    evaluate,
    mha_macs,
    single_stream_block_macs,
)

DT = torch.float64
ATOL = 1e-9  # float64; fused kernels and explicit references sum in different orders
D, H, M = 16, 4, 24


def _tokens(B: int, L: int, seed: int, d: int = D) -> torch.Tensor:
    return torch.randn(B, L, d, generator=torch.Generator().manual_seed(seed), dtype=DT)  # (B, L, d)


def _noise(seed: int) -> torch.Tensor:
    # random, not a constant shift: LayerNorm would erase a constant added to every channel
    return 3 * _tokens(1, 1, seed)[0, 0]  # (D,)


def _text_video(B: int = 2, n_text: int = 5, n_video: int = 7):
    return _tokens(B, n_text, seed=1), _tokens(B, n_video, seed=2)  # (B, n_text, D), (B, n_video, D)


def _build(cls, *args, seed: int = 0, **kwargs):
    torch.manual_seed(seed)
    return cls(*args, **kwargs).to(DT).eval()


def _lengths_mask(lengths, L: int) -> torch.Tensor:
    return torch.arange(L)[None, :] < torch.tensor(lengths)[:, None]  # (B, L), True = real token


def _mha_ref(mha: MultiHeadAttention, xq, xkv, keep=None):
    """``concat_i softmax(xq W_Q^i (xkv W_K^i)ᵀ/√e, blocked -> -inf) xkv W_V^i`` then ``W_O``, head by head."""
    e = mha.d_head
    q, k, v = mha.w_q(xq), mha.w_k(xkv), mha.w_v(xkv)  # (B, L, D)
    heads = []
    for i in range(mha.n_heads):
        cols = slice(i * e, (i + 1) * e)
        scores = q[..., cols] @ k[..., cols].transpose(-2, -1) / e**0.5  # (B, L_q, L_k)
        if keep is not None:
            scores = scores.masked_fill(~keep, float("-inf"))
        heads.append(torch.softmax(scores, dim=-1) @ v[..., cols])  # (B, L_q, e)
    return mha.w_o(torch.cat(heads, dim=-1))  # (B, L_q, D)


def _block_ref(blk, x, keep=None):
    """Pre-LN block: ``x + MHA(LN(x))``, then ``x + MLP(LN(x))``."""
    x = x + _mha_ref(blk.attn, blk.ln_1(x), blk.ln_1(x), keep)
    return x + blk.mlp(blk.ln_2(x))


# --------------------------------------------------------------------------- masks


def test_cross_modal_block_mask_by_definition():
    n_text, n_video = 3, 4
    mask = cross_modal_block_mask(n_text, n_video)
    assert mask.shape == (7, 7) and mask.dtype == torch.bool
    for i in range(7):
        for j in range(7):
            assert mask[i, j] == ((i < n_text) != (j < n_text))
    assert int(mask.sum()) == 2 * n_text * n_video


def test_modality_block_mask_generalises():
    full = modality_block_mask(2, 3, [[True, True], [True, True]])
    assert full.all() and full.shape == (5, 5)
    separate = modality_block_mask(2, 3, [[True, False], [False, True]])
    assert separate.equal(~cross_modal_block_mask(2, 3))
    # text may read everything, video only itself (a causal-like "video first" fusion)
    text_reads_all = modality_block_mask(2, 3, [[True, True], [False, True]])
    assert text_reads_all[:2].all() and not text_reads_all[2:, :2].any() and text_reads_all[2:, 2:].all()


@pytest.mark.parametrize(
    "args, words",
    [((0, 3), "n_text"), ((2, -1), "n_video"), ((True, 3), "n_text"), ((2, 3, [[1, 0], [0, 1]]), "bools"),
     ((2, 3, [True, False]), "2×2")],
)
def test_block_mask_bad_inputs_raise(args, words):
    with pytest.raises(ValueError, match=words):
        if len(args) == 2:
            cross_modal_block_mask(*args)
        else:
            modality_block_mask(*args)


# --------------------------------------------------------------------------- the proof
# one stream under cross_modal_block_mask is cross-attention


@pytest.mark.parametrize("n_text, n_video", [(5, 7), (6, 2), (1, 9)])
@pytest.mark.parametrize("padded", [False, True])
def test_joint_attention_under_block_mask_equals_two_cross_attentions(n_text, n_video, padded):
    mha = _build(MultiHeadAttention, D, H)
    text, video = _text_video(2, n_text, n_video)
    text_mask = _lengths_mask([n_text, max(1, n_text - 2)], n_text) if padded else None
    video_mask = _lengths_mask([max(1, n_video - 1), n_video], n_video) if padded else None
    joint = torch.cat([text, video], dim=1)  # (B, L, D)
    mask = cross_modal_block_mask(n_text, n_video)  # (L, L)
    if padded:
        mask = mask & torch.cat([text_mask, video_mask], dim=1)[:, None, :]  # (B, L, L)
    got = mha(joint, mask=mask)  # (B, L, D)
    ref = split_cross_attention(mha, text, video, text_mask, video_mask)
    torch.testing.assert_close(got, ref, atol=ATOL, rtol=0)


def test_split_cross_attention_is_the_definition():
    mha = _build(MultiHeadAttention, D, H)
    text, video = _text_video(2, 5, 7)
    got = split_cross_attention(mha, text, video)
    torch.testing.assert_close(got[:, :5], _mha_ref(mha, text, video), atol=ATOL, rtol=0)
    torch.testing.assert_close(got[:, 5:], _mha_ref(mha, video, text), atol=ATOL, rtol=0)


def test_joint_attention_without_the_mask_is_not_cross_attention():
    # the identity above needs the mask: unmasked, every token also reads its own modality
    mha = _build(MultiHeadAttention, D, H)
    text, video = _text_video(2, 5, 7)
    gap = (mha(torch.cat([text, video], dim=1)) - split_cross_attention(mha, text, video)).abs().max()
    assert gap > 1e-3


def test_joint_logits_contain_the_cross_attention_logits():
    mha = _build(MultiHeadAttention, D, H)
    n_text = 5
    text, video = _text_video(2, n_text, 7)
    joint = attention_logits(mha, torch.cat([text, video], dim=1))  # (B, h, L, L)
    assert joint.shape == (2, H, 12, 12)
    torch.testing.assert_close(joint[..., :n_text, n_text:], attention_logits(mha, text, video), atol=ATOL, rtol=0)
    torch.testing.assert_close(joint[..., n_text:, :n_text], attention_logits(mha, video, text), atol=ATOL, rtol=0)
    torch.testing.assert_close(joint[..., :n_text, :n_text], attention_logits(mha, text), atol=ATOL, rtol=0)


def test_attention_logits_are_the_scores_mha_softmaxes():
    mha = _build(MultiHeadAttention, D, H)
    text, video = _text_video(2, 5, 7)
    _, w = mha(text, video, return_weights=True)  # (B, h, n_text, n_video)
    torch.testing.assert_close(torch.softmax(attention_logits(mha, text, video), dim=-1), w, atol=ATOL, rtol=0)


def test_joint_weights_on_video_are_cross_weights_rescaled():
    # a text row's softmax runs over text and video keys; restricted to video and renormalised
    # it is the cross-attention's softmax, since softmax ratios depend only on logit differences
    mha = _build(MultiHeadAttention, D, H)
    n_text = 5
    text, video = _text_video(2, n_text, 7)
    _, joint = mha(torch.cat([text, video], dim=1), return_weights=True)  # (B, h, L, L)
    _, cross = mha(text, video, return_weights=True)  # (B, h, n_text, n_video)
    block = joint[..., :n_text, n_text:]
    torch.testing.assert_close(block / block.sum(-1, keepdim=True), cross, atol=ATOL, rtol=0)
    assert (block.sum(-1) < 1 - 1e-6).all()  # the rest of each row went to text keys


# --------------------------------------------------------------------------- CrossAttention


def test_cross_attention_is_pre_ln_residual():
    blk = _build(CrossAttention, D, H)
    text, video = _text_video(2, 5, 7)
    valid = _lengths_mask([7, 4], 7)  # (B, n_video)
    got, w = blk(text, video, mask=valid[:, None], return_weights=True)
    ref = text + _mha_ref(blk.attn, blk.ln_q(text), blk.ln_kv(video), valid[:, None])
    torch.testing.assert_close(got, ref, atol=ATOL, rtol=0)
    assert w.shape == (2, H, 5, 7)
    assert (w[1, ..., 4:] == 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(2, H, 5, dtype=DT), atol=ATOL, rtol=0)
    torch.testing.assert_close(blk(text, video, mask=valid[:, None]), got, atol=ATOL, rtol=0)


def test_cross_attention_two_layernorms_are_separate():
    # the context is normalised with its own parameters: changing LN_kv changes the output
    blk = _build(CrossAttention, D, H)
    text, video = _text_video(2, 5, 7)
    before = blk(text, video)
    with torch.no_grad():
        blk.ln_kv.weight.mul_(2.0)
    assert (blk(text, video) - before).abs().max() > 1e-6


# --------------------------------------------------------------------------- CoAttentionBlock


def test_co_attention_block_is_the_definition_with_simultaneous_exchange():
    blk = _build(CoAttentionBlock, D, H, M)
    text, video = _text_video(2, 5, 7)
    t_mask, v_mask = _lengths_mask([5, 3], 5), _lengths_mask([6, 7], 7)
    got_t, got_v = blk(text, video, t_mask, v_mask)
    tv, vt = blk.text_from_video, blk.video_from_text
    t1 = text + _mha_ref(tv.attn, tv.ln_q(text), tv.ln_kv(video), v_mask[:, None])
    v1 = video + _mha_ref(vt.attn, vt.ln_q(video), vt.ln_kv(text), t_mask[:, None])
    torch.testing.assert_close(got_t, _block_ref(blk.text_block, t1, t_mask[:, None]), atol=ATOL, rtol=0)
    torch.testing.assert_close(got_v, _block_ref(blk.video_block, v1, v_mask[:, None]), atol=ATOL, rtol=0)
    # had video read the *updated* text (sequential, not simultaneous), the video stream would differ
    v_seq = video + _mha_ref(vt.attn, vt.ln_q(video), vt.ln_kv(t1), t_mask[:, None])
    assert (_block_ref(blk.video_block, v_seq, v_mask[:, None]) - got_v).abs().max() > 1e-6


def test_co_attention_block_shapes_and_weights():
    blk = _build(CoAttentionBlock, D, H, M)
    text, video = _text_video(3, 4, 9)
    t, v, (w_tv, w_vt) = blk(text, video, return_weights=True)
    assert t.shape == (3, 4, D) and v.shape == (3, 9, D)
    assert w_tv.shape == (3, H, 4, 9) and w_vt.shape == (3, H, 9, 4)
    t2, v2 = blk(text, video)
    assert t2.equal(t) and v2.equal(v)


def test_co_attention_text_reads_video_only_through_the_one_allowed_token():
    blk = _build(CoAttentionBlock, D, H, M)
    text, video = _text_video(2, 5, 7)
    v_mask = torch.zeros(2, 7, dtype=torch.bool)
    v_mask[:, 3] = True  # one real video token per clip
    t0, _ = blk(text, video, video_mask=v_mask)
    noise = _tokens(2, 7, seed=9)
    noise[:, 3] = 0
    torch.testing.assert_close(blk(text, video + noise, video_mask=v_mask)[0], t0, atol=ATOL, rtol=0)
    # with one key, each head's weight on it is 1: the cross output is W_O W_V LN(video_3) for every text token
    x = blk.text_from_video
    v3 = x.ln_kv(video[:, 3:4])  # (B, 1, D)
    cross = x.attn.w_o(x.attn.w_v(v3))  # (B, 1, D)
    torch.testing.assert_close(t0, _block_ref(blk.text_block, text + cross), atol=ATOL, rtol=0)


def test_co_attention_fully_padded_video_gives_text_only_the_output_bias():
    # a text query with no video key to read gets a zero attention output (not NaN), so the
    # cross step adds W_O's bias alone
    blk = _build(CoAttentionBlock, D, H, M)
    text, video = _text_video(2, 5, 7)
    v_mask = _lengths_mask([0, 7], 7)
    t, v = blk(text, video, video_mask=v_mask)
    assert torch.isfinite(t).all() and torch.isfinite(v).all()
    ref = _block_ref(blk.text_block, text[:1] + blk.text_from_video.attn.w_o.bias)
    torch.testing.assert_close(t[:1], ref, atol=ATOL, rtol=0)


# --------------------------------------------------------------------------- TwoStreamEncoder


def test_two_stream_encoder_is_its_blocks_in_turn():
    enc = _build(TwoStreamEncoder, D, H, M, 3)
    text, video = _text_video(2, 5, 7)
    t_mask, v_mask = _lengths_mask([5, 2], 5), _lengths_mask([7, 6], 7)
    t, v = text, video
    for blk in enc.blocks:
        t, v = blk(t, v, t_mask, v_mask)
    got_t, got_v = enc(text, video, t_mask, v_mask)
    torch.testing.assert_close(got_t, t, atol=ATOL, rtol=0)
    torch.testing.assert_close(got_v, v, atol=ATOL, rtol=0)
    w_tv, w_vt = enc.attention_weights(text, video, t_mask, v_mask)
    assert w_tv.shape == (2, H, 5, 7) and w_vt.shape == (2, H, 7, 5)
    assert (w_tv[1, ..., 6:] == 0).all() and (w_vt[1, ..., 2:] == 0).all()  # padded keys get no weight


def test_two_stream_encoder_weights_are_the_last_blocks():
    enc = _build(TwoStreamEncoder, D, H, M, 3)
    text, video = _text_video(2, 5, 7)
    t_mask, v_mask = _lengths_mask([5, 2], 5), _lengths_mask([7, 6], 7)
    t, v = text, video
    for blk in enc.blocks[:-1]:
        t, v = blk(t, v, t_mask, v_mask)
    ref_t, ref_v, (ref_tv, ref_vt) = enc.blocks[-1](t, v, t_mask, v_mask, return_weights=True)
    got_t, got_v, (w_tv, w_vt) = enc(text, video, t_mask, v_mask, return_weights=True)
    for got, ref in [(got_t, ref_t), (got_v, ref_v), (w_tv, ref_tv), (w_vt, ref_vt)]:
        torch.testing.assert_close(got, ref, atol=ATOL, rtol=0)
    # asking for the weights does not change the outputs
    plain_t, plain_v = enc(text, video, t_mask, v_mask)
    torch.testing.assert_close(plain_t, got_t, atol=0, rtol=0)
    torch.testing.assert_close(plain_v, got_v, atol=0, rtol=0)


# --------------------------------------------------------------------------- SingleStreamEncoder


def test_single_stream_is_blocks_over_the_concatenation_with_segments():
    enc = _build(SingleStreamEncoder, D, H, M, 2)
    text, video = _text_video(2, 5, 7)
    t_mask = _lengths_mask([5, 3], 5)
    s = enc.segment_embed  # (n_segments, D)
    x = torch.cat([text + s[0], video + s[1]], dim=1)  # (B, 12, D)
    keep = torch.cat([t_mask, torch.ones(2, 7, dtype=torch.bool)], dim=1)[:, None]  # (B, 1, 12)
    for blk in enc.blocks:
        x = _block_ref(blk, x, keep)
    got_t, got_v = enc(text, video, text_mask=t_mask)
    assert got_t.shape == (2, 5, D) and got_v.shape == (2, 7, D)
    torch.testing.assert_close(torch.cat([got_t, got_v], dim=1), x, atol=ATOL, rtol=0)


def test_single_stream_under_block_mask_is_cross_attention_then_mlp():
    # the encoder-level form of the proof: one block under cross_modal_block_mask is a residual
    # cross-attention in both directions with shared weights, then the MLP
    enc = _build(SingleStreamEncoder, D, H, M, 1)
    text, video = _text_video(2, 5, 7)
    blk, s = enc.blocks[0], enc.segment_embed
    t, v = text + s[0], video + s[1]
    x = torch.cat([t, v], dim=1) + split_cross_attention(blk.attn, blk.ln_1(t), blk.ln_1(v))
    x = x + blk.mlp(blk.ln_2(x))
    got = torch.cat(enc(text, video, mask=cross_modal_block_mask(5, 7)), dim=1)
    torch.testing.assert_close(got, x, atol=ATOL, rtol=0)


def test_segment_embedding_changes_the_output():
    with_seg = _build(SingleStreamEncoder, D, H, M, 2)
    without = _build(SingleStreamEncoder, D, H, M, 2, n_segments=0)
    assert without.segment_embed is None
    without.load_state_dict({k: v for k, v in with_seg.state_dict().items() if k != "segment_embed"})
    text, video = _text_video(2, 5, 7)
    gap = (torch.cat(with_seg(text, video), 1) - torch.cat(without(text, video), 1)).abs().max()
    assert gap > 1e-4
    with torch.no_grad():
        with_seg.segment_embed.zero_()  # the only difference between the two models
    torch.testing.assert_close(torch.cat(with_seg(text, video), 1), torch.cat(without(text, video), 1),
                               atol=ATOL, rtol=0)


def test_without_segments_the_modalities_are_interchangeable():
    # with no segment (or positional) embedding, self-attention is permutation-equivariant:
    # swapping the roles of text and video swaps the outputs. The segment embedding breaks it.
    text, video = _text_video(2, 6, 6)
    plain = _build(SingleStreamEncoder, D, H, M, 2, n_segments=0)
    t, v = plain(text, video)
    v_swapped, t_swapped = plain(video, text)
    torch.testing.assert_close(t_swapped, t, atol=ATOL, rtol=0)
    torch.testing.assert_close(v_swapped, v, atol=ATOL, rtol=0)
    seg = _build(SingleStreamEncoder, D, H, M, 2)
    t, _ = seg(text, video)
    _, t_swapped = seg(video, text)
    assert (t_swapped - t).abs().max() > 1e-4


def test_single_stream_attention_weights_are_the_last_blocks():
    enc = _build(SingleStreamEncoder, D, H, M, 2)
    text, video = _text_video(2, 5, 7)
    v_mask = _lengths_mask([7, 3], 7)
    w = enc.attention_weights(text, video, video_mask=v_mask)
    assert w.shape == (2, H, 12, 12)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, H, 12, dtype=DT), atol=ATOL, rtol=0)
    assert (w[1, ..., 5 + 3 :] == 0).all()
    s, (b0, b1) = enc.segment_embed, enc.blocks
    x = b0(torch.cat([text + s[0], video + s[1]], dim=1), mask=enc.joint_mask(text, video, video_mask=v_mask))
    logits = attention_logits(b1.attn, b1.ln_1(x))  # (B, h, 12, 12)
    keep = torch.cat([torch.ones(2, 5, dtype=torch.bool), v_mask], dim=1)[:, None, None]  # (B, 1, 1, 12)
    torch.testing.assert_close(w, torch.softmax(logits.masked_fill(~keep, float("-inf")), -1), atol=ATOL, rtol=0)


def test_single_stream_mask_combines_padding_and_joint_mask():
    enc = _build(SingleStreamEncoder, D, H, M, 1)
    text, video = _text_video(2, 3, 4)
    assert enc.joint_mask(text, video) is None
    m = enc.joint_mask(text, video, video_mask=_lengths_mask([4, 2], 4), mask=cross_modal_block_mask(3, 4))
    assert m.shape == (2, 7, 7)
    assert m[0].equal(cross_modal_block_mask(3, 4))
    assert m[1].equal(cross_modal_block_mask(3, 4) & (torch.arange(7) < 5)[None, :])


def _ragged(B: int = 3, L: int = 9):
    """A joined batch whose text/video split and length differ per row: ``(x, segments, padding)``, ``(B, L)``."""
    n_text, lengths = [2, 5, 3], [6, 9, 4]  # row 2: 3 text, 1 video token, 5 padding
    segments = torch.stack([(torch.arange(L) >= n).long() for n in n_text[:B]])  # (B, L)
    padding = _lengths_mask(lengths[:B], L)  # (B, L)
    return _tokens(B, L, seed=3), segments.masked_fill(~padding, 0), padding


def test_encode_joined_is_blocks_over_x_plus_per_token_segments():
    # the split point differs per row: no [text; video] cut could express this batch
    enc = _build(SingleStreamEncoder, D, H, M, 2)
    x, segments, padding = _ragged()
    ref = x + enc.segment_embed[segments]  # (B, L, D): each token's own segment row
    for blk in enc.blocks:
        ref = _block_ref(blk, ref, padding[:, None, :])
    torch.testing.assert_close(enc.encode_joined(x, segments, padding), ref, atol=ATOL, rtol=0)
    # the joint mask is AND-ed as in forward
    m = modality_block_mask(4, 5, [[True, False], [True, True]])  # (9, 9)
    ref = x + enc.segment_embed[segments]
    for blk in enc.blocks:
        ref = _block_ref(blk, ref, padding[:, None, :] & m)
    torch.testing.assert_close(enc.encode_joined(x, segments, padding, mask=m), ref, atol=ATOL, rtol=0)


def test_encode_joined_with_embed_norm_is_bert_embedding_output_then_blocks():
    enc = _build(SingleStreamEncoder, D, H, M, 2, embed_norm=True)
    with torch.no_grad():  # a non-trivial LayerNorm, so the test sees where it is applied
        enc.embed_norm.weight.copy_(1 + _noise(4) / 10)
        enc.embed_norm.bias.copy_(_noise(5))
    x, segments, padding = _ragged()
    ref = torch.nn.functional.layer_norm(x + enc.segment_embed[segments], (D,), enc.embed_norm.weight,
                                         enc.embed_norm.bias)  # LN after the segment is added
    for blk in enc.blocks:
        ref = _block_ref(blk, ref, padding[:, None, :])
    torch.testing.assert_close(enc.encode_joined(x, segments, padding), ref, atol=ATOL, rtol=0)


def test_forward_is_encode_joined_on_the_concatenation():
    enc = _build(SingleStreamEncoder, D, H, M, 2)
    text, video = _text_video(2, 5, 7)
    t_mask, v_mask = _lengths_mask([5, 3], 5), _lengths_mask([7, 2], 7)
    segments = torch.cat([torch.zeros(2, 5, dtype=torch.long), torch.ones(2, 7, dtype=torch.long)], dim=1)
    joined = enc.encode_joined(torch.cat([text, video], 1), segments, torch.cat([t_mask, v_mask], 1))
    torch.testing.assert_close(torch.cat(enc(text, video, t_mask, v_mask), 1), joined, atol=0, rtol=0)
    assert enc.joint(text, video).equal(torch.cat([text + enc.segment_embed[0], video + enc.segment_embed[1]], 1))


def test_given_segment_table_is_used_and_draws_nothing():
    table = torch.arange(2 * D, dtype=DT).reshape(2, D) / 100
    torch.manual_seed(0)
    given = SingleStreamEncoder(D, H, M, 1, segment_embed=table.clone())
    torch.manual_seed(0)
    fresh = SingleStreamEncoder(D, H, M, 1, n_segments=0)  # the blocks draw the same numbers
    assert given.segment_embed.equal(table.to(torch.get_default_dtype()))  # in the weights' dtype
    for a, b in zip(given.blocks.parameters(), fresh.blocks.parameters()):
        assert a.equal(b)


# --------------------------------------------------------------------------- padding, every model

PADDING_MODELS = [(CoAttentionBlock, (D, H, M)), (TwoStreamEncoder, (D, H, M, 2)), (SingleStreamEncoder, (D, H, M, 2))]


@pytest.mark.parametrize("cls, args", PADDING_MODELS, ids=[cls.__name__ for cls, _ in PADDING_MODELS])
def test_padded_video_tokens_reach_nothing(cls, args):
    model = _build(cls, *args)
    text, video = _text_video(2, 5, 7)
    v_mask = _lengths_mask([4, 7], 7)  # clip 0 has 3 padded video tokens
    t0, v0 = model(text, video, video_mask=v_mask)
    changed = video.clone()
    changed[0, 4:] += 3 * _tokens(1, 3, seed=7)[0]
    t1, v1 = model(text, changed, video_mask=v_mask)
    torch.testing.assert_close(t1, t0, atol=ATOL, rtol=0)
    torch.testing.assert_close(v1[:, :4], v0[:, :4], atol=ATOL, rtol=0)  # real video tokens neither
    # the checks can fail: unmasked, the same change reaches the text, and so does a real token's
    assert (model(text, changed)[0] - model(text, video)[0]).abs().max() > 1e-6
    changed[0, 2] += _noise(seed=6)
    assert (model(text, changed, video_mask=v_mask)[0][0] - t0[0]).abs().max() > 1e-6


# --------------------------------------------------------------------------- bad inputs


def _co():
    return _build(CoAttentionBlock, D, H, M)


def _cross():
    return _build(CrossAttention, D, H)


def _single():
    return _build(SingleStreamEncoder, D, H, M, 1)


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: _cross()(_tokens(2, 5, 1), _tokens(2, 7, 2, d=8)), r"context must have shape \(B, L, 16\)"),
        (lambda: _cross()(_tokens(2, 5, 1, d=8), _tokens(2, 7, 2)), r"x must have shape"),
        (lambda: _cross()(_tokens(2, 5, 1), _tokens(1, 7, 2)), "share a batch size"),
        (lambda: _cross()(_tokens(2, 5, 1)[0], _tokens(2, 7, 2)[0]), r"\(B, L, 16\)"),
        (lambda: _cross()(_tokens(2, 5, 1), _tokens(2, 7, 2), mask=torch.ones(2, 5, 6, dtype=torch.bool)),
         "does not broadcast"),
        (lambda: _cross()(_tokens(2, 5, 1), torch.ones(2, 7, D, dtype=torch.long)), "floating"),
        (lambda: _co()(_tokens(2, 5, 1), _tokens(3, 7, 2)), "share a batch size"),
        (lambda: _co()(_tokens(2, 5, 1), _tokens(2, 7, 2), video_mask=torch.ones(2, 6, dtype=torch.bool)),
         r"video_mask must be a bool tensor \(B, L\) = \(2, 7\)"),
        (lambda: _co()(_tokens(2, 5, 1), _tokens(2, 7, 2), text_mask=torch.ones(2, 5)), "text_mask must be a bool"),
        (lambda: _co()(_tokens(2, 5, 1), _tokens(2, 7, 2), text_mask=[True] * 5), "text_mask must be a bool"),
        (lambda: TwoStreamEncoder(D, H, M, 0), "depth"),
        (lambda: SingleStreamEncoder(D, H, M, 2, n_segments=1)(_tokens(2, 3, 1), _tokens(2, 4, 2)),
         "n_segments=0 or >= 2"),
        (lambda: SingleStreamEncoder(D, H, M, 2, segment_embed=torch.zeros(3, D)),
         r"segment_embed must be .* \(2, 16\)"),
        (lambda: SingleStreamEncoder(D, H, M, 2, dropout=1.0), "dropout"),
        (lambda: _single().encode_joined(_tokens(2, 3, 1)), "segments"),
        (lambda: _single().encode_joined(_tokens(2, 3, 1), torch.zeros(2, 4, dtype=torch.long)),
         r"segments must be an integer tensor \(B, L\) = \(2, 3\)"),
        (lambda: _single().encode_joined(_tokens(2, 3, 1), torch.zeros(2, 3)), "integer"),
        (lambda: _single().encode_joined(_tokens(2, 3, 1), torch.full((2, 3), 2)), r"lie in \[0, 2\)"),
        (lambda: _single().encode_joined(_tokens(2, 3, 1), torch.zeros(2, 3, dtype=torch.long),
                                         torch.ones(2, 4, dtype=torch.bool)), r"padding must be a bool tensor"),
        (lambda: SingleStreamEncoder(D, H, M, 2, n_segments=-1), "n_segments"),
        (lambda: CoAttentionBlock(D, 5, M), "divisible"),
        (lambda: _single()(_tokens(2, 3, 1), _tokens(2, 4, 2), mask=torch.ones(4, 4, dtype=torch.bool)),
         "does not broadcast"),
        (lambda: split_cross_attention(torch.nn.Linear(D, D), _tokens(2, 3, 1), _tokens(2, 4, 2)),
         "MultiHeadAttention"),
    ],
)
def test_bad_inputs_raise(call, words):
    with pytest.raises(ValueError, match=words):
        call()


# --------------------------------------------------------------------------- cost formulas

SIZES = [(5, 7, 16, 24), (6, 2, 8, 40), (1, 9, 12, 12), (10, 3, 16, 64)]  # (n_x, n_v, d, m), n_x != n_v


@pytest.mark.parametrize("n_x, n_v, d, m", SIZES)
def test_co_attention_block_counter_equals_formula(n_x, n_v, d, m):
    blk = _build(CoAttentionBlock, d, 4, m)
    text, video = _tokens(1, n_x, 1, d), _tokens(1, n_v, 2, d)
    expected = evaluate(co_attention_block_macs(), n_x=n_x, n_v=n_v, d=d, m=m)
    assert count_flops(blk, text, video) == 2 * expected
    # padding masks change which scores count, not how many are computed
    assert count_flops(blk, text, video, video_mask=_lengths_mask([n_v - 1], n_v)) == 2 * expected


@pytest.mark.parametrize("n_x, n_v, d, m", SIZES)
def test_single_stream_counter_equals_formula(n_x, n_v, d, m):
    depth = 2
    enc = _build(SingleStreamEncoder, d, 4, m, depth)
    text, video = _tokens(1, n_x, 1, d), _tokens(1, n_v, 2, d)
    expected = depth * evaluate(single_stream_block_macs(), n_x=n_x, n_v=n_v, d=d, m=m)
    assert count_flops(enc, text, video) == 2 * expected
    assert count_flops(enc, text, video, mask=cross_modal_block_mask(n_x, n_v)) == 2 * expected


@pytest.mark.parametrize("n_x, n_v, d, m", SIZES[:2])
def test_two_stream_and_cross_attention_counters_equal_formulas(n_x, n_v, d, m):
    text, video = _tokens(1, n_x, 1, d), _tokens(1, n_v, 2, d)
    enc = _build(TwoStreamEncoder, d, 4, m, 2)
    assert count_flops(enc, text, video) == 2 * 2 * evaluate(co_attention_block_macs(), n_x=n_x, n_v=n_v, d=d, m=m)
    cross = _build(CrossAttention, d, 4)
    assert count_flops(cross, text, video) == 2 * int(mha_macs(n_x, n_v, d, 1))


def test_formulas_by_definition():
    n_x, n_v, d, m = sp.symbols("n_x n_v d m", positive=True, integer=True)
    assert sp.expand(single_stream_block_macs() - block_macs(n_x + n_v, d, mlp_width=m)) == 0
    cross = mha_macs(n_x, n_v, d, 1) + mha_macs(n_v, n_x, d, 1)
    co = cross + block_macs(n_x, d, mlp_width=m) + block_macs(n_v, d, mlp_width=m)
    assert sp.expand(co_attention_block_macs() - co) == 0


def test_joint_scores_are_self_scores_plus_two_cross_terms():
    n_x, n_v, d = sp.symbols("n_x n_v d", positive=True, integer=True)
    joint = attention_macs(n_x + n_v, None, d)
    assert sp.expand(joint - 2 * (n_x + n_v) ** 2 * d) == 0
    self_terms = attention_macs(n_x, None, d) + attention_macs(n_v, None, d)
    cross_terms = attention_macs(n_x, n_v, d) + attention_macs(n_v, n_x, d)
    parts = self_terms + cross_terms
    assert sp.expand(joint - parts) == 0


def test_two_stream_costs_four_projections_more_per_token():
    n_x, n_v, d, m = sp.symbols("n_x n_v d m", positive=True, integer=True)
    extra = sp.expand(co_attention_block_macs() - single_stream_block_macs())
    assert sp.expand(extra - 4 * (n_x + n_v) * d**2) == 0  # no m, no score term: projections only
    overhead = co_attention_block_macs() / single_stream_block_macs() - 1
    assert sp.simplify(overhead - 2 * d / (2 * d + n_x + n_v + m)) == 0
    for n_x_, n_v_, d_, m_ in SIZES + [(32, 1568, 768, 3072), (1, 1, 1, 1)]:
        at = dict(n_x=n_x_, n_v=n_v_, d=d_, m=m_)
        assert evaluate(co_attention_block_macs(), **at) > evaluate(single_stream_block_macs(), **at)
    # the overhead is about a third with few tokens at m = 4d, and fades with many tokens
    ratio = lambda n: evaluate(co_attention_block_macs(), n_x=n, n_v=n, d=768, m=3072) / evaluate(  # noqa: E731
        single_stream_block_macs(), n_x=n, n_v=n, d=768, m=3072)
    assert 1.3 < ratio(4) < 1.34 and ratio(100_000) < 1.01


def test_chapter_derivation_starts_from_the_library_formulas():
    """ch06.two_stream_overhead writes both blocks out by hand; they must be the formulas checked above."""
    from vidlearn import derivations

    d = derivations.get("ch06.two_stream_overhead")
    start, end = d.expressions[0], d.expressions[-1]
    by_name = {s.name: s for s in start.free_symbols}
    lib = co_attention_block_macs() - single_stream_block_macs()
    lib = lib.subs({s: by_name[s.name] for s in lib.free_symbols})
    assert sp.expand(start - lib) == 0
    assert sp.expand(end - lib) == 0


# --------------------------------------------------------------------------- LXMERT's layout


def test_lxmert_layer_counts_are_the_papers():
    from vidlearn.crossmodal import LXMERT_LAYERS, LXMERTEncoder

    assert LXMERT_LAYERS == {"language": 9, "object_relationship": 5, "cross_modality": 5}
    enc = LXMERTEncoder(8, 2, 16)
    assert enc.layer_counts == LXMERT_LAYERS
    # single-modality encoders are self-attention blocks only; every cross layer is a co-attention block
    assert not any(isinstance(m, CrossAttention) for part in (enc.language, enc.object_relationship)
                   for m in part.modules())
    assert all(isinstance(b, CoAttentionBlock) for b in enc.cross_modality)
    with pytest.raises(ValueError, match="language"):
        LXMERTEncoder(8, 2, 16, language=-1)


def test_lxmert_single_modality_encoders_do_not_see_the_other_modality():
    from vidlearn.crossmodal import LXMERTEncoder

    torch.manual_seed(0)
    enc = LXMERTEncoder(8, 2, 16, language=2, object_relationship=1, cross_modality=2).double()
    text, video = torch.randn(1, 3, 8, dtype=torch.float64), torch.randn(1, 4, 8, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian
    assert torch.count_nonzero(jac(lambda v: enc.single_modality(text, v)[0], video)) == 0
    assert torch.count_nonzero(jac(lambda t: enc.single_modality(t, video)[1], text)) == 0
    # after the cross-modality layers, each stream depends on the other
    assert jac(lambda v: enc(text, v)[0], video).abs().max() > 1e-4
    assert jac(lambda t: enc(t, video)[1], text).abs().max() > 1e-4
    # with masks: a padded video token changes nothing in the text
    mask = torch.tensor([[True, True, False, False]])
    out = enc(text, video, video_mask=mask)[0]
    video2 = video.clone()
    video2[:, 2:] += 5.0
    torch.testing.assert_close(enc(text, video2, video_mask=mask)[0], out, atol=1e-12, rtol=0)


def test_shared_cross_attention_costs_the_same_macs_with_fewer_parameters():
    d, m, n_x, n_v = 8, 16, 3, 5
    torch.manual_seed(0)
    own, shared = CoAttentionBlock(d, 2, m), CoAttentionBlock(d, 2, m, share_cross_attention=True)
    assert shared.text_from_video is shared.video_from_text
    per_cross = sum(p.numel() for p in own.text_from_video.parameters())
    assert sum(p.numel() for p in own.parameters()) - sum(p.numel() for p in shared.parameters()) == per_cross
    t, v = torch.randn(1, n_x, d), torch.randn(1, n_v, d)
    assert count_flops(own.eval(), t, v) == count_flops(shared.eval(), t, v) == 2 * evaluate(
        co_attention_block_macs(), n_x=n_x, n_v=n_v, d=d, m=m)


def test_single_stream_costs_more_only_than_two_unfused_blocks():
    n_x, n_v, d, m = sp.symbols("n_x n_v d m", positive=True, integer=True)
    separate = block_macs(n_x, d, mlp_width=m) + block_macs(n_v, d, mlp_width=m)
    assert sp.expand(single_stream_block_macs() - separate) == 4 * n_x * n_v * d
    assert sp.expand(co_attention_block_macs() - single_stream_block_macs()) == sp.expand(4 * (n_x + n_v) * d**2)


# ---- review of issue 14: SingleStreamEncoder's new options, misused


@pytest.mark.parametrize("kw, message", [
    (dict(dropout="0.1"), "dropout must be a number"), (dict(dropout=None), "dropout must be a number"),
    (dict(dropout=True), "dropout must be a number"),
    (dict(segment_embed=torch.zeros(2, 16, dtype=torch.long)), "segment_embed must be a floating-point tensor"),
    (dict(segment_embed=[[0.0] * 16] * 2), "segment_embed must be a floating-point tensor"),
    (dict(segment_embed=torch.zeros(3, 16)), r"\(2, 16\)"),
    (dict(n_segments=0, segment_embed=torch.zeros(0, 16)), "n_segments=0"),
])
def test_single_stream_options_misused_are_named(kw, message):
    with pytest.raises(ValueError, match=message):
        SingleStreamEncoder(16, 2, 32, 1, **kw)


def test_a_given_segment_table_is_copied_not_trained_in_place():
    table = torch.randn(2, 16)
    before = table.clone()
    enc = SingleStreamEncoder(16, 2, 32, 1, segment_embed=table)
    assert torch.equal(enc.segment_embed.detach(), before)
    text, video = torch.randn(2, 3, 16), torch.randn(2, 4, 16)
    out_t, out_v = enc(text, video)
    (out_t.sum() + out_v.sum()).backward()
    with torch.no_grad():
        enc.segment_embed -= 0.1 * enc.segment_embed.grad
    assert torch.equal(table, before) and not torch.equal(enc.segment_embed.detach(), before)


def test_a_float64_segment_table_runs_in_the_encoders_dtype():
    enc = SingleStreamEncoder(16, 2, 32, 1, segment_embed=torch.randn(2, 16, dtype=torch.float64))
    out_t, _ = enc(torch.randn(1, 3, 16), torch.randn(1, 2, 16))
    assert enc.segment_embed.dtype == out_t.dtype == torch.float32


def test_encode_joined_refuses_a_row_without_a_real_token():
    enc = SingleStreamEncoder(16, 2, 32, 1)
    padding = torch.ones(2, 5, dtype=torch.bool)
    padding[1] = False
    with pytest.raises(ValueError, match="at least one real token"):
        enc.encode_joined(torch.randn(2, 5, 16), torch.zeros(2, 5, dtype=torch.long), padding)
