"""Exercises: generated from solutions, solutions earn full marks, untouched exercises zero,
and every known misconception is recognised with its hint, in check() and in the gradebook.

A known mistake is played by a *stand-in*: a function that returns, for each test input, what the
misconception's function returns for it (computed beforehand, here). The misconception functions
themselves live in the question bank, which the grader's sandbox does not have and whose use
``check()`` reports as forbidden; a stand-in is what a student's own wrong code would look like.
"""

import csv
import textwrap
from pathlib import Path

import jupytext
import nbformat
import pytest

from vidlearn.grading import case
from vidlearn.grading.feedback import check, evaluate, hint
from vidlearn.grading.gradebook import grade_submissions, write_gradebook
from standins import stand_in, stand_in_code
from vidlearn.grading.notebooks import build_exercises, strip_solutions
from vidlearn.grading.questions import exercises, get_question, questions_for
from vidlearn.grading.sandbox import Limits
from vidlearn.grading.submissions import read_submission

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("ex*.py"))
EXERCISES = sorted((ROOT / "exercises").glob("ex*.py"))
LIMITS = Limits(timeout=20, memory_mb=2048)
KEY = "test-exercises-grading-key"  # the grader's cases are drawn from it; check() uses the public ones
# questions whose solution calls another question's function
USES = {"ex01.softmax": {"ex01.scaled_dot_product_attention"}, "ex03.causal_mask": {"ex03.causal_attention"},
        "ex05.same_frame_mask": {"ex05.factorised_dot_product"},
        "ex05.same_location_mask": {"ex05.factorised_dot_product"}}

ALL_MISCONCEPTIONS = [(q.id, m) for ex in exercises() for q in questions_for(ex) for m in q.misconceptions]
FUNCTION_MISCONCEPTIONS = [(qid, m) for qid, m in ALL_MISCONCEPTIONS if m.fn is not None]
DERIVATION_MISCONCEPTIONS = [(qid, m) for qid, m in ALL_MISCONCEPTIONS if m.expr is not None]


def test_committed_exercises_are_what_build_exercises_writes():
    stale = build_exercises(ROOT / "solutions", ROOT / "exercises", check_only=True)
    assert stale == [], f"run `vidlearn build-exercises`: {stale}"
    assert [p.name for p in SOLUTIONS] == [p.name for p in EXERCISES]


def test_exercises_contain_no_solution_and_know_their_exercise():
    for path in EXERCISES:
        text = path.read_text()
        assert "BEGIN SOLUTION" not in text and "raise NotImplementedError()" in text
        assert jupytext.read(path).metadata["vidlearn"]["exercise"] == path.name[:4]


def test_strip_solutions_keeps_indentation_and_rejects_broken_markers():
    src = "def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n\ny = 1"
    assert strip_solutions(src) == "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n\ny = 1"
    for broken in ("### BEGIN SOLUTION\nx", "### END SOLUTION", "### BEGIN SOLUTION\n### BEGIN SOLUTION"):
        with pytest.raises(ValueError):
            strip_solutions(broken)


def test_every_exercise_has_three_misconceptions_and_every_question_a_grader_id():
    for ex in exercises():
        qs = questions_for(ex)
        assert sum(len(q.misconceptions) for q in qs) >= 3
        for q in qs:
            assert q.id.startswith(ex + ".")
            assert all(m.hints for m in q.misconceptions)


# ------------------------------------------------------------------ the grader on whole notebooks


def _ipynb(src: Path, dest: Path) -> Path:
    jupytext.write(jupytext.read(src), dest, fmt="ipynb")
    return dest


def _submission(tmp: Path, name: str, solution: Path, replace: str, new_code: str) -> Path:
    """A copy of a solution notebook whose function ``replace`` is redefined by ``new_code``
    in a new cell right after its definition (as a student's later cell would)."""
    nb = jupytext.read(solution)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and f"def {replace}(" in cell.source:
            nb.cells.insert(i + 1, nbformat.v4.new_code_cell(new_code))
            break
    else:
        raise AssertionError(f"{replace} not found in {solution}")
    path = tmp / name
    jupytext.write(nb, path, fmt="py:percent")
    return path


