"""Two-stage retrieval (vidlearn.rerank): the shortlist is the first stage's top k, its order the second's."""

import pytest
import torch

from vidlearn.rerank import rerank, shortlist
from vidlearn.videobert import recall_at_k


def _order(scores):
    return scores.argsort(dim=1, descending=True, stable=True)


@pytest.fixture
def stages():
    g = torch.Generator().manual_seed(0)
    first = torch.randn(7, 30, generator=g, dtype=torch.float64)  # (Q, M)
    second = torch.randn(7, 30, generator=g, dtype=torch.float64)  # the joint model's score of every pair
    relevant = torch.rand(7, 30, generator=g) < 0.15
    relevant[:, 0] |= ~relevant.any(dim=1)  # every query has a hit
    return first, second, relevant


def test_shortlist_is_the_top_k_with_stable_ties():
    scores = torch.tensor([[1.0, 3.0, 3.0, 2.0, 3.0]])
    assert shortlist(scores, 3).tolist() == [[1, 2, 4]]  # ties to the lower index, as recall_at_k
    assert shortlist(scores, 5).tolist() == [[1, 2, 4, 3, 0]]


@pytest.mark.parametrize("k", [1, 3, 10, 30])
def test_rerank_orders_the_shortlist_by_the_second_stage_and_keeps_the_rest(stages, k):
    first, second, _ = stages
    calls = []

    def score_pairs(q, items):
        calls.append((q, items.tolist()))
        return second[q, items]

    out = rerank(first, k, score_pairs)
    final = _order(out)
    top = _order(first)[:, :k]
    assert [c[0] for c in calls] == list(range(7)) and all(len(c[1]) == k for c in calls)
    for q in range(7):
        # the same set, in the second stage's order (computed independently by sorting the pairs)
        expected_head = sorted(top[q].tolist(), key=lambda i: -second[q, i].item())
        assert final[q, :k].tolist() == expected_head
        assert final[q, k:].tolist() == _order(first)[q, k:].tolist()
    assert sorted(out[0].tolist()) == [-r for r in range(29, -1, -1)]  # a permutation of ranks


def test_k_equal_to_m_is_the_second_stage_alone_and_k_one_the_first(stages):
    first, second, relevant = stages
    full = rerank(first, 30, lambda q, items: second[q, items])
    assert torch.equal(_order(full), _order(second))
    one = rerank(first, 1, lambda q, items: second[q, items])
    assert torch.equal(_order(one), _order(first))


@pytest.mark.parametrize("k", [2, 5, 12])
def test_recall_at_the_shortlist_length_is_the_first_stages(stages, k):
    first, second, relevant = stages
    out = rerank(first, k, lambda q, items: second[q, items])
    assert recall_at_k(out, relevant, (k,)) == recall_at_k(first, relevant, (k,))


def test_reranking_by_the_first_stage_itself_changes_nothing(stages):
    first, _, _ = stages
    out = rerank(first, 10, lambda q, items: first[q, items])
    assert torch.equal(_order(out), _order(first))


@pytest.mark.parametrize(
    "first, k, fn, message",
    [
        (torch.zeros(2, 3, dtype=torch.long), 1, lambda q, i: i.double(), "floating-point"),
        (torch.zeros(3), 1, lambda q, i: i.double(), r"\(Q, M\)"),
        (torch.zeros(0, 3), 1, lambda q, i: i.double(), "at least one"),
        (torch.tensor([[0.0, float("nan")]]), 1, lambda q, i: i.double(), "finite"),
        (torch.zeros(2, 3), 4, lambda q, i: i.double(), "longer than the 3 items"),
        (torch.zeros(2, 3), 0, lambda q, i: i.double(), "k must be a positive integer"),
        (torch.zeros(2, 3), 1.5, lambda q, i: i.double(), "k must be a positive integer"),
        (torch.zeros(2, 3), True, lambda q, i: i.double(), "k must be a positive integer"),
        (torch.zeros(2, 3), 2, "not callable", "callable"),
        (torch.zeros(2, 3), 2, lambda q, i: torch.zeros(3), r"shape \(2,\)"),
        (torch.zeros(2, 3), 2, lambda q, i: [0.0, 1.0], r"shape \(2,\)"),
        (torch.zeros(2, 3), 2, lambda q, i: torch.tensor([0.0, float("inf")]), "non-finite"),
    ],
)
def test_bad_input_is_named(first, k, fn, message):
    with pytest.raises(ValueError, match=message):
        rerank(first, k, fn)


@pytest.mark.parametrize("dtype, M", [(torch.bfloat16, 400), (torch.float16, 3000)])
def test_low_precision_scores_keep_every_rank_distinct(dtype, M):
    first = torch.randn(2, M, generator=torch.Generator().manual_seed(1)).to(dtype)
    out = rerank(first, 3, lambda q, items: torch.arange(3.0))
    assert out.dtype == torch.float64 and all(len(set(row.tolist())) == M for row in out)
    assert torch.equal(_order(out)[:, 3:], _order(first)[:, 3:])
