"""Deciding ``a == b`` by evaluation, soundly: exactly where the values are rational, at high
precision otherwise, at points chosen to expose the ways a false step hides.

* **Exact numbers.** Decimals are read as exact fractions, points are exact rationals, so a
  polynomial or rational step is decided by exact arithmetic at each point.
* **High precision.** Otherwise the difference is evaluated with sympy's adaptive ``evalf`` at
  :data:`DIGITS` significant digits, which also reports how many bits of the result it is sure of:
  a difference it is sure is nonzero refutes the step at any magnitude (``x`` -> ``x + 10**-10``);
  one with no sure digits is zero to that precision.
* **Points.** Magnitudes from 1e-6 to 1e6 with both signs, complex points for symbols not declared
  real, integers from 0 to 10**6 for integer symbols (at most :data:`BOUND_CAP` for the bounds of sums
  and products), and points at and around the thresholds of ``floor``, ``ceiling``, ``Abs``,
  ``sign``, ``Min``, ``Max``, ``Piecewise`` and ``KroneckerDelta`` found in the expressions.
* **Bounded work.** Every evaluation and substitution goes through :func:`evaluated`, which refuses
  exact numbers too large to compute (``(x - x + 2)**10**10``) before sympy starts on them.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from typing import Any, Callable

import sympy
from mpmath.libmp.libhyper import NoConvergence
from sympy.core.evalf import evalf as _evalf

from vidlearn.derive.bounds import CheckTimeout

__all__ = ["DIGITS", "BOUND_CAP", "TooLarge", "evaluated", "light", "compare_numbers", "sample_points", "approx_pair",
           "extreme_constant",
           "Verdict", "numeric_equal", "entries", "symbols_in", "bound_symbols"]

DIGITS = 50
_PREC = 200  # bits, about 60 digits: a margin over DIGITS
BOUND_CAP = 300  # the largest value a sum's or product's bound is sampled at
NESTED_BOUND_CAP = 20  # the same, where sums are nested (20 x 20 terms)
_MAX_DIGITS = 20000  # exact numbers larger than this many digits are refused
_MAX_TERMS = 5000  # products with numeric bounds of more factors are refused


class TooLarge(ValueError):
    """An exact number or a sum too large to compute, refused before sympy starts on it."""


def entries(e) -> list:
    return list(e) if isinstance(e, sympy.MatrixBase) else [e]


def symbols_in(*exprs) -> list[sympy.Symbol]:
    out: set = set()
    for e in exprs:
        for x in entries(e):
            out |= getattr(x, "free_symbols", set())
    return sorted(out, key=lambda s: s.name)


def bound_symbols(*exprs) -> set[sympy.Symbol]:
    """Free symbols that appear in the limits of a Sum or Product."""
    out = set()
    for e in exprs:
        for x in entries(e):
            for node in sympy.preorder_traversal(x):
                if isinstance(node, (sympy.Sum, sympy.Product)):
                    for lim in node.limits:
                        for bound in lim[1:]:
                            out |= bound.free_symbols
    return out


def _size_of_power(base, exp) -> float | None:
    """Estimated decimal digits of an exact ``base**exp`` (None when not an exact number)."""
    if not (isinstance(base, sympy.Rational) and isinstance(exp, sympy.Rational)):
        return None
    if base in (0, 1, -1):
        return 0.0
    bits = max(abs(base.p).bit_length(), base.q.bit_length())
    return float(abs(exp)) * bits * 0.302


def _short(e, limit: int = 40) -> str:
    if isinstance(e, sympy.Integer) and abs(e) > 10**limit:
        return f"(a {len(str(abs(e)))}-digit number)"
    text = sympy.sstr(e)
    return text if len(text) <= limit else text[:limit] + "..."


def _guard(func, args) -> None:
    if func is sympy.exp and len(args) == 1:
        # sympy turns exp(c*log(b) + ...) into b**c*exp(...): size those powers before they are computed
        for term in sympy.Add.make_args(args[0]):
            logs = [f for f in sympy.Mul.make_args(term) if isinstance(f, sympy.log)]
            if len(logs) == 1:
                coeff = sympy.Mul(*[f for f in sympy.Mul.make_args(term) if not isinstance(f, sympy.log)])
                _guard(sympy.Pow, (logs[0].args[0], coeff))
    if func is sympy.Pow and len(args) == 2:
        digits = _size_of_power(*args)
        if digits is not None and digits > _MAX_DIGITS:
            raise TooLarge(f"{_short(args[0])}**{_short(args[1])} has about {digits:.3g} digits")
    elif func in (sympy.factorial, sympy.factorial2, sympy.subfactorial, sympy.gamma, sympy.RisingFactorial,
                  sympy.FallingFactorial, sympy.binomial):
        for a in args:
            if isinstance(a, sympy.Number) and a.is_finite and abs(a) > 2000:
                raise TooLarge(f"{func.__name__} of {_short(a)}")
    elif func in (sympy.Product, sympy.Sum):
        for lim in args[1:]:
            lo, hi = lim[1], lim[2]
            if isinstance(lo, sympy.Number) and isinstance(hi, sympy.Number) and lo.is_finite and hi.is_finite:
                if hi - lo > _MAX_TERMS and func is sympy.Product:
                    raise TooLarge(f"a product of {sympy.sstr(hi - lo + 1)} factors")


def evaluated(e, point: dict | None = None):
    """``e`` rebuilt bottom-up with sympy's evaluation on (and ``point``'s values substituted), every
    exact power, factorial and product sized before it is computed.

    Steps are stored as written, for display; checking works on this tidied copy.
    """
    if isinstance(e, sympy.MatrixBase):
        return e.applyfunc(lambda x: evaluated(x, point))
    if point and isinstance(e, sympy.Symbol) and e in point:
        return point[e]
    if not isinstance(e, sympy.Basic) or e.is_Atom or not e.args:
        return e
    if point and isinstance(e, (sympy.Sum, sympy.Product)):
        # the index is bound: only the limits and the other symbols take the point's values
        inner = {k: v for k, v in point.items() if all(k != lim[0] for lim in e.limits)}
        args = [evaluated(e.args[0], inner)] + [sympy.Tuple(lim[0], *(evaluated(b, point) for b in lim[1:]))
                                                 for lim in e.limits]
    else:
        args = [evaluated(a, point) for a in e.args]
    _guard(e.func, args)
    return e.func(*args)


def derivatives_done(e):
    """Unevaluated derivatives carried out (only those: a full ``doit`` may try to sum series forever)."""
    if isinstance(e, sympy.MatrixBase):
        return e.applyfunc(derivatives_done)
    if not isinstance(e, sympy.Basic) or not e.has(sympy.Derivative):
        return e
    return e.replace(lambda x: isinstance(x, sympy.Derivative), lambda x: x.doit())


def prepared(e):
    """What the checker compares: :func:`evaluated`, with derivatives carried out."""
    return derivatives_done(evaluated(e))


def carried_out(e):
    """Sums, products and derivatives carried out (bottom-up, each sized first)."""
    if isinstance(e, sympy.MatrixBase):
        return e.applyfunc(carried_out)
    if not isinstance(e, sympy.Basic) or e.is_Atom or not e.args:
        return e
    args = [carried_out(a) for a in e.args]
    _guard(e.func, args)
    node = e.func(*args)
    if isinstance(node, (sympy.Sum, sympy.Product, sympy.Derivative)):
        node = node.doit(deep=False)
    if isinstance(node, (sympy.Sum, sympy.Product)) and len(node.limits) == 1:
        node = _term_by_term(node)
    return node


def _term_by_term(node):
    """A sum or product with number limits that sympy left as it was (``Sum(Piecewise(...), (i, 1, 153))``),
    added or multiplied out term by term, exactly, when it has at most :data:`_MAX_TERMS` terms."""
    (k, lo, hi), body = node.limits[0], node.args[0]
    if not (isinstance(lo, sympy.Integer) and isinstance(hi, sympy.Integer)) or hi - lo > _MAX_TERMS:
        return node
    if body.free_symbols - {k}:
        return node
    terms = [body.xreplace({k: sympy.Integer(v)}) for v in range(int(lo), int(hi) + 1)]
    return sympy.Add(*terms) if isinstance(node, sympy.Sum) else sympy.Mul(*terms)


def light(e, cancel: bool = True):
    """A light normal form: what is left when the neutral padding a step can carry is removed.

    Nesting flattened; terms and factors sorted; numbers folded (``2*x/2``, ``x + 1 - 1``); a term
    and its negative cancelled (``x - x``), a factor and its inverse (``x*y/x``); zero factors and
    terms, ``1*``, ``**1`` dropped; a part with no symbols that is a rational number replaced by it
    (``exp(0)``, ``Sum(1, (i, 1, 1))``). Nothing else is computed: ``N*N`` stays apart from ``N**2``
    and nothing is expanded or factored. Two steps with the same light form differ only by padding.
    ``cancel=False`` keeps factors that cancel (``t*(w/t)`` keeps its ``t``): the shape a milestone
    looks for, without the padding (terms that cancel, ``Sum(t - t, ...)``, still go).
    """
    if isinstance(e, sympy.MatrixBase):
        return sympy.ImmutableMatrix(e.applyfunc(lambda x: light(x, cancel)))
    if not isinstance(e, sympy.Basic) or e.is_Atom or not e.args:
        return e
    if not e.free_symbols and not isinstance(e, (sympy.Tuple,)):
        try:
            v = carried_out(evaluated(e))
            if isinstance(v, sympy.Rational):
                return v
        except (TooLarge, ArithmeticError, ValueError, TypeError, AttributeError, NotImplementedError,
                RecursionError):
            pass
    args = [light(a, cancel) for a in e.args]
    if isinstance(e, sympy.Add):
        return _light_add(args)
    if isinstance(e, sympy.Mul):
        return _light_mul(args, cancel)
    if isinstance(e, sympy.Pow):
        if args[1] == 1:
            return args[0]
        if args[1] == 0 or args[0] == 1:
            return sympy.Integer(1)
    if isinstance(e, sympy.Sum) and args[0] == 0 or isinstance(e, sympy.Product) and args[0] == 1:
        return sympy.Integer(0 if isinstance(e, sympy.Sum) else 1)  # Sum(0, ...), Sum(t - t, ...)
    with sympy.evaluate(False):
        return e.func(*args)


def _light_add(args):
    flat = []
    for a in args:
        flat.extend(a.args if isinstance(a, sympy.Add) else [a])
    number = sum((a for a in flat if isinstance(a, sympy.Rational)), sympy.Integer(0))
    terms = [a for a in flat if not isinstance(a, sympy.Rational)]
    keyed = [(_negated(t), t) for t in terms]
    kept, used = [], set()
    for i, (neg, t) in enumerate(keyed):
        if i in used:
            continue
        j = next((j for j in range(i + 1, len(keyed)) if j not in used and keyed[j][1] == neg), None)
        if j is None:
            kept.append(t)
        else:
            used.add(j)
    return _light_node(sympy.Add, kept, number)


def _negated(t):
    """``-t`` in the light form (``-1*x`` for ``x``, ``x`` for ``-1*x``)."""
    return _light_mul([sympy.Integer(-1), t])


def _light_mul(args, cancel: bool = True):
    flat = []
    for a in args:
        if isinstance(a, sympy.Pow) and isinstance(a.args[0], sympy.Mul) and isinstance(a.args[1], sympy.Integer):
            a = sympy.Mul(*[sympy.Pow(f, a.args[1], evaluate=False) for f in a.args[0].args], evaluate=False)
        flat.extend(a.args if isinstance(a, sympy.Mul) else [a])
    number = sympy.Integer(1)
    factors = []
    for a in flat:
        if isinstance(a, sympy.Rational):
            number *= a
        else:
            factors.append(a)
    if number == 0:
        return sympy.Integer(0)
    if not cancel:
        return _light_node(sympy.Mul, factors, number)
    # a base whose powers multiply to 1 goes (t**2/(t*t)), then a factor and its inverse in pairs
    # (x*y/x, N*N/N); equal factors are not merged (N*N is not N**2)
    totals: dict = {}
    for a in factors:
        base, exp = _base_exp(a)
        known = totals.get(base, 0)
        totals[base] = known + exp if known is not None and isinstance(exp, sympy.Rational) else None
    kept: list = []
    for a in factors:
        base, exp = _base_exp(a)
        if totals.get(base) == 0:
            continue
        partner = next((i for i, k in enumerate(kept) if _base_exp(k) == (base, -exp)), None)
        if partner is None:
            kept.append(a)
        else:
            del kept[partner]
    return _light_node(sympy.Mul, kept, number)


def _base_exp(f):
    return (f.args[0], f.args[1]) if isinstance(f, sympy.Pow) else (f, sympy.Integer(1))


def _light_node(cls, parts: list, number):
    """``cls`` (Add or Mul) of the sorted ``parts`` and the folded ``number``, unevaluated."""
    unit = sympy.Integer(0 if cls is sympy.Add else 1)
    if number != unit:
        parts = parts + [number]
    if not parts:
        return unit
    if len(parts) == 1:
        return parts[0]
    return cls(*sorted(parts, key=sympy.default_sort_key), evaluate=False)


# --------------------------------------------------------------------------- numbers


def _exact(v) -> tuple | None:
    """``(re, im)`` of a rational or a Gaussian rational (a + b*I with a, b rational), else None."""
    if isinstance(v, sympy.Rational):
        return v, sympy.Integer(0)
    if v.is_number and v.has(sympy.I):
        re_, im_ = v.as_real_imag()
        if isinstance(re_, sympy.Rational) and isinstance(im_, sympy.Rational):
            return re_, im_
    return None


def _parts(v, prec: int) -> dict[str, tuple[int, bool]]:
    """``{"re": ..., "im": ...}``: (log2 of the size, whether evalf is sure of its leading bits) of each
    nonzero part of ``v`` at ``prec`` bits (and up to five times that where terms cancel)."""
    re_, im_, re_acc, im_acc = _evalf(v, prec, {"maxprec": 5 * prec})
    return {name: (part[2] + part[3], acc is not None and acc >= 8)
            for name, part, acc in (("re", re_, re_acc), ("im", im_, im_acc)) if part is not None and part[1] != 0}


def _size(parts: dict) -> float:
    return max((m for m, _ in parts.values()), default=float("-inf"))


def _difference_parts(d) -> tuple[bool, dict[str, tuple[int, bool]]]:
    """(whether ``d`` is certainly nonzero, its parts at the precision that decided it).

    Certainly nonzero: some part whose leading bits evalf is sure of, at two precisions and of the
    same size. evalf trusts what mpmath returns for a function it cannot track (``tanh`` of a
    complex number far from the real axis) to the full precision, which it is not always: a
    difference of two such values can look like a "sure" nonzero rounding error. A real difference
    keeps its size when the precision doubles; a rounding error shrinks with it."""
    low = _parts(d, _PREC)
    if not any(sure for _, sure in low.values()):
        return False, low
    high = _parts(d, 2 * _PREC)
    for name, (m, sure) in low.items():
        if sure and name in high and high[name][1] and abs(high[name][0] - m) <= 4:
            return True, high
    return False, high


def compare_numbers(a, b) -> bool | None:
    """Whether two numbers are equal (see :func:`_compare`)."""
    return _compare(a, b)[0]


def _compare(a, b) -> tuple[bool | None, bool]:
    """Whether two numbers are equal: decided exactly, or to :data:`DIGITS` digits relative to their
    size; None if either cannot be evaluated reliably (infinite, undefined, or too much cancellation).

    Unequal only where some part (real or imaginary) of the difference is certainly nonzero; equal
    only where no digit of the difference survives at the working precision. The second value says
    whether the verdict is exact (rather than to the working precision)."""
    if a == b:
        return True, True
    for v in (a, b):
        if not getattr(v, "is_number", False) or v.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
            return None, False
    ea = _exact(a)
    eb = _exact(b) if ea is not None else None
    if ea is not None and eb is not None:
        return ea == eb, True
    d = a - b
    if d == 0:
        return True, True
    ed = _exact(d)
    if ed is not None and ed != (0, 0):
        return False, True
    try:
        nonzero, pd = _difference_parts(d)
        if nonzero:
            return False, False
        pa, pb = _parts(a, _PREC), _parts(b, _PREC)
    except (NotImplementedError, ValueError, TypeError, ArithmeticError, AttributeError):
        return None, False
    if not pd:
        return True, False
    if not all(sure for _, sure in (*pa.values(), *pb.values())):
        return None, False
    # no sure digit of the difference: zero to the working precision, relative to the two sides
    return (True if _size(pd) <= max(_size(pa), _size(pb), 0.0) - DIGITS * 3.33 else None), False


def approx(v, digits: int = 6, integers: bool = True) -> str:
    """A number for a message: an integer as it is, a real as a real, complex as ``a + b*I``."""
    if integers and isinstance(v, sympy.Integer) and abs(v) < 10**15:
        return str(v)
    try:
        n = sympy.N(v, digits)
    except (TypeError, ValueError, ArithmeticError):
        return sympy.sstr(v)
    return sympy.sstr(n)


def approx_pair(a, b) -> tuple[str, str, str]:
    """Two different numbers as a message shows them: with as many digits as it takes to tell them
    apart (up to 30), and, if that is not enough, their difference."""
    integers = isinstance(a, sympy.Integer) and isinstance(b, sympy.Integer)
    for digits in (6, 12, 20, 30):
        sa, sb = approx(a, digits, integers), approx(b, digits, integers)
        if sa != sb:
            return sa, sb, ""
    try:
        return sa, sb, f" (they differ by {sympy.sstr((a - b).evalf(3, maxn=4000))})"
    except (TypeError, ValueError, ArithmeticError, AttributeError):
        return sa, sb, ""


# --------------------------------------------------------------------------- points


@dataclass(frozen=True)
class _Kind:
    integer: bool
    sign: int | None  # +1 positive, -1 negative, 0 nonnegative-or-zero allowed, None any
    real: bool
    parity: int | None  # 0 even, 1 odd
    bound: bool
    nonzero: bool
    cap: int = 10**6


def _kind(s: sympy.Symbol, bound: bool, cap: int = BOUND_CAP) -> _Kind:
    integer = bool(s.is_integer) or bound
    if s.is_positive:
        sign = 1
    elif s.is_negative:
        sign = -1
    elif s.is_nonnegative or (bound and s.is_nonpositive is not True):
        sign = 0
    elif s.is_nonpositive:
        sign = -2  # zero or negative
    else:
        sign = None
    parity = 0 if s.is_even else 1 if s.is_odd else None
    return _Kind(integer, sign, bool(s.is_real) or integer, parity, bound, bool(s.is_zero is False),
                 cap if bound else 10**6)


def _rational(x: float, digits: int = 8) -> sympy.Rational:
    return sympy.Rational(f"{x:.{digits}g}")


def _signed(v, kind: _Kind, rng: random.Random):
    if kind.sign in (1, 0):
        return abs(v)
    if kind.sign in (-1, -2):
        return -abs(v)
    return v if rng.random() < 0.5 else -v


def _integer(kind: _Kind, band: int, rng: random.Random) -> sympy.Integer:
    cap = kind.cap
    ranges = [(0, 3), (4, min(20, cap)), (min(21, cap), min(300, cap)), (min(301, cap), cap)]
    if band < 0:  # past the cap of a sum's limit (see _sample)
        ranges = [(cap + 1, 2 * cap), (2 * cap + 1, 5 * cap)]
    lo, hi = ranges[band % len(ranges)]
    if lo > hi:
        lo, hi = ranges[2]
    v = rng.randint(lo, hi)
    if kind.parity is not None and v % 2 != kind.parity:
        v += 1
    if kind.sign == 1 or kind.nonzero:
        v = max(v, 1 if kind.parity != 0 else 2)
    v = _signed(v, kind, rng)
    if kind.sign == -1 and v == 0:
        v = -2 if kind.parity == 0 else -1
    return sympy.Integer(v)


def _real(kind: _Kind, band: int, rng: random.Random):
    if band % 5 == 4:  # whole numbers hit the steps of floor and friends
        v = rng.randint(1, 12) if kind.sign in (1, -1) or kind.nonzero else rng.randint(0, 12)
        return sympy.Integer(_signed(v, kind, rng))
    # |x| from 1e-6 to 1e6, a band of exponents each time
    lo = -6 + 3 * (band % 4)
    exponent = rng.uniform(lo, lo + 3)
    return _signed(_rational(10**exponent), kind, rng)


def _value(kind: _Kind, band: int, rng: random.Random):
    if kind.integer:
        return _integer(kind, band, rng)
    if kind.real or band % 3 != 2:
        return _real(kind, band, rng)
    # complex: both parts from the magnitude bands (and now and then purely imaginary)
    im = _real(_Kind(False, None, True, None, False, True), band + rng.randint(0, 3), rng)
    re_ = 0 if rng.random() < 0.25 else _real(_Kind(False, None, True, None, False, False), band + 1, rng)
    return re_ + sympy.I * im


_MAX_EQUATIONS, _MAX_THRESHOLDS, _MAX_DEGREE, _MAX_POLY_DEGREE = 40, 24, 8, 60


def _switch_equations(e) -> list:
    """Expressions whose zeros are where a piecewise function in ``e`` changes its rule.

    Inside a sum or product, a rule that changes at a value of the index (``KroneckerDelta(k, 500)``)
    changes the sum where a limit reaches that value: ``n - 500`` for ``Sum(..., (k, 1, n))``."""
    out: list = []
    for node in sympy.preorder_traversal(e):
        if isinstance(node, (sympy.floor, sympy.ceiling, sympy.frac)):
            out += [node.args[0] - k for k in (0, 1, -1, 2)]
        elif isinstance(node, sympy.Mod):
            a, m = node.args
            out += [a - m * k for k in (0, 1, -1, 2)]
        elif isinstance(node, (sympy.Abs, sympy.sign, sympy.Heaviside)):
            out.append(node.args[0])
        elif isinstance(node, (sympy.Min, sympy.Max)):
            a = node.args
            out += [a[i] - a[j] for i in range(len(a)) for j in range(i + 1, len(a))][:6]
        elif isinstance(node, sympy.KroneckerDelta):
            out.append(node.args[0] - node.args[1])
        elif isinstance(node, sympy.binomial):  # zero below its lower index: binomial(n, 301) for n <= 300
            out += [node.args[0] - node.args[1], node.args[1]]
        elif isinstance(node, sympy.Pow) and not (isinstance(node.args[1], sympy.Integer)):
            out.append(node.args[0])  # a root's branch point: sqrt((x - 10**7)**2) is |x - 10**7|
        elif isinstance(node, sympy.log):
            out.append(node.args[0])
        elif isinstance(node, (sympy.tan, sympy.cot)):
            out.append(sympy.cos(node.args[0]) if isinstance(node, sympy.tan) else sympy.sin(node.args[0]))
        elif isinstance(node, sympy.Piecewise):
            for _, cond in node.args:
                if isinstance(cond, sympy.core.relational.Relational):
                    out.append(cond.lhs - cond.rhs)
        elif isinstance(node, (sympy.Sum, sympy.Product)):
            for lim in node.limits:
                k, lo, hi = lim
                for g in _switch_equations(node.args[0]):
                    if k not in g.free_symbols:
                        continue
                    try:
                        poly = sympy.Poly(g, k)
                    except (sympy.PolynomialError, sympy.GeneratorsNeeded, ValueError, TypeError):
                        continue
                    if poly.degree() == 1:
                        root = -poly.all_coeffs()[1] / poly.all_coeffs()[0]
                        out += [hi - root, lo - root]
        if len(out) > _MAX_EQUATIONS:
            break
    return out


def _as_rational(v) -> sympy.Rational | None:
    try:
        v = sympy.N(v, 30)
        if not v.is_number or not v.is_real or not v.is_finite:
            return None
        return sympy.Rational(str(v)) if not isinstance(v, sympy.Rational) else v
    except (TypeError, ValueError, ArithmeticError, AttributeError):
        return None


def _real_roots(h, s) -> tuple[list[sympy.Rational], bool]:
    """Real zeros of ``h`` in ``s`` (``h``'s other symbols already replaced by numbers), as rationals
    close to them, and whether that list can be trusted to be complete: polynomials (exact roots up
    to degree 8, numerical ones up to degree 60), else what ``solve`` finds; where ``solve`` fails,
    sign changes on a grid over ±1e-6..1e8 (a narrow spike between grid points can hide there, so
    the list is then not complete)."""
    try:
        poly = sympy.Poly(h, s)
        if any(c.free_symbols for c in poly.all_coeffs()) or not all(c.is_number for c in poly.all_coeffs()):
            raise sympy.PolynomialError
        if poly.degree() < 1:
            return [], True
        if poly.degree() > _MAX_POLY_DEGREE:
            return _grid_roots(h, s), False
        if poly.degree() <= _MAX_DEGREE and all(isinstance(c, sympy.Rational) for c in poly.all_coeffs()):
            roots, complete = sympy.real_roots(poly), True
        else:
            roots = [sympy.re(r) for r in poly.nroots(n=30, maxsteps=200) if abs(sympy.im(r)) <= 1e-20 * (1 + abs(r))]
            complete = True
    except (sympy.PolynomialError, sympy.GeneratorsNeeded, sympy.polys.polyerrors.PolynomialError,
            NoConvergence, ValueError, TypeError, NotImplementedError):
        try:
            roots, complete = list(sympy.solve(h, s)), True
        except (NotImplementedError, ValueError, TypeError, ArithmeticError, AttributeError, IndexError, KeyError):
            roots, complete = _grid_roots(h, s), False
    out = []
    for r in roots[:12]:
        q = _as_rational(r)
        if q is not None and q not in out:
            out.append(q)
    return out, complete


def _grid_roots(h, s) -> list[sympy.Rational]:
    """Where ``h`` changes sign on a grid of 300 points over ±1e-6..1e8, bisected to 30 digits."""
    grid = sorted({sympy.Integer(0)} | {sign * _rational(10 ** (-6 + 14 * i / 149), 6) for i in range(150)
                                        for sign in (1, -1)})
    values = []
    for v in grid:
        try:
            values.append(sympy.N(h.xreplace({s: v}), 20))
        except (TypeError, ValueError, ArithmeticError, AttributeError):
            values.append(None)
    roots = []
    for (lo, flo), (hi, fhi) in zip(zip(grid, values), zip(grid[1:], values[1:])):
        if flo is None or fhi is None or not (flo.is_real and fhi.is_real) or flo * fhi > 0:
            continue
        for _ in range(100):  # bisection: the sign is all it needs
            mid = (lo + hi) / 2
            fm = sympy.N(h.xreplace({s: mid}), 20)
            if not fm.is_real:
                break
            lo, hi, flo = (mid, hi, fm) if fm * flo > 0 else (lo, mid, flo)
            if hi - lo <= abs(lo) * sympy.Rational(1, 10**30) + sympy.Rational(1, 10**40):
                break
        roots.append(lo)
        if len(roots) >= 12:
            break
    return roots


def _thresholds(exprs, syms, bases: list[dict], found: list, blind: list) -> None:
    """Append to ``found`` (base point, symbol, value) where a piecewise function in ``exprs`` changes
    its rule: the symbol's value there, the other symbols at the base point's (real) values; and to
    ``blind`` the equations whose zeros could not all be found."""
    seen: set = set()
    equations = [g for e in exprs for x in entries(e) for g in _switch_equations(x)]
    for g in equations:
        if g in seen:
            continue
        seen.add(g)
        if not g.free_symbols <= set(syms):
            continue  # it holds an index bound by a sum: its limits carry the threshold (see _switch_equations)
        present = sorted(g.free_symbols, key=lambda u: u.name)
        for s in present:
            others = [u for u in present if u != s]
            for base in bases if others else bases[:1]:
                h = g.xreplace({u: base[u] for u in others}) if others else g
                roots, complete = _real_roots(h, s)
                if not complete:
                    blind.append(g)
                for root in roots:
                    found.append((base, s, root))
                if len(found) >= _MAX_THRESHOLDS:
                    return


def _near(t: sympy.Rational, kind: _Kind) -> list:
    """Values at and either side of a threshold: the integers around it, or t, t ± 1e-7·|t|, t ± 1/2."""
    if kind.integer:
        fl = sympy.floor(t)
        near = [fl - 1, fl, fl + 1] + ([fl + 2] if fl != t else [])
    else:
        eps = sympy.Rational(1, 10**7) * max(1, abs(t))
        near = [t, t - eps, t + eps, t - sympy.Rational(1, 2), t + sympy.Rational(1, 2)]
    out = []
    for v in near:
        if (kind.sign == 1 and v <= 0) or (kind.sign == 0 and v < 0) or (kind.sign in (-1, -2) and v > 0) or (
                kind.sign == -1 and v == 0):
            continue
        if kind.parity is not None and kind.integer and int(v) % 2 != kind.parity:
            continue
        out.append(sympy.Integer(v) if kind.integer else v)
    return out


def sample_points(syms, exprs, n: int, rng: random.Random, overrides: dict | None = None,
                  limit: Callable[[], Any] | None = None) -> list[dict]:
    """``n`` points over the bands, then points at and around every threshold found (the first
    ``n`` points are the random ones). ``limit()`` bounds the search for thresholds."""
    return _sample(syms, exprs, n, rng, overrides, limit)[0]


def _sample(syms, exprs, n, rng, overrides=None, limit=None) -> tuple[list[dict], str | None]:
    """:func:`sample_points`, and what keeps the thresholds from being known in full (None if nothing)."""
    bound = bound_symbols(*exprs)
    nested = any(node.args[0].has(sympy.Sum, sympy.Product) for e in exprs for x in entries(e)
                 for node in sympy.preorder_traversal(x) if isinstance(node, (sympy.Sum, sympy.Product)))
    cap = NESTED_BOUND_CAP if nested else BOUND_CAP
    kinds = {s: (overrides or {}).get(s) or _kind(s, s in bound, cap) for s in syms}
    offsets = {s: rng.randint(0, 11) for s in syms}
    points = [{s: _value(kinds[s], i + offsets[s], rng) for s in syms} for i in range(n - 2 if bound else n)]
    # a sum's limits are sampled up to a cap (sums cost time); two points go past it, to 5x the cap
    points += [{s: _integer(kinds[s], band, rng) if s in bound else _value(kinds[s], band, rng) for s in syms}
               for band in ((-2, -1) if bound else ())]
    # the other symbols of a threshold take real values: Min, Max, floor, ... compare real numbers
    real = {s: _Kind(k.integer, k.sign, True, k.parity, k.bound, k.nonzero, k.cap) for s, k in kinds.items()}
    bases = [{s: _value(real[s], rng.randint(0, 11), rng) for s in syms} for _ in range(2)]
    found: list = []
    blind: list = []
    unknown = None
    try:
        with (limit() if limit is not None else contextlib.nullcontext()):
            _thresholds(exprs, syms, bases, found, blind)
    except CheckTimeout:  # the search ran out of time: the thresholds found so far
        unknown = "the search for the points where its piecewise parts change their rule ran out of time"
    if blind and unknown is None:
        unknown = (f"where {_short(blind[0], 60)} changes sign cannot be found in full (only at some points of a "
                   f"grid), and a piecewise part changes its rule there")
    for base, s, t in found:
        for v in _near(t, kinds[s]):
            p = dict(base)
            p[s] = v
            points.append(p)
    return points, unknown


@dataclass
class Verdict:
    """Outcome of :func:`numeric_equal`: ``equal`` True/False/None (undecided), how it was reached."""

    equal: bool | None
    points: int  # points at which both sides could be evaluated
    tried: int
    counterexample: tuple | None = None  # (point, value of a, value of b)
    why: str = ""  # why it is undecided, when it is for a reason other than too few points

    @property
    def how(self) -> str:
        return f"numeric: {self.points} points, {DIGITS} digits"


def _log10_size(v) -> float | None:
    if isinstance(v, sympy.Rational):
        return (abs(v.p).bit_length() - v.q.bit_length()) * 0.30103
    try:
        parts = _parts(v, 30)
    except (NotImplementedError, ValueError, TypeError, ArithmeticError, AttributeError, RecursionError):
        return None
    return _size(parts) * 0.30103 if parts else None


def blind_spot(v) -> str | None:
    """Where a number, as evaluated at a point, hides something below :data:`DIGITS` digits: a sum
    with a term that small next to the others (``1 + exp(-10000)``), a function that saturates or
    is flat there (``tanh(10000)``, ``cos(10**-30)``, ``exp(10**-60)``). A point where the sides agree
    only to the working precision proves nothing if they differ only there."""
    seen = 0
    stack = [v]
    while stack and seen < 300:
        node = stack.pop()
        seen += 1
        if not isinstance(node, sympy.Basic) or node.is_Atom or isinstance(node, sympy.Tuple):
            continue
        if isinstance(node, sympy.Add):
            sizes = [x for x in (_log10_size(t) for t in node.args) if x is not None]
            if len(sizes) >= 2 and max(sizes) - min(sizes) > DIGITS:
                return f"a term of {_short(node, 50)} is {max(sizes) - min(sizes):.0f} digits smaller than another"
        elif isinstance(node, (sympy.tanh, sympy.atan, sympy.cos, sympy.cosh, sympy.exp)) and node.args[0] != 0:
            size = _log10_size(node.args[0])
            flat = size is not None and (
                (isinstance(node, sympy.tanh) and _real_size(node.args[0]) > 1.8)  # 1 - tanh(u) ~ 2 exp(-2u)
                or (isinstance(node, sympy.atan) and size > DIGITS)  # pi/2 - atan(u) ~ 1/u
                or (isinstance(node, (sympy.cos, sympy.cosh)) and size < -DIGITS / 2)  # 1 - cos(u) ~ u²/2
                or (isinstance(node, sympy.exp) and size < -DIGITS))  # exp(u) - 1 ~ u
            if flat:
                return f"{type(node).__name__} is flat to {DIGITS} digits at {_short(node.args[0], 40)}"
        stack.extend(node.args)
    return None


def _real_size(u) -> float:
    """log10 of |Re u| (-inf where it is zero or cannot be evaluated)."""
    try:
        re_ = _parts(u, 30).get("re")
    except (NotImplementedError, ValueError, TypeError, ArithmeticError, AttributeError, RecursionError):
        return float("-inf")
    return re_[0] * 0.30103 if re_ is not None else float("-inf")


def extreme_constant(*exprs) -> str | None:
    """A constant part of ``exprs`` beyond what :data:`DIGITS`-digit evaluation can weigh against the
    rest (``10**-1000``, ``exp(-exp(10))``, ``10**2000``): a step equal only to within the tolerance
    cannot vouch for it."""
    seen = 0
    for e in exprs:
        for x in entries(e):
            stack = [x]
            while stack and seen < 400:
                node = stack.pop()
                seen += 1
                if not isinstance(node, sympy.Basic) or isinstance(node, sympy.Tuple):
                    continue
                if node.is_number and node != 0 and not isinstance(node, (sympy.Sum, sympy.Product)):
                    size = _log10_size(node)
                    if size is not None and abs(size) > DIGITS:
                        return _short(node)
                stack.extend(node.args)
    return None


def numeric_equal(a, b, n: int, rng: random.Random, limit: Callable[[], Any],
                  overrides: dict | None = None) -> Verdict:
    """Compare ``a`` and ``b`` (evaluated expressions or matrices of them) at sampled points.

    ``limit()`` gives a context manager bounding one point's evaluation (a point that runs out of
    time, or cannot be evaluated, is skipped; too many skipped points leave the question undecided).
    Equal needs every point that could be evaluated to agree, and more: that no threshold point was
    too large or too slow to evaluate (the step could change its rule there), and, where a point
    agreed only to the working precision, that no constant in the step is beyond that precision.
    """
    syms = symbols_in(a, b)
    unknown = None
    if not syms:
        points = [{}]
    else:
        points, unknown = _sample(syms, [a, b], n, rng, overrides, limit)
    n_random = n if syms else 1
    valid, approximate, blind, insensitive, n_insensitive = 0, False, None, None, 0
    for index, point in enumerate(points):
        try:
            with limit():
                verdicts = []
                values = []
                for ea, eb in zip(entries(a), entries(b)):
                    va = carried_out(evaluated(ea, point))
                    vb = carried_out(evaluated(eb, point))
                    v, exact = _compare(va, vb)
                    if v is True and not exact:
                        spot = blind_spot(va) or blind_spot(vb)
                        if spot is not None:  # equal only where the difference could not be seen
                            v, insensitive, n_insensitive = None, spot, n_insensitive + 1
                    verdicts.append(v)
                    values.append((va, vb))
                    approximate = approximate or (v is True and not exact)
                    if v is False:
                        break
        except TooLarge:
            blind = blind or (point if index >= n_random else None)
            continue
        except (ArithmeticError, ValueError, TypeError, AttributeError, NotImplementedError, RecursionError,
                MemoryError, IndexError, KeyError):
            continue
        except CheckTimeout:  # the point ran out of time: skip it
            blind = blind or (point if index >= n_random else None)
            continue
        if False in verdicts:
            va, vb = values[verdicts.index(False)]
            return Verdict(False, valid + 1, len(points), (point, va, vb))
        if None in verdicts:
            continue
        valid += 1
    # two thirds of the random points must count; a point where evaluation cannot see a difference is
    # no evidence either way and does not count against that share, but at least 8 points must
    need = 1 if not syms else max(8, (2 * (n_random - n_insensitive)) // 3)
    if valid < need:
        why = (f"at too many points the sides agree only to within what {DIGITS}-digit evaluation cannot see "
               f"({insensitive})") if insensitive else ""
        return Verdict(None, valid, len(points), why=why)
    if unknown is not None:
        return Verdict(None, valid, len(points), why=f"it agrees at every point tried, but {unknown}")
    if blind is not None:
        at = ", ".join(f"{k} = {approx(v)}" for k, v in blind.items())
        return Verdict(None, valid, len(points), why=f"it agrees where it could be evaluated, but not at {at}, "
                                                     f"where a piecewise part changes its rule (too large or too "
                                                     f"slow to evaluate there)")
    if approximate:
        try:
            with limit():
                tiny = extreme_constant(a, b)
        except CheckTimeout:
            tiny = "(a constant too slow to size)"
        if tiny is not None:
            return Verdict(None, valid, len(points), why=f"the sides agree to {DIGITS} digits, but the constant "
                                                         f"{tiny} is beyond what {DIGITS}-digit evaluation can "
                                                         f"weigh: it could be the difference")
    return Verdict(True, valid, len(points))
