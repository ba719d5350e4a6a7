"""The transformer block: pre-LN and post-LN, QuickGELU, and the attention weights it returns."""

import pytest
import torch
from torch import nn

from vidlearn.blocks import QuickGELU, ResidualAttentionBlock, run_blocks
from vidlearn.crossmodal import SingleStreamEncoder
from vidlearn.videobert import VideoBERT, VideoBERTConfig

DT = torch.float64


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_quick_gelu():
    x = torch.linspace(-4, 4, 9, dtype=DT)
    torch.testing.assert_close(QuickGELU()(x), x / (1 + torch.exp(-1.702 * x)))


def test_residual_block_is_pre_layernorm_with_a_residual_path():
    block = ResidualAttentionBlock(12, 3).to(DT)
    x = torch.randn(2, 5, 12, dtype=DT)
    expected = x + block.attn(block.ln_1(x))
    expected = expected + block.mlp(block.ln_2(expected))
    torch.testing.assert_close(block(x), expected)


def test_post_layernorm_block_normalises_after_each_residual_sum():
    block = ResidualAttentionBlock(12, 3, norm_first=False, activation=nn.GELU).to(DT)
    x = torch.randn(2, 5, 12, dtype=DT)
    h = nn.functional.layer_norm(x + block.attn(x), (12,), block.ln_1.weight, block.ln_1.bias)
    expected = nn.functional.layer_norm(h + block.mlp(h), (12,), block.ln_2.weight, block.ln_2.bias)
    torch.testing.assert_close(block(x), expected)
    # its output is normalised (LN's affine is the identity at initialisation); a pre-LN block's is not
    torch.testing.assert_close(block(x).mean(-1), torch.zeros(2, 5, dtype=DT), atol=1e-12, rtol=0)
    pre = ResidualAttentionBlock(12, 3).to(DT)
    assert pre(x).mean(-1).abs().max() > 1e-3


@pytest.mark.parametrize("norm_first", [True, False])
def test_block_returns_the_weights_its_attention_used(norm_first):
    block = ResidualAttentionBlock(12, 3, norm_first=norm_first).to(DT)
    x = torch.randn(2, 5, 12, dtype=DT)
    mask = torch.tril(torch.ones(5, 5, dtype=torch.bool))
    out, w = block(x, mask=mask, return_weights=True)
    torch.testing.assert_close(out, block(x, mask=mask))
    _, expected = block.attn(block.ln_1(x) if norm_first else x, mask=mask, return_weights=True)
    torch.testing.assert_close(w, expected)
    assert w.shape == (2, 3, 5, 5) and torch.all(w[..., ~mask] == 0)


def test_run_blocks_returns_the_last_blocks_weights():
    blocks = nn.ModuleList(ResidualAttentionBlock(12, 3) for _ in range(3)).to(DT)
    x = torch.randn(2, 5, 12, dtype=DT)
    out, w = run_blocks(blocks, x, return_weights=True)
    h = blocks[1](blocks[0](x))
    torch.testing.assert_close(w, blocks[2].attn(blocks[2].ln_1(h), return_weights=True)[1])
    torch.testing.assert_close(out, blocks[2](h))
    with pytest.raises(ValueError, match="no blocks"):
        run_blocks(nn.ModuleList(), x, return_weights=True)


def test_encoders_expose_their_last_blocks_weights_through_the_block():
    enc = SingleStreamEncoder(12, 3, 24, depth=2).to(DT)
    text, video = torch.randn(2, 3, 12, dtype=DT), torch.randn(2, 4, 12, dtype=DT)
    w = enc.attention_weights(text, video)
    x = enc.blocks[0](enc.joint(text, video))
    torch.testing.assert_close(w, enc.blocks[1](x, return_weights=True)[1])
    assert w.shape == (2, 3, 7, 7)

    model = VideoBERT(VideoBERTConfig(vocab_size=20, width=12, depth=2, heads=3, mlp_width=24, max_len=8)).eval()
    ids = torch.randint(0, 20, (2, 6))
    w = model.attention_weights(ids)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 6))
    assert w.shape == (2, 3, 6, 6)


@pytest.mark.parametrize("eps", [0.0, 1e-5])
def test_layer_norm_jacobian_is_autograds(eps):
    from vidlearn.blocks import layer_norm_jacobian

    x = torch.randn(4, 3, 10, dtype=DT)
    J = layer_norm_jacobian(x, eps)  # (4, 3, 10, 10)
    assert J.shape == (4, 3, 10, 10)
    for idx in [(0, 0), (2, 1), (3, 2)]:
        expected = torch.autograd.functional.jacobian(lambda t: nn.functional.layer_norm(t, (10,), eps=eps), x[idx])
        torch.testing.assert_close(J[idx], expected, atol=1e-12, rtol=0)


def test_layer_norm_jacobian_annihilates_shifts_and_rescalings():
    from vidlearn.blocks import layer_norm_jacobian

    x = torch.randn(5, 7, dtype=DT)
    J = layer_norm_jacobian(x)  # (5, 7, 7)
    xhat = nn.functional.layer_norm(x, (7,), eps=0.0)  # (5, 7)
    torch.testing.assert_close(J @ torch.ones(7, dtype=DT), torch.zeros(5, 7, dtype=DT), atol=1e-12, rtol=0)
    torch.testing.assert_close((J @ xhat[..., None])[..., 0], torch.zeros(5, 7, dtype=DT), atol=1e-12, rtol=0)
    # and its rank is d − 2: nothing else is lost
    assert torch.linalg.matrix_rank(J).tolist() == [5] * 5


def test_layer_norm_jacobian_of_a_constant_token_is_a_clear_error():
    from vidlearn.blocks import layer_norm_jacobian

    x = torch.randn(3, 6, dtype=DT)
    x[1] = 2.5  # a constant token: σ = 0
    with pytest.raises(ValueError, match=r"index \(1,\) is constant.*eps > 0"):
        layer_norm_jacobian(x)
    with pytest.raises(ValueError, match="constant"):
        layer_norm_jacobian(torch.zeros(6, dtype=DT))
    with pytest.raises(ValueError, match="eps must be >= 0"):
        layer_norm_jacobian(torch.randn(6, dtype=DT), eps=-1e-5)
    # with eps > 0 it is defined: σ = √eps, and x̂ = 0 leaves (I − 11ᵀ/d)/√eps
    J = layer_norm_jacobian(x, eps=1e-4)
    expected = (torch.eye(6, dtype=DT) - torch.full((6, 6), 1 / 6, dtype=DT)) / 1e-2
    torch.testing.assert_close(J[1], expected, atol=1e-9, rtol=0)
    assert torch.isfinite(J).all()
