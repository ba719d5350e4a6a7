"""The derivation checker: every step of a derivation, verified.

A derivation is a chain ``e0 = e1 = ... = en``; each step carries its reason::

    from vidlearn.derive import Derivation
    d = (Derivation("(a + b)**2", assumptions={"a": "real", "b": "real"})
         .step("a**2 + 2*a*b + b**2", "expand the square")
         .step("a**2 + b**2", "drop the cross term"))        # wrong
    r = d.check()
    r.ok, r.failed_step          # (False, 2)
    print(r.message)             # names step 2 and the difference 2*a*b

Each step is checked symbolically with sympy (``simplify`` of the difference, under the
declared assumptions). Where sympy cannot decide, the difference is evaluated at many
random points drawn from several scales, so a false step fails even when it agrees near
zero. A step may also *specialise* (``subs={mu: 0}``): then it must equal the previous
expression with those values substituted.

Strings are parsed by walking their syntax tree (no ``eval``): only numbers, names,
arithmetic and a whitelist of functions are accepted, within a time limit.

Tensor identities are checked with :func:`check_identity` on random inputs.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import math
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import sympy

__all__ = [
    "Derivation",
    "CheckResult",
    "StepResult",
    "Misconception",
    "DerivationError",
    "IdentityResult",
    "check_identity",
    "parse",
    "symbols_with",
]


class DerivationError(AssertionError):
    """Raised by :meth:`Derivation.verify` when a step does not follow."""


class CheckTimeout(BaseException):
    """Internal: a sympy call ran past its time limit.

    A BaseException, so that sympy's own ``except Exception`` blocks cannot swallow it.
    """


@contextlib.contextmanager
def _time_limit(seconds: float | None):
    """Interrupt the block after ``seconds`` (SIGALRM; only in the main thread on Unix).

    ``None`` means no limit; a limit of zero or less raises at once. Where SIGALRM is not
    usable the block runs without a limit rather than failing.
    """
    if seconds is not None and seconds <= 0:
        raise CheckTimeout()
    usable = (
        seconds is not None
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0.0  # don't clobber an outer timer
    )
    if not usable:
        yield
        return

    def _raise(signum, frame):
        raise CheckTimeout()

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# --------------------------------------------------------------------------- parsing

_FUNCTIONS: dict[str, Callable] = {
    "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "exp": sympy.exp, "log": sympy.log,
    "sqrt": sympy.sqrt, "Abs": sympy.Abs, "abs": sympy.Abs, "Sum": sympy.Sum,
    "Product": sympy.Product, "Matrix": sympy.Matrix, "factorial": sympy.factorial,
    "binomial": sympy.binomial, "Rational": sympy.Rational, "floor": sympy.floor,
    "ceiling": sympy.ceiling, "Min": sympy.Min, "Max": sympy.Max, "atan": sympy.atan,
    "sinh": sympy.sinh, "cosh": sympy.cosh, "tanh": sympy.tanh, "diag": sympy.diag,
    "KroneckerDelta": sympy.KroneckerDelta,
}
_CONSTANTS = {"pi": sympy.pi, "E": sympy.E, "I": sympy.I, "oo": sympy.oo}
_MAX_CHARS, _MAX_NODES, _MAX_EXPONENT = 2000, 600, 1000

_ASSUMPTION_WORDS = {
    "positive", "negative", "nonnegative", "nonpositive", "nonzero", "integer",
    "real", "rational", "even", "odd", "finite",
}


def _assumption_kwargs(spec: Any) -> dict[str, bool]:
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        words = {k: bool(v) for k, v in spec.items()}
    elif isinstance(spec, str):
        words = {w: True for w in spec.replace(",", " ").split()}
    else:
        raise ValueError(f"an assumption must be a string like 'positive integer' or a dict, got {spec!r}")
    unknown = set(words) - _ASSUMPTION_WORDS
    if unknown:
        raise ValueError(f"unknown assumption(s) {sorted(unknown)}; known: {sorted(_ASSUMPTION_WORDS)}")
    return words


def symbols_with(assumptions: Mapping[str, Any]) -> dict[str, sympy.Symbol]:
    """``{"d": "positive integer"} -> {"d": Symbol("d", positive=True, integer=True)}``."""
    return {name: sympy.Symbol(name, **_assumption_kwargs(spec)) for name, spec in assumptions.items()}


def parse(text: str, symbols: Mapping[str, sympy.Symbol] | None = None, *, timeout: float = 5.0) -> sympy.Basic:
    """Parse a math string into sympy without ``eval``.

    Accepted: numbers, names (unknown names become symbols, looked up in ``symbols``
    first), ``+ - * / ** ^`` (``^`` means power), calls of whitelisted functions
    (``sin``, ``exp``, ``sqrt``, ``Sum``, ``Matrix``, ...), tuples and lists as their
    arguments. Anything else (attributes, subscripts, lambdas, keywords) is refused.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected a string expression, got {type(text).__name__}")
    if len(text) > _MAX_CHARS:
        raise ValueError(f"expression is {len(text)} characters long; the limit is {_MAX_CHARS}")
    try:
        # "^" is power in math; replaced before parsing, since Python's xor binds looser than "+"
        tree = ast.parse(text.strip().replace("^", "**"), mode="eval")
    except SyntaxError as e:
        raise ValueError(f"cannot parse {text!r}: {e.msg} (column {e.offset})") from None
    n_nodes = sum(1 for _ in ast.walk(tree))
    if n_nodes > _MAX_NODES:
        raise ValueError(f"expression has {n_nodes} syntax nodes; the limit is {_MAX_NODES}")
    symbols = dict(symbols or {})
    try:
        with _time_limit(timeout):
            return _to_sympy(tree.body, symbols, text)
    except CheckTimeout:
        raise ValueError(f"parsing {text!r} took longer than {timeout} s") from None
    except ValueError:
        raise
    except (TypeError, AttributeError, IndexError, ArithmeticError, RecursionError, NotImplementedError) as err:
        # e.g. KroneckerDelta(i) with one index: sympy's own complaint, reported as a parse error
        raise ValueError(f"cannot build {text!r}: {type(err).__name__}: {err}"[:300]) from None


