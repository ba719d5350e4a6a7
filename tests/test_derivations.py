"""Every course derivation passes, and corrupting any one step fails exactly at that step."""

import pytest
import sympy as sp

from vidlearn import derivations

NAMES = sorted(derivations.REGISTRY)
CASES = [(name, i) for name in NAMES for i in range(1, len(derivations.get(name).steps) + 1)]


@pytest.mark.parametrize("name", NAMES)
def test_derivation_passes(name):
    result = derivations.get(name).check()
    assert result.ok, result.message
    assert result.failed_step is None


def _is_zero(e) -> bool:
    return all(sp.simplify(x) == 0 for x in (e if isinstance(e, sp.MatrixBase) else [e]))


def _corruptions(e):
    """Plausible wrong versions of a step: an extra constant term, and a wrong factor."""
    one = sp.ones(*e.shape) if isinstance(e, sp.MatrixBase) else sp.Integer(1)
    yield "extra term", e + one / 7
    if not _is_zero(e):  # scaling zero leaves it (correctly) zero
        yield "wrong factor", e * sp.Rational(3, 2)


@pytest.mark.parametrize("name,index", CASES, ids=[f"{n}-step{i}" for n, i in CASES])
def test_corrupting_a_step_fails_exactly_there(name, index):
    d = derivations.get(name)
    expr = d.steps[index - 1][0]
    for label, bad in _corruptions(expr):
        result = d.replace_step(index, bad).check()
        assert not result.ok, f"{label} at step {index} went unnoticed"
        assert result.failed_step == index, (label, result.message)
        assert f"step {index}" in result.message


def test_unknown_derivation_name_is_a_clear_error():
    with pytest.raises(KeyError, match="no derivation"):
        derivations.get("ch99.nothing")


def test_each_call_builds_a_fresh_derivation():
    a, b = derivations.get(NAMES[0]), derivations.get(NAMES[0])
    assert a is not b
    a.step(a.expressions[-1], "repeat")
    assert len(b.steps) == len(a.steps) - 1
