"""Exercise 7's grader: the misconceptions added after the hostile review are recognised, each one
differs from the right answer and from the others at the grader's inputs, and the derivation refuses
padding and reads (or clearly refuses) vulgar fractions."""

import itertools

import pytest

from standins import stand_in
from vidlearn.derive.notation import read
from vidlearn.grading.feedback import evaluate
from vidlearn.grading.questions import compare, get_question

NEW = [("ex07.symmetric_info_nce", "temperature hard-coded to 0.07"),
       ("ex07.symmetric_info_nce", "both directions summed, not averaged"),
       ("ex07.symmetric_info_nce", "only the video embeddings normalised"),
       ("ex07.symmetric_info_nce", "only the text embeddings normalised"),
       ("ex07.info_nce_logit_gradient", "text→video term only")]


@pytest.mark.parametrize("qid, name", NEW, ids=[n for _, n in NEW])
def test_new_misconception_is_recognised(qid, name):
    q = get_question(qid)
    m = next(m for m in q.misconceptions if m.name == name)
    outcome = evaluate(qid, stand_in(m.fn, q.cases()))
    assert outcome.score < outcome.max_score and outcome.misconception == name and m.hints[0] in outcome.feedback


@pytest.mark.parametrize("qid", ["ex07.symmetric_info_nce", "ex07.info_nce_logit_gradient"])
@pytest.mark.parametrize("key", [None, "a teacher's key", "another key"])
def test_every_misconception_differs_from_the_answer_and_the_others_on_some_graded_case(qid, key):
    q = get_question(qid)
    cases = q.cases(key)
    outs = [("the reference", [q.reference(*c.args) for c in cases])]
    outs += [(m.name, [m.fn(*c.args) for c in cases]) for m in q.misconceptions]
    for (a, xa), (b, xb) in itertools.combinations(outs, 2):
        assert any(compare(x, y, q.atol, q.rtol) is not None for x, y in zip(xa, xb)), (a, b)
    if key is not None:  # the grader's cases: the new mistakes differ from the answer on every one of them
        for name, xs in (o for o in outs[1:] if (qid, o[0]) in NEW):
            assert all(compare(x, y, q.atol, q.rtol) is not None for x, y in zip(outs[0][1], xs)), name


SOLUTION = [("(-Sum(log(exp(c)/(B*exp(c))), (i, 1, B))/B - Sum(log(exp(c)/(B*exp(c))), (j, 1, B))/B)/2", "a"),
            ("(-log(1/B) - log(1/B))/2", "b"), ("log(B)", "c")]


def test_the_solution_earns_full_marks_and_a_half_in_unicode_is_read():
    assert evaluate("ex07.all_equal_loss", lambda: SOLUTION).score == 2
    half = evaluate("ex07.all_equal_loss", lambda: [SOLUTION[0], ("½*(-log(1/B) - log(1/B))", "b"), ("log(B)", "c")])
    assert half.score == 2, half.feedback


@pytest.mark.parametrize("text, plain", [("½*x", "x/2"), ("½(x + 1)", "(x + 1)/2"), ("x½", "x/2"), ("x**½", "sqrt(x)"),
                                         ("¾*y - ⅓", "3*y/4 - 1/3")])
def test_vulgar_fractions_are_read_as_numbers(text, plain):
    assert read(text, {}).expr.equals(read(plain, {}).expr)


@pytest.mark.parametrize("text", ["2½", "½2", "1.½", "⅟x"])
def test_ambiguous_vulgar_fractions_are_refused_by_name(text):
    with pytest.raises(ValueError, match="VULGAR FRACTION|FRACTION NUMERATOR") as err:
        read(text, {})
    assert "⁄" not in str(err.value) and "/" in str(err.value)


PADDED = [[("log(B)*(B - 1)/(B - 1)", "a"), ("log(B)", "b")], [("log(B)*exp(0)", "a"), ("log(B)", "b")],
          [("log(B) + c - c", "a"), ("log(B)", "b")], [("log(B)", "a"), ("log(B)", "b")],
          [("log(B*exp(c)) - c", "a"), ("log(B)", "b")]]


@pytest.mark.parametrize("steps", PADDED, ids=[s[0][0] for s in PADDED])
def test_padding_and_a_skipped_softmax_earn_nothing(steps):
    outcome = evaluate("ex07.all_equal_loss", lambda: steps)
    assert outcome.score == 0, outcome.feedback


def test_a_false_step_is_refused():
    outcome = evaluate("ex07.all_equal_loss", lambda: [("(-log(1/B) - log(1/B))/2", "a"), ("log(B)/2", "b")])
    assert outcome.score < 2 and "step 2" in outcome.feedback


@pytest.mark.parametrize("reason", ["", "   ", "\n\t"])
def test_a_step_without_a_reason_is_refused_by_name(reason):
    steps = [SOLUTION[0], (SOLUTION[1][0], reason), SOLUTION[2]]
    outcome = evaluate("ex07.all_equal_loss", lambda: steps)
    assert outcome.score == 0 and "step 2 has no reason" in outcome.feedback, outcome.feedback