def _misconception_code(qid: str, m) -> str:
    q = get_question(qid)
    if m.fn is not None:
        return stand_in_code(q.name, m.fn, q.cases(KEY))
    return f"def {q.name}():\n    return [({m.expr!r}, 'my answer')]"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """One sandboxed batch: solutions and exercises (.py and .ipynb) and one notebook per misconception."""
    tmp = tmp_path_factory.mktemp("submissions")
    paths = list(SOLUTIONS) + list(EXERCISES)
    saved = {src: _ipynb(src, tmp / f"{src.parent.name}_{src.stem}_saved.ipynb") for src in SOLUTIONS[:1] + EXERCISES[:1]}
    paths += list(saved.values())
    wanted = {}
    for k, (qid, m) in enumerate(FUNCTION_MISCONCEPTIONS + DERIVATION_MISCONCEPTIONS):
        ex = qid.split(".")[0]
        solution = next(p for p in SOLUTIONS if p.name.startswith(ex))
        q = get_question(qid)
        code = _misconception_code(qid, m)
        path = _submission(tmp, f"{ex}_misconception_{k:02d}.py", solution, q.name, code)
        paths.append(path)
        wanted[str(path)] = (qid, m)
    # per_file=False: the stand-ins are made for the key's inputs, which must not depend on the files
    reports = grade_submissions(paths, limits=LIMITS, jobs=2, key=KEY, per_file=False)
    out = tmp / "gradebook.csv"
    write_gradebook(reports, out)
    rows = list(csv.DictReader(out.open()))
    return {r.submission: r for r in reports}, rows, wanted, saved


def test_solutions_get_full_marks(graded):
    reports, *_ = graded
    for path in SOLUTIONS:
        r = reports[str(path)]
        assert r.score == r.max_score > 0, [(o.question, o.feedback) for o in r.outcomes]


def test_untouched_exercises_get_zero(graded):
    reports, *_ = graded
    for path in EXERCISES:
        r = reports[str(path)]
        assert r.score == 0 and r.max_score > 0
        assert all("not answered yet" in o.feedback for o in r.outcomes)


def test_saved_ipynb_grades_like_the_py(graded):
    reports, _, _, saved = graded
    assert len(saved) == 2
    for src, ipynb in saved.items():
        as_py, as_ipynb = reports[str(src)], reports[str(ipynb)]
        assert as_ipynb.exercise == as_py.exercise
        assert [(o.question, o.score) for o in as_ipynb.outcomes] == [(o.question, o.score) for o in as_py.outcomes]


def test_gradebook_has_one_row_per_submission_and_question(graded):
    reports, rows, *_ = graded
    assert len(rows) == sum(len(r.outcomes) for r in reports.values())
    assert set(rows[0]) >= {"submission", "question", "score", "max_score", "feedback"}
    assert all(row["question"].startswith(row["exercise"] + ".") for row in rows)


@pytest.mark.parametrize("qid,m", FUNCTION_MISCONCEPTIONS + DERIVATION_MISCONCEPTIONS,
                         ids=[f"{q}:{m.name}" for q, m in FUNCTION_MISCONCEPTIONS + DERIVATION_MISCONCEPTIONS])
def test_misconception_is_recognised_in_the_gradebook(graded, qid, m):
    _, rows, wanted, _ = graded
    path = next(p for p, (q, mm) in wanted.items() if q == qid and mm is m)
    row = next(r for r in rows if r["submission"] == path and r["question"] == qid)
    assert float(row["score"]) < float(row["max_score"])
    assert row["misconception"] == m.name
    assert m.hints[0] in row["feedback"]
    # the other questions of the same notebook are untouched by the mistake (except those whose
    # reference solution calls the replaced function: attention uses the notebook's softmax)
    affected = {qid} | USES.get(qid, set())
    others = [r for r in rows if r["submission"] == path and r["question"] not in affected]
    assert others
    assert all(r["score"] == r["max_score"] for r in others)


# ------------------------------------------------------------------ in the notebook


@pytest.mark.parametrize("qid,m", FUNCTION_MISCONCEPTIONS, ids=[f"{q}:{m.name}" for q, m in FUNCTION_MISCONCEPTIONS])
def test_misconception_is_recognised_by_check(qid, m):
    outcome = evaluate(qid, stand_in(m.fn, get_question(qid).cases()))
    assert outcome.score < outcome.max_score
    assert outcome.misconception == m.name
    assert m.hints[0] in outcome.feedback


@pytest.mark.parametrize("qid,m", DERIVATION_MISCONCEPTIONS, ids=[f"{q}:{m.name}" for q, m in DERIVATION_MISCONCEPTIONS])
def test_derivation_misconception_is_recognised_by_check(qid, m):
    outcome = evaluate(qid, lambda: [(m.expr, "my answer")])
    assert outcome.score == 0 and outcome.misconception == m.name and m.hints[0] in outcome.feedback


def test_hints_come_in_tiers(capsys):
    from vidlearn.grading.ex01 import _attn_divide_by_dk

    q = get_question("ex01.scaled_dot_product_attention")
    m = next(m for m in q.misconceptions if m.name == "divides by d_k")
    check("ex01.scaled_dot_product_attention", stand_in(_attn_divide_by_dk, q.cases()))
    first = capsys.readouterr().out
    assert "❌" in first and m.hints[0] in first and m.hints[1] not in first
    assert 'case("ex01.scaled_dot_product_attention", 1)' in first
    hint("ex01.scaled_dot_product_attention")
    assert m.hints[1] in capsys.readouterr().out
    hint("ex01.scaled_dot_product_attention")
    assert "last hint" in capsys.readouterr().out


