"""VideoBERT's model on the course's one joint stream: it is token and position embeddings plus
heads around a :class:`~vidlearn.crossmodal.SingleStreamEncoder`, computes what BERT's layout
computes (checked against a reference written here, in float64), and a seed gives the model
the stand-alone stack of blocks used to give (so chapter 6's numbers stay put)."""

import pytest
import torch
from torch import nn

from test_crossmodal import _block_ref
from vidlearn.blocks import ResidualAttentionBlock
from vidlearn.crossmodal import SingleStreamEncoder
from vidlearn.videobert import VideoBERT, VideoBERTConfig

CONFIG = VideoBERTConfig(vocab_size=20, max_len=9, width=16, depth=2, heads=4, mlp_width=24)


def _batch():
    """Two rows whose text/video split and length differ, as build_sequence and pad_batch make them."""
    ids = torch.tensor([[1, 5, 6, 4, 12, 13, 2, 0, 0],  # [CLS] w w [>] v v [SEP] [PAD] [PAD]
                        [1, 7, 8, 9, 10, 4, 14, 15, 2]])  # [CLS] w w w w [>] v v [SEP]
    segments = torch.tensor([[0, 0, 0, 0, 1, 1, 1, 0, 0],
                             [0, 0, 0, 0, 0, 0, 1, 1, 1]])
    return ids, segments, ids != 0


def _reference(model: VideoBERT, ids, segments, mask) -> torch.Tensor:
    """BERT's layout from the definitions: ``LN(E_tok + E_pos + E_seg)``, blocks over real keys, LN."""
    enc = model.encoder
    x = model.token_embed.weight[ids] + model.position_embed.weight[: ids.shape[1]] + enc.segment_embed[segments]
    x = nn.functional.layer_norm(x, x.shape[-1:], enc.embed_norm.weight, enc.embed_norm.bias)
    for blk in enc.blocks:
        x = _block_ref(blk, x, mask[:, None, :])
    return model.norm(x)


def test_forward_equals_the_reference_in_float64():
    torch.manual_seed(0)
    model = VideoBERT(CONFIG).double().eval()
    with torch.no_grad():  # non-trivial LayerNorms, so their placement matters
        for ln in (model.encoder.embed_norm, model.norm):
            ln.weight.add_(torch.randn_like(ln.weight) / 5)
            ln.bias.add_(torch.randn_like(ln.bias) / 5)
    ids, segments, mask = _batch()
    torch.testing.assert_close(model(ids, segments, mask), _reference(model, ids, segments, mask), atol=1e-10, rtol=0)


def test_the_blocks_are_one_single_stream_encoder():
    model = VideoBERT(CONFIG)
    encoders = [m for m in model.modules() if isinstance(m, SingleStreamEncoder)]
    assert encoders == [model.encoder] and len(model.encoder.blocks) == CONFIG.depth
    blocks = [m for m in model.modules() if isinstance(m, ResidualAttentionBlock)]
    assert blocks == list(model.encoder.blocks)  # no second stack anywhere else
    assert model.encoder.segment_embed.shape == (CONFIG.n_segments, CONFIG.width)


def test_seed_gives_the_parameters_of_the_stand_alone_layout():
    # VideoBERT used to hold its segment embedding, embedding LayerNorm and blocks itself; drawing
    # those in the same order under the same seed must give the same parameters, in the same order
    # (the optimiser and gradient clipping iterate over them in that order)
    c = CONFIG
    torch.manual_seed(0)
    tables = [nn.Embedding(n, c.width) for n in (c.vocab_size, c.max_len, c.n_segments)]
    for e in tables:
        nn.init.normal_(e.weight, std=0.02)
    parts = [*tables, nn.LayerNorm(c.width)]
    parts += [ResidualAttentionBlock(c.width, c.heads, mlp_width=c.mlp_width, activation=nn.GELU)
              for _ in range(c.depth)]
    parts += [nn.LayerNorm(c.width), nn.Sequential(nn.Linear(c.width, c.width), nn.GELU(), nn.LayerNorm(c.width))]
    # the MLM bias is VideoBERT's own parameter, so parameters() lists it before any submodule's
    expected = [torch.zeros(c.vocab_size)] + [p for part in parts for p in part.parameters()]
    expected += list(nn.Sequential(nn.Linear(c.width, c.width), nn.Tanh(), nn.Linear(c.width, 1)).parameters())
    torch.manual_seed(0)
    got = list(VideoBERT(c).parameters())
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert a.shape == b.shape and a.equal(b)


def test_padding_and_other_rows_do_not_change_a_row():
    torch.manual_seed(0)
    model = VideoBERT(CONFIG).double().eval()
    ids, segments, mask = _batch()
    both = model(ids, segments, mask)
    alone = model(ids[:1, :7], segments[:1, :7], mask[:1, :7])  # row 0 without its padding
    torch.testing.assert_close(both[0, :7], alone[0], atol=1e-12, rtol=0)


def test_segments_reach_the_encoder():
    torch.manual_seed(0)
    model = VideoBERT(CONFIG).double().eval()
    ids, segments, mask = _batch()
    assert (model(ids, segments, mask) - model(ids, torch.zeros_like(segments), mask)).abs().max() > 1e-3
    with pytest.raises(ValueError, match=r"segments must lie in \[0, 2\)"):
        model(ids, segments + 1, mask)