# the answer in disguise: every correct step equals log B, so a milestone that only counts names ("a log, no exp")
# was met by the target rewritten; the milestone pins the log's argument to 1/B, as written
DISGUISED = [[("log(B**2)/2", "guess"), ("log(B)", "log rule")],
             [("log(2*B) - log(2)", "guess"), ("log(B)", "log rule")],
             [("log(B)*sin(c)**2 + log(B)*cos(c)**2", "guess"), ("log(B)", "sin² + cos² = 1")],
             [("-log(1/B**2)/2", "guess"), ("log(B)", "log rule")],
             [("-log(1/(2*B)) - log(2)", "guess"), ("log(B)", "log rule")],
             [("-log(1/B)/2 + log(B)/2", "half and half"), ("log(B)", "log rule")],
             [("-log(E**c/(B*E**c))", "the softmax, exp as a power"), ("log(B)", "cancel")],
             [("-log(exp(c)/(B*exp(c)))", "the softmax"), ("log(B)", "cancel")]]


@pytest.mark.parametrize("steps", DISGUISED, ids=[s[0][0] for s in DISGUISED])
def test_the_answer_in_disguise_does_not_reach_the_milestone(steps):
    outcome = evaluate("ex07.all_equal_loss", lambda: steps)
    assert outcome.score < outcome.max_score, outcome.feedback
    assert "every log is log(1/B)" in outcome.feedback and "show that step too" in outcome.feedback


HONEST = [SOLUTION,
          [("-log(1/B)", "each softmax is exp(c)/(B exp(c)) = 1/B, in both directions"), ("log(B)", "log rule")],
          [("-log(B**-1)", "each softmax is 1/B"), ("log(B)", "log rule")],
          [("(-Sum(log(1/B), (i, 1, B))/B - Sum(log(1/B), (j, 1, B))/B)/2", "exp(c) cancels in each softmax"),
           ("-log(1/B)", "B equal terms, divided by B"), ("log(B)", "log rule")],
          [("-Sum(log(1/B), (i, 1, B))/B", "exp(c) cancels; both directions are equal"), ("log(B)", "the mean")],
          [("-ln(1/B)/2 - ln(1/B)/2", "each softmax is 1/B"), ("log(B)", "log rule")]]


@pytest.mark.parametrize("steps", HONEST, ids=[s[0][0] for s in HONEST])
def test_honest_chains_reach_the_milestone(steps):
    outcome = evaluate("ex07.all_equal_loss", lambda: steps)
    assert outcome.score == outcome.max_score, outcome.feedback


def test_the_milestone_survives_the_checkers_json_spec():
    from vidlearn.derive.milestone import Milestone
    from vidlearn.grading.scoring import derivation_spec

    import json

    (m,) = get_question("ex07.all_equal_loss").milestones
    spec = json.loads(json.dumps(derivation_spec(get_question("ex07.all_equal_loss"))))
    back = Milestone(**spec["milestones"][0])
    assert back == m and back.only_args == (("log", "1/B"),)


# ----------------------------------------------------------------------------- a loss must be trainable

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def _loss(video, text, temperature):
    v = video / video.norm(dim=1, keepdim=True)
    t = text / text.norm(dim=1, keepdim=True)
    s = v @ t.T / temperature
    target = torch.arange(s.shape[0])
    return (F.cross_entropy(s, target) + F.cross_entropy(s.T, target)) / 2


def loss_item(video, text, temperature):
    return torch.tensor(_loss(video, text, temperature).item(), dtype=video.dtype)


def loss_detached(video, text, temperature):
    return _loss(video, text, temperature).detach()


def loss_fresh_leaf(video, text, temperature):
    return torch.tensor(_loss(video, text, temperature).item(), dtype=video.dtype, requires_grad=True)


def loss_fresh_leaf_times_one(video, text, temperature):
    return loss_fresh_leaf(video, text, temperature) * 1


def loss_under_no_grad(video, text, temperature):
    with torch.no_grad():
        return _loss(video, text, temperature)


def loss_requires_grad_switched_off(video, text, temperature):
    video.requires_grad_(False)
    return _loss(video, text, temperature)


CUT = [loss_item, loss_detached, loss_fresh_leaf, loss_fresh_leaf_times_one, loss_under_no_grad,
       loss_requires_grad_switched_off]


@pytest.mark.parametrize("fn", CUT, ids=[f.__name__ for f in CUT])
def test_a_loss_cut_from_the_graph_earns_nothing_and_is_told_why(fn):
    outcome = evaluate("ex07.symmetric_info_nce", fn)
    assert outcome.score == 0 and "no gradient path" in outcome.feedback, outcome.feedback