def _softmax(x, dim=-1):  # a student's own, right
    m = x.amax(dim=dim, keepdim=True)
    e = (x - m.masked_fill(m == float("-inf"), 0)).exp()
    s = e.sum(dim=dim, keepdim=True)
    return e / s.masked_fill(s == 0, 1)


def test_check_passes_quietly_and_strict_mode_raises(capsys, monkeypatch):
    check("ex01.softmax", _softmax)
    assert "✅" in capsys.readouterr().out
    monkeypatch.setenv("VIDLEARN_CHECK_STRICT", "1")
    with pytest.raises(AssertionError, match="ex01.softmax"):
        check("ex01.softmax", lambda x, dim=-1: x)


def test_failure_shows_a_reproducible_case():
    from vidlearn.grading.ex01 import _softmax_no_shift

    outcome = evaluate("ex01.softmax", stand_in(_softmax_no_shift, get_question("ex01.softmax").cases()))
    args, kwargs = case("ex01.softmax", outcome.failed_case + 1)
    assert f"case {outcome.failed_case + 1} (large logits)" in outcome.feedback
    assert args[0].shape == (4, 6) and kwargs == {}


def test_check_needs_a_function():
    outcome = evaluate("ex01.softmax", 42)
    assert outcome.score == 0 and "expected the function softmax" in outcome.feedback


def test_read_submission_falls_back_to_the_file_name(tmp_path):
    nb = jupytext.read(EXERCISES[0])
    del nb.metadata["vidlearn"]
    renamed = tmp_path / "alice_ex01_final.py"
    jupytext.write(nb, renamed, fmt="py:percent")
    assert read_submission(renamed, exercises()).exercise == "ex01"
    anonymous = tmp_path / "homework.py"
    jupytext.write(nb, anonymous, fmt="py:percent")
    assert "which exercise" in read_submission(anonymous, exercises()).error


def test_metadata_wins_over_a_misleading_name(tmp_path):
    renamed = tmp_path / "ex02_but_really_ex01.py"
    renamed.write_text(EXERCISES[0].read_text())
    assert read_submission(renamed, exercises()).exercise == "ex01"


def test_unreadable_notebook_is_reported(tmp_path):
    bad = tmp_path / "ex01_broken.ipynb"
    bad.write_text(textwrap.dedent("{ this is not json"))
    sub = read_submission(bad, exercises())
    assert sub.exercise == "ex01" and sub.error.startswith("not a readable notebook")


def test_a_derivation_must_show_its_work():
    jump = evaluate("ex01.var_qk", lambda: [("d_k", "trust me")])
    assert jump.score == 0 and "show your work" in jump.feedback
    # a step that only rewrites the one before (+ 0, 1*, a new order) does not count as work
    padded = evaluate("ex01.var_qk", lambda: [("d_k", "sum it"), ("d_k + 0", "tidy")])
    assert padded.score == 0 and "show your work" in padded.feedback and "only padded" in padded.feedback
    stall = evaluate("ex01.var_qk", lambda: [("Sum(1, (i, 1, d_k))", "diagonal"), ("1*Sum(1, (i, 1, d_k)) + 0", "again"),
                                             ("d_k", "count")])
    assert stall.score == 2  # two steps of work, and the repeat costs nothing


def test_a_wrong_last_step_earns_partial_credit_for_the_milestones_before_it():
    half = evaluate("ex01.var_qk", lambda: [("Sum(1, (i, 1, d_k))", "diagonal"), ("d_k**2", "count")])
    assert half.score == 1.0 and "Partial credit 1/2" in half.feedback
    skipped = evaluate("ex01.var_qk", lambda: [("Sum(Sum(KroneckerDelta(i, j), (j, 1, d_k)), (i, 1, d_k))", "δ² = δ"),
                                               ("d_k", "count")])
    assert skipped.score == 0.0 and "never passes through" in skipped.feedback  # nothing reached before the target


