"""What a question forbids is caught while the student's function runs, by any name it goes by, and
the question scores zero with the reason (here in check(); the grader's side is tests/grading)."""

import sys
import threading

import pytest
import torch
import torch.nn.functional as F

from vidlearn.grading.feedback import evaluate
from vidlearn.grading.forbidden import Guard
from vidlearn.grading.questions import FunctionQuestion, get_question

EX01 = get_question("ex01.softmax").forbids
X = torch.randn(3, 4, dtype=torch.float64)


def _library():
    from vidlearn.attention import softmax

    return softmax(X)


def _question_bank():
    from vidlearn.grading.questions import get_question as bank

    return bank("ex01.softmax").reference(X)


def _in_a_thread():
    out = []

    def work():
        try:
            out.append(torch.softmax(X, -1))
        except Exception:
            pass

    t = threading.Thread(target=work)
    t.start()
    t.join()
    return out[0] if out else X


def _decomposed():
    from torch._decomp import decomposition_table

    return decomposition_table[torch.ops.aten._softmax.default](X, -1, False)


def _flex():
    import warnings

    from torch.nn.attention.flex_attention import flex_attention

    q = X[None, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "called without torch.compile()"
        return flex_attention(q, q, q)


def _inference():
    with torch.inference_mode():
        return torch.ops.aten._softmax(X, -1, False)


ATTEMPTS = {
    "torch.softmax": (lambda: torch.softmax(X, -1), "calls torch.softmax,"),
    "Tensor.softmax": (lambda: X.softmax(-1), "calls torch.Tensor.softmax"),
    "F.softmax": (lambda: F.softmax(X, -1), "calls torch.nn.functional.softmax"),
    "nn.Softmax": (lambda: torch.nn.Softmax(-1)(X), "calls torch.nn.functional.softmax"),
    "special": (lambda: torch.special.softmax(X, -1), "calls torch.special.softmax"),
    "aten": (lambda: torch.ops.aten._softmax(X, -1, False), "reached ATen's _softmax"),
    "log_softmax": (lambda: torch.log_softmax(X, -1).exp(), "calls torch.log_softmax"),
    "cross_entropy": (lambda: F.cross_entropy(X, torch.tensor([0, 1, 2])), "reached ATen's _log_softmax"),
    "sparse": (lambda: torch.sparse.softmax(X.to_sparse(), -1), "calls torch.sparse.softmax"),
    "mkldnn": (lambda: torch.ops.aten._softmax(X.float().to_mkldnn(), -1, False), "reached ATen's _softmax"),
    "inference mode": (lambda: _inference(), "reached ATen's _softmax"),
    "a thread": (_in_a_thread, "reached ATen's _softmax"),
    "sdpa": (lambda: F.scaled_dot_product_attention(X[None], X[None], X[None]),
             "calls torch.nn.functional.scaled_dot_product_attention"),
    "MultiheadAttention": (lambda: torch.nn.MultiheadAttention(4, 1, dtype=torch.float64)(X, X, X),
                           "calls torch.nn.MultiheadAttention"),
    "torch._refs": (lambda: __import__("torch._refs")._refs.softmax(X, -1), "calls torch.softmax"),
    "a decomposition": (lambda: _decomposed(), "(torch._decomp.decompositions._softmax)"),
    "flex_attention": (lambda: _flex(), "(torch.nn.attention.flex_attention.flex_attention)"),
    "the library": (_library, "calls vidlearn.attention.softmax"),
    "the question bank": (_question_bank, "calls vidlearn.grading.questions.get_question"),
    "switching the watch off": (lambda: sys.setprofile(None), "switched off the grader's watch"),
}


@pytest.mark.parametrize("name", sorted(ATTEMPTS))
def test_every_route_is_caught(name):
    fn, reason = ATTEMPTS[name]
    with Guard(EX01) as guard:
        try:
            fn()
        except Exception:  # raising is not needed for it to count, and catching does not undo it
            pass
    assert guard.violation and reason in guard.violation, guard.violation


def test_honest_code_is_not_flagged_and_torch_works_again_afterwards():
    with Guard(EX01) as guard:
        m = X.amax(-1, keepdim=True)
        e = (X - m).exp()
        out = e / e.sum(-1, keepdim=True)
    assert guard.violation is None
    assert torch.allclose(torch.softmax(X, -1), out)  # the guard's kernels are gone again
    assert sys.getprofile() is None


def test_check_scores_a_forbidden_call_zero_with_the_reason():
    def sneaky(x, dim=-1):
        return torch.nan_to_num(torch.softmax(x, dim), nan=0.0)  # right on every case

    outcome = evaluate("ex01.softmax", sneaky)
    assert outcome.score == 0 and outcome.misconception == "calls a forbidden function"
    assert outcome.feedback == "calls torch.softmax, which this exercise asks you to write: no points for this question"


def test_what_a_later_exercise_allows_is_allowed():
    assert "torch.softmax" not in get_question("ex03.causal_attention").forbids
    with Guard(get_question("ex03.causal_attention").forbids) as guard:
        torch.softmax(X, -1)
    assert guard.violation is None


def test_a_question_can_only_forbid_what_the_guard_knows():
    with pytest.raises(ValueError, match="cannot forbid"):
        FunctionQuestion("ex99.x", "x", 1, reference=abs, make_cases=list, forbids=("torch.exp",))