def loss_normalised_in_place(video, text, temperature):
    video /= video.norm(dim=1, keepdim=True)  # on a leaf that requires grad: torch refuses
    return _loss(video, text, temperature)


def loss_normalised_in_place_under_no_grad(video, text, temperature):
    with torch.no_grad():
        video /= video.norm(dim=1, keepdim=True)
        text /= text.norm(dim=1, keepdim=True)
    return _loss(video, text, temperature)


def loss_normalised_in_place_through_data(video, text, temperature):
    video.data /= video.data.norm(dim=1, keepdim=True)
    return _loss(video, text, temperature)


INPLACE = [loss_normalised_in_place, loss_normalised_in_place_under_no_grad, loss_normalised_in_place_through_data]


@pytest.mark.parametrize("fn", INPLACE, ids=[f.__name__ for f in INPLACE])
def test_changing_the_inputs_in_place_earns_nothing_and_is_told_why(fn):
    outcome = evaluate("ex07.symmetric_info_nce", fn)
    assert outcome.score == 0 and "in place" in outcome.feedback, outcome.feedback


def loss_text_norm_detached(video, text, temperature):
    v = video / video.norm(dim=1, keepdim=True)
    t = text / text.norm(dim=1, keepdim=True).detach()  # the value is right, the gradient is not
    s = v @ t.T / temperature
    target = torch.arange(s.shape[0])
    return (F.cross_entropy(s, target) + F.cross_entropy(s.T, target)) / 2


def test_the_right_value_with_the_wrong_gradient_earns_nothing():
    outcome = evaluate("ex07.symmetric_info_nce", loss_text_norm_detached)
    assert outcome.score == 0 and "gradient with respect to input 2" in outcome.feedback, outcome.feedback


def test_an_honest_loss_earns_full_marks_even_with_grad_switched_off_globally():
    assert evaluate("ex07.symmetric_info_nce", _loss).score == 4
    with torch.no_grad():  # a notebook's global setting is not the answer's
        assert evaluate("ex07.symmetric_info_nce", _loss).score == 4


def test_only_the_loss_question_asks_for_a_gradient():
    from vidlearn.grading.questions import REGISTRY

    get_question("ex07.symmetric_info_nce")
    assert [q.id for q in REGISTRY.values() if getattr(q, "differentiable", False)] == ["ex07.symmetric_info_nce"]
    for c in get_question("ex07.info_nce_logit_gradient").cases():
        assert not any(isinstance(a, torch.Tensor) and a.requires_grad for a in c.args)


def test_misconceptions_are_still_recognised_when_played_without_a_graph():
    # a stand-in answers with memorised tensors (no graph): the mistake's value is still what is recognised
    q = get_question("ex07.symmetric_info_nce")
    m = next(m for m in q.misconceptions if m.name == "no temperature")
    outcome = evaluate(q.id, stand_in(m.fn, q.cases()))
    assert outcome.misconception == "no temperature" and outcome.score == 0


SANDBOXED = {"honest": ("    return loss\n", 4.0, "all 4 cases pass"),
             "detached": ("    return loss.detach()\n", 0.0, "no gradient path"),
             "item": ("    return torch.tensor(loss.item(), dtype=video.dtype)\n", 0.0, "no gradient path"),
             "inplace": ("    return loss\n", 0.0, "in place")}


def test_the_graders_sandbox_checks_the_gradient_too(tmp_path):
    """``vidlearn grade`` (bubblewrap when there is one, else limits only): the gradient is computed in the
    worker, where the student's code runs, and scored like check()."""
    from pathlib import Path

    from vidlearn.grading.gradebook import grade_submissions
    from vidlearn.grading.sandbox import bwrap_available

    src = (Path(__file__).resolve().parents[2] / "exercises" / "ex07_contrastive.py").read_text()
    todo = "    # YOUR CODE HERE\n    raise NotImplementedError()\n"
    body = ("    v = video / video.norm(dim=1, keepdim=True)\n    t = text / text.norm(dim=1, keepdim=True)\n"
            "    s = v @ t.T / temperature\n    target = torch.arange(s.shape[0])\n"
            "    loss = (F.cross_entropy(s, target) + F.cross_entropy(s.T, target)) / 2\n")
    paths = []
    for name, (ret, _, _) in SANDBOXED.items():
        pre = "    with torch.no_grad():\n        video /= video.norm(dim=1, keepdim=True)\n" if name == "inplace" else ""
        p = tmp_path / f"ex07_{name}.py"
        p.write_text(src.replace(todo, pre + body + ret, 1))
        paths.append(p)
    reports = grade_submissions(paths, key="a teacher's key", sandbox=bwrap_available())
    for report in reports:
        name = Path(report.submission).stem.removeprefix("ex07_")
        (o,) = [o for o in report.outcomes if o.question == "ex07.symmetric_info_nce"]
        assert o.score == SANDBOXED[name][1] and SANDBOXED[name][2] in o.feedback, (name, o.feedback, report.notes)
