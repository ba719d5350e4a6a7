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