MILESTONE_CHAINS = [
    # (question, a correct chain that jumps over the milestone, a chain that passes it and then errs)
    ("ex02.pe_dot_product",
     [("Sum(sin(w*t)*(sin(w*t)*cos(w*k) + cos(w*t)*sin(w*k)) + cos(w*t)*(cos(w*t)*cos(w*k) - sin(w*t)*sin(w*k)), "
       "(i, 0, d/2 - 1))".replace("w", "base**(-2*i/d)"), "angle addition"),
      ("Sum(cos(base**(-2*i/d)*k), (i, 0, d/2 - 1))", "sin² + cos² = 1")],
     [("Sum(cos(base**(-2*i/d)*(t + k) - base**(-2*i/d)*t), (i, 0, d/2 - 1))", "cos(a - b)"),
      ("Sum(cos(base**(-2*i/d)*(2*t + k)), (i, 0, d/2 - 1))", "simplify")]),
    ("ex03.causal_pairs",
     [("T**2/2 + T/2", "count"), ("T*(T + 1)/2", "factor")],
     [("Sum(t, (t, 1, T))", "inner sum"), ("T**2/2", "arithmetic series")]),
    ("ex04.inflation_static",
     [("2*w*x/2", "sum"), ("w*x", "cancel")],
     [("t*(w/t*x)", "equal terms"), ("t*w*x", "cancel")]),
    ("ex07.all_equal_loss",
     [("(-log(exp(c)/(B*exp(c))) - log(exp(c)/(B*exp(c))))/2", "the sums"), ("log(B)", "cancel, log rule")],
     [("(-log(1/B) - log(1/B))/2", "the sums"), ("log(B)/2", "simplify")]),
]


@pytest.mark.parametrize("qid, jump, wrong_end", MILESTONE_CHAINS, ids=[m[0] for m in MILESTONE_CHAINS])
def test_milestones_must_be_passed_and_earn_partial_credit(qid, jump, wrong_end):
    skipped = evaluate(qid, lambda: jump)
    assert skipped.score == 0.0 and "never passes through" in skipped.feedback, skipped.feedback
    half = evaluate(qid, lambda: wrong_end)
    assert half.score == 1.0 and "Partial credit 1/2" in half.feedback, half.feedback


PADDED = [
    # the hostile review's padding: a milestone's names carried by a term that is zero or a sum of
    # one term, and steps that only add zero, multiply by one or take a number out and back in
    ("ex01.var_qk", [("d_k*Sum(1, (i, 1, 1))", "a"), ("d_k", "b")]),
    ("ex01.var_qk", [("d_k + 0*Sum(1, (i, 1, d_k))", "a"), ("d_k", "b")]),
    ("ex03.causal_pairs", [("T*(T + 1)/2 + 0*Sum(t, (t, 1, T))", "a"), ("T*(T + 1)/2", "b")]),
    ("ex02.pe_dot_product", [("Sum(cos(base**(-2*i/d)*k), (i, 0, d/2 - 1))", "a"),
                             ("2*Sum(cos(base**(-2*i/d)*k), (i, 0, d/2 - 1))/2", "b")]),
    ("ex06.fusion_attention_cost", [("2*n_x**2*d + 2*n_v**2*d + 2*n_x*n_v*d + 2*n_v*n_x*d + 1 - 1", "a"),
                                    ("2*n_x**2*d + 2*n_v**2*d + 2*n_x*n_v*d + 2*n_v*n_x*d", "b")]),
    ("ex05.model3_attention_macs", [("2*d*n_t*N*(N + n_t)*N/N", "a"), ("2*d*n_t*N*(N + n_t)", "b")]),
    ("ex05.model3_attention_macs", [("2*d*n_t*N*(N + n_t)*(n_t/n_t)**2", "a"), ("2*d*n_t*N*(N + n_t)", "b")]),
    ("ex03.causal_pairs", [("T*(T + 1)/2 + Sum(0, (t, 1, T))", "a"), ("T*(T + 1)/2", "b")]),
    ("ex03.causal_pairs", [("T**2/2 + T/2 + Sum(t - t, (t, 1, T))", "a"), ("T*(T + 1)/2", "b")]),
    ("ex01.var_qk", [("d_k + Sum(0, (i, 1, d_k))", "a"), ("d_k", "b")]),
    ("ex07.all_equal_loss", [("log(B)*Sum(1, (i, 1, 1))", "a"), ("log(B)", "b")]),
]


@pytest.mark.parametrize("qid, steps", PADDED, ids=[f"{q}-{i}" for i, (q, _) in enumerate(PADDED)])
def test_padded_chains_earn_nothing(qid, steps):
    outcome = evaluate(qid, lambda: steps)
    assert outcome.score == 0.0, outcome.feedback
    assert "show your work" in outcome.feedback or "never passes through" in outcome.feedback, outcome.feedback


def test_gradebook_cells_cannot_hold_spreadsheet_formulas(tmp_path):
    from vidlearn.grading.gradebook import SubmissionReport
    from vidlearn.grading.questions import Outcome

    report = SubmissionReport("=cmd.csv", "ex01", [Outcome("ex01.softmax", 0, 2, '=HYPERLINK("http://x")')])
    write_gradebook([report], tmp_path / "g.csv")
    row = next(csv.DictReader((tmp_path / "g.csv").open()))
    assert row["feedback"].startswith("'=") and row["submission"].startswith("'=")