def _check_power_size(a, b, text: str) -> None:
    """Refuse numeric powers whose exact value would be enormous (``9**9**9``).

    Exact integer arithmetic runs in C and cannot be interrupted by the time limit, so
    the size is estimated in floating point first.
    """
    if not (getattr(a, "is_number", False) and getattr(b, "is_number", False)):
        return
    try:
        exponent = abs(complex(sympy.N(b, 15)))
        base_digits = abs(float(sympy.N(sympy.log(abs(sympy.N(a, 15)) + 1, 10), 15)))
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"cannot size the power {a}**{b} in {text!r}") from None
    if exponent > _MAX_EXPONENT or base_digits * exponent > 100 * _MAX_EXPONENT:
        raise ValueError(f"the power {a}**{b} is too large to compute exactly (limit: exponent {_MAX_EXPONENT}) in {text!r}")


def _to_sympy(node: ast.AST, symbols: dict, text: str):
    conv = lambda n: _to_sympy(n, symbols, text)  # noqa: E731
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ValueError(f"only numbers are allowed as constants, got {node.value!r} in {text!r}")
        return sympy.Integer(node.value) if isinstance(node.value, int) else sympy.Float(node.value)
    if isinstance(node, ast.Name):
        name = node.id
        if name.startswith("_"):
            raise ValueError(f"name {name!r} is not allowed in {text!r}")
        if name in symbols:
            return symbols[name]
        if name in _CONSTANTS:
            return _CONSTANTS[name]
        if name in _FUNCTIONS:
            raise ValueError(f"{name} is a function; call it, e.g. {name}(x), in {text!r}")
        symbols[name] = sympy.Symbol(name)
        return symbols[name]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = conv(node.operand)
        if isinstance(node.op, ast.UAdd):
            return v
        return -v if isinstance(v, (sympy.Number, sympy.MatrixBase)) else sympy.Mul(-1, v, evaluate=False)
    if isinstance(node, ast.BinOp):
        a, b = conv(node.left), conv(node.right)
        op = type(node.op)
        if op is ast.Pow:
            _check_power_size(a, b, text)
        if any(isinstance(x, sympy.MatrixBase) for x in (a, b)):
            ops = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b,
                   ast.MatMult: lambda: a * b, ast.Div: lambda: a / b, ast.Pow: lambda: a**b}
            if op not in ops:
                raise ValueError(f"operator {op.__name__} is not allowed on matrices in {text!r}")
            return ops[op]()
        # Unevaluated, so that a step is shown as written (sympy would otherwise tidy
        # "(1/sqrt(d))**2 * d" into "1" before anyone has seen the step).
        if op is ast.Add:
            return sympy.Add(a, b, evaluate=False)
        if op is ast.Sub:
            return sympy.Add(a, sympy.Mul(-1, b, evaluate=False), evaluate=False)
        if op in (ast.Mult, ast.MatMult):
            return sympy.Mul(a, b, evaluate=False)
        if op is ast.Div:
            return sympy.Mul(a, sympy.Pow(b, -1, evaluate=False), evaluate=False)
        if op is ast.Pow:
            return sympy.Pow(a, b, evaluate=False)
        raise ValueError(f"operator {op.__name__} is not allowed in {text!r}")
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [conv(e) for e in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else list(items)
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
            shown = ast.unparse(node.func)
            raise ValueError(f"function {shown!r} is not allowed in {text!r}; allowed: {sorted(_FUNCTIONS)}")
        if node.keywords:
            raise ValueError(f"keyword arguments are not allowed in {text!r}")
        args = [conv(a) for a in node.args]
        if node.func.id in ("factorial", "binomial"):
            for a in args:
                if getattr(a, "is_number", False) and abs(sympy.N(a)) > _MAX_EXPONENT:
                    raise ValueError(f"{node.func.id} of {a} is too large (limit {_MAX_EXPONENT}) in {text!r}")
        return _FUNCTIONS[node.func.id](*args)
    raise ValueError(f"{type(node).__name__} is not allowed in a math expression: {text!r}")


# --------------------------------------------------------------------------- results


def _tex_text(s: str) -> str:
    """Escape a reason for use inside ``\\text{...}`` in MathJax."""
    for ch, rep in (("\\", r"\backslash "), ("{", r"\{"), ("}", r"\}"), ("&", r"\&"), ("#", r"\#"),
                    ("%", r"\%"), ("$", r"\$"), ("_", r"\_")):
        s = s.replace(ch, rep)
    return s


@dataclass
class StepResult:
    """How one step fared: ``method`` is 'symbolic', 'numeric', 'failed' or 'skipped'."""

    index: int
    reason: str
    ok: bool | None
    method: str
    detail: str = ""


@dataclass
class CheckResult:
    """Outcome of :meth:`Derivation.check`; ``failed_step`` is 1-based (None when ok)."""

    ok: bool
    failed_step: int | None
    message: str
    steps: list[StepResult] = field(default_factory=list)
    latex: list[str] = field(default_factory=list)
    title: str | None = None

    def __bool__(self) -> bool:
        return self.ok

    def raise_if_failed(self) -> "CheckResult":
        if not self.ok:
            raise DerivationError(self.message)
        return self

    def __str__(self) -> str:
        lines = [self.title] if self.title else []
        for s in self.steps:
            mark = {True: "ok ", False: "FAIL", None: "  - "}[s.ok]
            lines.append(f"  step {s.index}: [{mark}] {s.reason} ({s.method})")
        lines.append(self.message)
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        head = f"**{self.title}**\n\n" if self.title else ""
        rows = [r"\begin{aligned}", f"& {self.latex[0]} \\\\"] if self.latex else []
        for s, tex in zip(self.steps, self.latex[1:]):
            mark = {True: r"\checkmark", False: r"\times", None: r"\cdot"}[s.ok]
            # "&=": every step's "=" sits on the alignment point, left of its expression, so the
            # steps line up under the start; "&&" puts the reasons in a column of their own
            rows.append(f"&={tex} && {mark}\\ \\text{{{_tex_text(s.reason)}}} \\\\")
        body = "$$\n" + "\n".join(rows + [r"\end{aligned}"]) + "\n$$\n\n" if rows else ""
        verdict = "✅ every step checked" if self.ok else "❌ " + self.message
        methods = {s.method for s in self.steps if s.ok}
        how = f" ({', '.join(sorted(methods))})" if self.ok and methods else ""
        return head + body + verdict + how


@dataclass(frozen=True)
class Misconception:
    """A wrong-but-plausible expression and the hint it deserves.

    ``step`` restricts it to one step (1-based); ``None`` means any step.
    """

    expr: Any
    hint: str
    step: int | None = None


# --------------------------------------------------------------------------- the checker


def _is_matrix(e) -> bool:
    return isinstance(e, sympy.MatrixBase)


def _sample(sym: sympy.Symbol, rng: random.Random) -> sympy.Number:
    """A random value respecting the symbol's assumptions, from several scales."""
    if sym.is_integer:
        if sym.is_even:
            v = 2 * rng.randint(1, 6)
        elif sym.is_odd:
            v = 2 * rng.randint(0, 6) + 1
        elif sym.is_positive:
            v = rng.randint(1, 12)
        elif sym.is_nonnegative:
            v = rng.randint(0, 12)
        elif sym.is_negative:
            v = -rng.randint(1, 12)
        else:
            v = rng.randint(-8, 8)
        return sympy.Integer(v)
    lo, hi = rng.choice([(0.05, 1.0), (1.0, 4.0), (4.0, 12.0)])
    mag = rng.uniform(lo, hi)
    if sym.is_positive or sym.is_nonnegative:
        sign = 1
    elif sym.is_negative or sym.is_nonpositive:
        sign = -1
    else:
        sign = rng.choice([-1, 1])
    return sympy.Float(sign * mag, 30)


def _evaluated(e):
    """Rebuild an expression bottom-up with sympy's automatic evaluation switched on.

    Steps are stored unevaluated for display; checking works on this tidied copy, which
    sympy handles much faster.
    """
    if isinstance(e, sympy.MatrixBase):
        return e.applyfunc(_evaluated)
    if not isinstance(e, sympy.Basic) or e.is_Atom or not e.args:
        return e
    return e.func(*[_evaluated(a) for a in e.args])


def _eval_derivatives(e):
    """Carry out unevaluated derivatives only (a full ``doit`` may try to sum series forever)."""
    return e.replace(lambda x: isinstance(x, sympy.Derivative), lambda x: x.doit())


def _entries(e) -> list:
    return list(e) if _is_matrix(e) else [e]


def _evaluate(e, point: dict) -> complex | None:
    try:
        v = sympy.N(e.xreplace(point).doit(), 30)
        v = complex(v)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, AttributeError):
        return None
    if not (math.isfinite(v.real) and math.isfinite(v.imag)):
        return None
    return v


