"""The symmetric InfoNCE loss: definition, gradient, the all-equal batch, bad input."""

import math

import pytest
import torch

from vidlearn.contrastive import similarity_logits, symmetric_info_nce

DT = torch.float64


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _by_hand(v, t, tau):
    """The definition written out with explicit sums: ½ (video→text + text→video)."""
    B = v.shape[0]
    vn = v / v.norm(dim=1, keepdim=True)
    tn = t / t.norm(dim=1, keepdim=True)
    S = [[float(vn[i] @ tn[j]) / tau for j in range(B)] for i in range(B)]
    v2t = -sum(S[i][i] - math.log(sum(math.exp(S[i][j]) for j in range(B))) for i in range(B)) / B
    t2v = -sum(S[j][j] - math.log(sum(math.exp(S[i][j]) for i in range(B))) for j in range(B)) / B
    return (v2t + t2v) / 2


@pytest.mark.parametrize("B,D,tau", [(1, 3, 1.0), (4, 8, 0.07), (7, 5, 0.5)])
def test_equals_the_definition(B, D, tau):
    v, t = torch.randn(B, D, dtype=DT), torch.randn(B, D, dtype=DT)
    assert symmetric_info_nce(v, t, tau).item() == pytest.approx(_by_hand(v, t, tau), rel=1e-12)


def test_all_equal_embeddings_give_log_b():
    for B in (1, 2, 9):
        e = torch.randn(1, 6, dtype=DT).expand(B, 6)
        assert symmetric_info_nce(e, 3 * e, 0.07).item() == pytest.approx(math.log(B), abs=1e-12)


def test_gradient_with_respect_to_a_logit_is_softmax_minus_one_hot_over_b():
    B = 5
    S = torch.randn(B, B, dtype=DT, requires_grad=True)
    target = torch.arange(B)
    loss = (torch.nn.functional.cross_entropy(S, target) + torch.nn.functional.cross_entropy(S.T, target)) / 2
    (g,) = torch.autograd.grad(loss, S)
    eye = torch.eye(B, dtype=DT)
    expected = ((S.softmax(dim=1) - eye) + (S.softmax(dim=0) - eye)) / (2 * B)
    torch.testing.assert_close(g, expected)


def test_invariant_to_embedding_scale_and_learnable_temperature_gets_a_gradient():
    v, t = torch.randn(4, 8, dtype=DT), torch.randn(4, 8, dtype=DT)
    log_tau = torch.tensor(math.log(0.07), dtype=DT, requires_grad=True)
    loss = symmetric_info_nce(v, t, log_tau.exp())
    assert loss.item() == pytest.approx(symmetric_info_nce(5 * v, 0.1 * t, 0.07).item(), rel=1e-12)
    (g,) = torch.autograd.grad(loss, log_tau)
    assert g.abs() > 0


def test_similarity_logits_for_a_gallery():
    q, g = torch.randn(3, 8, dtype=DT), torch.randn(10, 8, dtype=DT)
    S = similarity_logits(q, g, 0.5)
    assert S.shape == (3, 10)
    torch.testing.assert_close(S, torch.nn.functional.cosine_similarity(q[:, None], g[None], dim=-1) / 0.5)


@pytest.mark.parametrize(
    "video,text,tau,message",
    [
        (torch.randn(4, 8), torch.randn(3, 8), 0.1, "must both be"),
        (torch.randn(4), torch.randn(4), 0.1, r"float embeddings \(B, D\)"),
        (torch.ones(4, 8, dtype=torch.long), torch.randn(4, 8), 0.1, "float embeddings"),
        (torch.randn(4, 8), torch.randn(4, 8), 0.0, "temperature"),
        (torch.randn(4, 8), torch.randn(4, 8), -1.0, "temperature"),
        (torch.randn(4, 8), torch.randn(4, 8), float("nan"), "temperature"),
        (torch.randn(4, 8), torch.randn(4, 8), torch.tensor([0.1, 0.2]), "temperature"),
        (torch.randn(4, 8), torch.randn(4, 8), True, "temperature"),
        (torch.randn(4, 8), torch.randn(4, 8, dtype=torch.float64), 0.1, "same dtype"),
    ],
)
def test_bad_input_is_named(video, text, tau, message):
    with pytest.raises(ValueError, match=message):
        symmetric_info_nce(video, text, tau)


BAD_EMBEDDINGS = [(None, "video"), (torch.zeros(0, 4), "video is empty"), (torch.zeros(3, 0), "video is empty"),
                  (torch.zeros(3, 4, dtype=torch.long), "video"), (torch.zeros(4), "video")]


@pytest.mark.parametrize("video, message", BAD_EMBEDDINGS, ids=[m for _, m in BAD_EMBEDDINGS])
def test_bad_embeddings_are_refused_by_name(video, message):
    from vidlearn.contrastive import similarity_logits

    with pytest.raises(ValueError, match=message):
        similarity_logits(video, torch.rand(3, 4), 0.1)
    with pytest.raises(ValueError, match=message):
        symmetric_info_nce(video, torch.rand(3, 4), 0.1)


@pytest.mark.parametrize("tau", [torch.tensor(0.07 + 0j), torch.tensor(True), torch.tensor(1)])
def test_a_temperature_tensor_that_is_not_floating_point_is_refused(tau):
    v, t = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="temperature must be a floating-point"):
        similarity_logits(v, t, tau)