class Derivation:
    """A chain of equal expressions, each step with a reason.

    ``start`` and step expressions are sympy objects (scalars or matrices) or strings.
    ``assumptions`` maps symbol names to ``"positive integer"``-style strings (or dicts
    of sympy assumption flags); symbols with the same name are unified across steps.
    """

    def __init__(
        self,
        start: Any,
        assumptions: Mapping[str, Any] | None = None,
        *,
        title: str | None = None,
        misconceptions: Iterable[Misconception] = (),
        timeout: float = 5.0,
        n_points: int = 30,
        seed: int = 0,
    ):
        self.title = title
        self.assumptions = dict(assumptions or {})
        self.symbols = symbols_with(self.assumptions)
        self.timeout, self.n_points, self.seed = timeout, n_points, seed
        self.misconceptions = list(misconceptions)
        self.start = self._coerce(start)
        self.steps: list[tuple[Any, str, dict | None]] = []
        self._deadline: float | None = None

    # -- building
    def _coerce(self, e):
        if isinstance(e, str):
            e = parse(e, self.symbols, timeout=self.timeout)
        elif isinstance(e, (int, float)):
            e = sympy.sympify(e)
        elif isinstance(e, list):
            e = sympy.Matrix(e)
        if not isinstance(e, (sympy.Basic, sympy.MatrixBase)):
            raise ValueError(f"a derivation step must be a sympy expression, matrix or string, got {type(e).__name__}")
        # unify symbols by name so that Symbol('d') and the declared Symbol('d', positive=True) coincide
        repl = {}
        for s in e.free_symbols if not _is_matrix(e) else set().union(*(x.free_symbols for x in e)):
            canonical = self.symbols.setdefault(s.name, s)
            if canonical is not s:
                repl[s] = canonical
        if not repl:
            return e
        with sympy.evaluate(False):  # keep the step as written
            return e.xreplace(repl)

    def step(self, expr: Any, reason: str, *, subs: Mapping[Any, Any] | None = None) -> "Derivation":
        """Append ``= expr`` justified by ``reason``; ``subs`` makes it a specialisation."""
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError("every step needs a reason (a non-empty string)")
        subs_c = None
        if subs:
            subs_c = {self._coerce(k): self._coerce(v) for k, v in subs.items()}
        self.steps.append((self._coerce(expr), reason, subs_c))
        return self

    def replace_step(self, index: int, expr: Any) -> "Derivation":
        """A copy with step ``index`` (1-based) replaced by ``expr``."""
        if not 1 <= index <= len(self.steps):
            raise ValueError(f"step index must be in 1..{len(self.steps)}, got {index}")
        new = copy.copy(self)
        new.steps = list(self.steps)
        _, reason, subs = new.steps[index - 1]
        new.steps[index - 1] = (new._coerce(expr), reason, subs)
        return new

    @property
    def expressions(self) -> list:
        return [self.start] + [e for e, _, _ in self.steps]

    # -- checking
    def _limit(self) -> float:
        """Seconds allowed for the next sympy call: the per-call timeout, capped by the budget."""
        if self._deadline is None:
            return self.timeout
        return min(self.timeout, self._deadline - time.monotonic())

    def _symbolic_zero(self, diff) -> bool | None:
        """True if sympy proves ``diff == 0``; None if it cannot tell (or runs out of time)."""
        tactics = (
            lambda e: sympy.expand(e),
            lambda e: sympy.simplify(e),
            lambda e: sympy.simplify(sympy.expand_trig(sympy.expand(_eval_derivatives(e)))),
        )
        for tactic in tactics:
            try:
                with _time_limit(self._limit()):
                    out = [tactic(x) for x in _entries(diff)]
            except CheckTimeout:
                continue
            except Exception:  # sympy may refuse a tactic on some expressions; try the next one
                continue
            if all(x == 0 for x in out):
                return True
            if all(x.is_number for x in out):
                return None  # a nonzero constant: no tactic will make it vanish
        return None

    def _numeric(self, a, b, rng: random.Random):
        """Compare ``a`` and ``b`` at random points: (agrees, counterexample or None, n_valid)."""
        try:
            with _time_limit(self._limit()):
                a, b = _eval_derivatives(a), _eval_derivatives(b)
        except CheckTimeout:
            return True, None, 0
        syms = sorted(set().union(*(x.free_symbols for x in _entries(a) + _entries(b))), key=lambda s: s.name)
        n_valid = 0
        for _ in range(self.n_points):
            point = {s: _sample(s, rng) for s in syms}
            try:
                with _time_limit(self._limit()):
                    for ea, eb in zip(_entries(a), _entries(b)):
                        va, vb = _evaluate(ea, point), _evaluate(eb, point)
                        if va is None or vb is None:
                            raise ValueError
                        if abs(va - vb) > 1e-9 * (1 + max(abs(va), abs(vb))):
                            return False, (point, va, vb), n_valid
            except (CheckTimeout, ValueError):
                continue
            n_valid += 1
        return True, None, n_valid

    def _equal(self, a, b, rng) -> tuple[bool, str, Any]:
        """Decide ``a == b``: (verdict, method, counterexample)."""
        if _is_matrix(a) != _is_matrix(b) or (_is_matrix(a) and a.shape != b.shape):
            sa = a.shape if _is_matrix(a) else "scalar"
            sb = b.shape if _is_matrix(b) else "scalar"
            return False, f"shape mismatch: {sa} vs {sb}", None
        if a == b or self._symbolic_zero(a - b):  # structural equality first: free, and common
            return True, "symbolic", None
        agrees, counter, n_valid = self._numeric(a, b, rng)
        if not agrees:
            return False, "numeric counterexample", counter
        if n_valid < max(3, self.n_points // 3):
            return False, f"undecided: only {n_valid} of {self.n_points} random points could be evaluated", None
        return True, "numeric", None

    def _explain(self, index: int, reason: str, prev, cur, how: str, counter) -> str:
        msg = [f"step {index} ({reason}) does not follow from the expression before it."]
        if how.startswith(("shape", "undecided")):
            msg.append(how + ".")
        else:
            diff = prev - cur
            try:
                with _time_limit(self._limit()):
                    sd = sympy.simplify(diff) if not _is_matrix(diff) else diff.applyfunc(sympy.simplify)
                msg.append(f"previous − this = {sympy.sstr(sd)}.")
            except CheckTimeout:
                pass
            if not _is_matrix(prev) and prev != 0 and cur != 0:
                try:
                    with _time_limit(self._limit()):
                        ratio = sympy.simplify(cur / prev)
                    if ratio == -1:
                        msg.append("The sign is flipped.")
                    elif ratio != 1 and sympy.count_ops(ratio) <= 6:
                        msg.append(f"This step is the previous one times {sympy.sstr(ratio)}: a missing or extra factor?")
                except CheckTimeout:
                    pass
            if counter is not None:
                point, va, vb = counter
                at = ", ".join(f"{k}={float(v):.4g}" for k, v in point.items())
                msg.append(f"At {at or 'this point'}: previous = {va.real:.6g}, this = {vb.real:.6g}.")
        for m in self.misconceptions:
            if m.step not in (None, index):
                continue
            wrong = _evaluated(self._coerce(m.expr))
            same, _, _ = self._equal(cur, wrong, random.Random(self.seed))
            if same:
                msg.append(f"Hint: {m.hint}")
                break
        return " ".join(msg)

    def check(self, budget: float | None = None) -> CheckResult:
        """Check every step; the message names the first one that does not follow.

        ``budget`` caps the total seconds spent in sympy (for untrusted input); a step that
        cannot be decided within it fails as undecided.
        """
        if not self.steps:
            raise ValueError("a derivation needs at least one step")
        self._deadline = None if budget is None else time.monotonic() + budget
        try:
            return self._check()
        finally:
            self._deadline = None

    def _check(self) -> CheckResult:
        rng = random.Random(self.seed)
        results: list[StepResult] = []
        failed, message = None, ""
        prev = _evaluated(self.start)
        for i, (cur, reason, subs) in enumerate(self.steps, start=1):
            cur = _evaluated(cur)
            if failed is not None:
                results.append(StepResult(i, reason, None, "skipped"))
                prev = cur
                continue
            lhs = prev.subs(subs) if subs else prev
            ok, how, counter = self._equal(lhs, cur, rng)
            if ok:
                results.append(StepResult(i, reason, True, how))
            else:
                failed = i
                message = self._explain(i, reason, lhs, cur, how, counter)
                results.append(StepResult(i, reason, False, "failed", message))
            prev = cur
        if failed is None:
            message = f"all {len(self.steps)} steps follow" + (f" ({self.title})" if self.title else "")
        return CheckResult(
            ok=failed is None,
            failed_step=failed,
            message=message,
            steps=results,
            latex=[sympy.latex(e) for e in self.expressions],
            title=self.title,
        )

    def equivalent(self, a: Any, b: Any, budget: float | None = None) -> bool:
        """Whether ``a == b`` under this derivation's assumptions, decided as a step would be."""
        a, b = _evaluated(self._coerce(a)), _evaluated(self._coerce(b))
        self._deadline = None if budget is None else time.monotonic() + budget
        try:
            return self._equal(a, b, random.Random(self.seed))[0]
        finally:
            self._deadline = None

    def verify(self) -> CheckResult:
        """:meth:`check`, raising :class:`DerivationError` on the first wrong step."""
        return self.check().raise_if_failed()

    def _repr_markdown_(self) -> str:
        lines = [r"\begin{aligned}", f"& {sympy.latex(self.start)} \\\\"]
        for e, reason, _ in self.steps:
            lines.append(f"&={sympy.latex(e)} && \\text{{{_tex_text(reason)}}} \\\\")
        head = f"**{self.title}**\n\n" if self.title else ""
        return head + "$$\n" + "\n".join(lines + [r"\end{aligned}"]) + "\n$$"

    def __repr__(self) -> str:
        return f"Derivation({self.title or sympy.sstr(self.start)!s}, {len(self.steps)} steps)"


# --------------------------------------------------------------------------- tensor identities


@dataclass
class IdentityResult:
    """Outcome of :func:`check_identity`."""

    ok: bool
    max_abs_error: float
    message: str
    failed_trial: int | None = None

    def __bool__(self) -> bool:
        return self.ok

    def raise_if_failed(self) -> "IdentityResult":
        if not self.ok:
            raise DerivationError(self.message)
        return self

    def _repr_markdown_(self) -> str:
        return ("✅ " if self.ok else "❌ ") + self.message


def _as_tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def check_identity(
    f: Callable,
    g: Callable,
    *,
    shapes: Sequence[Sequence[int]] | None = None,
    make_inputs: Callable[["torch.Generator"], Sequence[Any]] | None = None,
    n_trials: int = 5,
    dtype: "torch.dtype | None" = None,
    atol: float = 1e-10,
    rtol: float = 1e-8,
    seed: int = 0,
    name: str = "identity",
) -> IdentityResult:
    """Check ``f(*inputs) == g(*inputs)`` on ``n_trials`` random inputs.

    Inputs are standard-normal tensors of the given ``shapes``, or whatever
    ``make_inputs(generator)`` returns. Outputs may be tensors or tuples of tensors.
    """
    import torch  # only here: the derivation checker itself needs no torch

    if (shapes is None) == (make_inputs is None):
        raise ValueError("give exactly one of shapes= or make_inputs=")
    dtype = torch.float64 if dtype is None else dtype
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for trial in range(n_trials):
        if shapes is not None:
            args = [torch.randn(*s, generator=gen, dtype=dtype) for s in shapes]
        else:
            args = list(make_inputs(gen))
        outs_f, outs_g = _as_tuple(f(*args)), _as_tuple(g(*args))
        if len(outs_f) != len(outs_g):
            return IdentityResult(False, math.inf, f"{name}: the two sides return {len(outs_f)} vs {len(outs_g)} values", trial)
        for a, b in zip(outs_f, outs_g):
            a, b = torch.as_tensor(a), torch.as_tensor(b)
            if a.shape != b.shape:
                return IdentityResult(
                    False, math.inf, f"{name}: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)} (trial {trial})", trial
                )
            err = (a.double() - b.double()).abs()
            worst = max(worst, float(err.max()) if err.numel() else 0.0)
            if not torch.allclose(a.double(), b.double(), atol=atol, rtol=rtol, equal_nan=False):
                return IdentityResult(
                    False, worst, f"{name}: fails on trial {trial}, max |difference| = {worst:.3g} (atol={atol:g})", trial
                )
    return IdentityResult(True, worst, f"{name}: holds on {n_trials} random trials, max |difference| = {worst:.2g}")
