"""The derivation checker: every step of a chain ``e0 = e1 = ... = en`` verified, the first wrong one
named, and every verdict saying how it was reached.

A step is decided symbolically where sympy can prove the difference zero (or a nonzero number),
otherwise numerically (:mod:`vidlearn.derive.numeric`: exact or 50-digit evaluation at points over
many magnitudes, complex points for symbols not declared real, points at the thresholds of
piecewise functions). A step that can be decided neither way is *undecided*: it is reported as
"could not be checked", never passed. All of it runs in a forked child with a hard time and memory
bound (:mod:`vidlearn.derive.bounds`), so no input can hang or crash the caller.
"""

from __future__ import annotations

import copy
import random
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import sympy

from vidlearn.derive import numeric
from vidlearn.derive.bounds import CheckTimeout, isolation_available, stream, time_limit
from vidlearn.derive.display import NOT_SHOWN, tex, tex_all, tex_text
from vidlearn.derive.notation import read, shown, symbols_with, unknown_message
from vidlearn.misconception import Misconception

__all__ = ["Derivation", "CheckResult", "StepResult", "DerivationError"]


class DerivationError(AssertionError):
    """Raised by :meth:`Derivation.verify` when a step does not follow."""


@dataclass
class StepResult:
    """How one step fared.

    ``ok``: True (follows), False (does not follow, or could not be checked), None (skipped after an
    earlier failure). ``method``: 'symbolic', 'numeric', 'failed', 'undecided' or 'skipped';
    ``detail``: how a passing step was verified (``numeric: 34 points, 50 digits``), or why it failed.
    ``trivial``: the step only rewrites the previous expression (``+ 0``, ``1*``, reordering).
    """

    index: int
    reason: str
    ok: bool | None
    method: str
    detail: str = ""
    trivial: bool = False

    @property
    def how(self) -> str:
        return self.detail if self.method == "numeric" else self.method


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

    @property
    def undecided(self) -> bool:
        """True when the first failing step could not be checked (rather than shown wrong)."""
        return self.failed_step is not None and self.steps[self.failed_step - 1].method == "undecided"

    def raise_if_failed(self) -> "CheckResult":
        if not self.ok:
            raise DerivationError(self.message)
        return self

    def __str__(self) -> str:
        lines = [self.title] if self.title else []
        for s in self.steps:
            mark = {True: "ok ", False: "FAIL", None: "  - "}[s.ok]
            lines.append(f"  step {s.index}: [{mark}] {s.reason} ({s.how})")
        lines.append(self.message)
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        head = f"**{self.title}**\n\n" if self.title else ""
        rows = [r"\begin{aligned}", f"& {self.latex[0]} \\\\"] if self.latex else []
        for s, tx in zip(self.steps, self.latex[1:]):
            mark = {True: r"\checkmark", False: r"\times", None: r"\cdot"}[s.ok]
            how = f"\\ \\small{{({tex_text(s.how)})}}" if s.ok else ""
            # "&=": every step's "=" sits on the alignment point, left of its expression, so the
            # steps line up under the start; "&&" puts the reasons in a column of their own
            rows.append(f"&={tx} && {mark}\\ \\text{{{tex_text(s.reason)}}}{how} \\\\")
        body = "$$\n" + "\n".join(rows + [r"\end{aligned}"]) + "\n$$\n\n" if rows else ""
        if self.ok:
            counts: dict[str, int] = {}
            for s in self.steps:
                counts[s.method] = counts.get(s.method, 0) + 1
            how = ", ".join(f"{n} {m}" for m, n in sorted(counts.items()))
            verdict = f"✅ every step checked ({how})"
        else:
            verdict = "❌ " + self.message
        return head + body + verdict


def _unify(e, symbols: dict):
    """Symbols unified by name, so that Symbol('d') and the declared Symbol('d', positive=True) coincide."""
    repl = {}
    for s in numeric.symbols_in(e):
        canonical = symbols.setdefault(s.name, s)
        if canonical is not s:
            repl[s] = canonical
    if not repl:
        return e
    with sympy.evaluate(False):  # keep the step as written
        return e.xreplace(repl)


def _simple_factor(r) -> bool:
    """A factor a student could have dropped or added: a fraction of small integers, π, a square
    root of a small integer, and powers (up to 2, or 1/2) of single symbols, times each other."""
    for f in sympy.Mul.make_args(r):
        if isinstance(f, sympy.Rational):
            if abs(f.p) > 100 or f.q > 100:
                return False
            continue
        base, exp = f.as_base_exp()
        if not (isinstance(exp, sympy.Rational) and abs(exp) <= 2 and exp.q <= 2):
            return False
        if not (base.is_Symbol or base is sympy.pi or (isinstance(base, sympy.Integer) and 0 < base <= 100)):
            return False
    return True


class Derivation:
    """A chain of equal expressions, each step with a reason.

    ``start`` and step expressions are sympy objects (scalars or matrices) or strings (plain
    notation, Unicode maths or LaTeX; see :func:`vidlearn.derive.read`). ``assumptions`` maps symbol
    names to ``"positive integer"``-style strings (or dicts of sympy assumption flags); symbols with
    the same name are unified across steps. A name in a step string that is neither declared, nor in
    the start, nor a function is refused with the closest known name.

    ``timeout``: seconds for one sympy call (a tactic, one point); ``step_seconds``: the hard bound on
    one step, ``memory_mb`` on the checker's memory; ``n_points``: random points per numeric check.
    ``isolate=False`` checks in this process (only for callers that are bounded already, like the
    grader's child); the soft limits still apply, the hard ones are the caller's.
    """

    def __init__(
        self,
        start: Any,
        assumptions: Mapping[str, Any] | None = None,
        *,
        title: str | None = None,
        misconceptions: Iterable[Misconception] = (),
        timeout: float = 2.0,
        step_seconds: float = 10.0,
        memory_mb: int = 1024,
        n_points: int = 30,
        seed: int = 0,
        isolate: bool = True,
    ):
        self.title = title
        self.assumptions = dict(assumptions or {})
        self.symbols = symbols_with(self.assumptions)
        self.timeout, self.step_seconds, self.memory_mb = timeout, step_seconds, memory_mb
        self.n_points, self.seed, self.isolate = n_points, seed, isolate
        self.misconceptions = list(misconceptions)
        self.known: set[str] = set()
        self.start = self.read(start, new_names=True)
        self.known = set(self.symbols)  # a step's string may use these names, and bound indices of its own
        self.steps: list[tuple[Any, str, dict | None]] = []
        self._deadline: float | None = None

    # -- building
    def read(self, e, *, new_names: bool = False):
        """``e`` as this derivation's expression: a string is read (names unified with the declared
        symbols); with ``new_names`` false, a name that is not known yet is refused with a suggestion."""
        if isinstance(e, str):
            reading = read(e, self.symbols, known=None if new_names else self.known)
            if reading.unknown:
                name, suggestion = reading.unknown[0]
                raise ValueError(f"{unknown_message(name, suggestion)} (in {shown(e)})")
            e = reading.expr
        elif isinstance(e, bool) or not isinstance(e, (int, sympy.Basic, sympy.MatrixBase, list)):
            if isinstance(e, float):
                raise ValueError(f"write {e!r} as a string or a sympy Rational, so that it is exact")
            raise ValueError(f"a derivation step must be a sympy expression, matrix or string, got {type(e).__name__}")
        elif isinstance(e, int):
            e = sympy.Integer(e)
        elif isinstance(e, list):
            e = sympy.Matrix(e)
        return _unify(e, self.symbols)

    def step(self, expr: Any, reason: str, *, subs: Mapping[Any, Any] | None = None) -> "Derivation":
        """Append ``= expr`` justified by ``reason``; ``subs`` makes it a specialisation."""
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError("every step needs a reason (a non-empty string)")
        subs_c = None
        if subs:
            subs_c = {self.read(k): self.read(v) for k, v in subs.items()}
            for k in subs_c:
                if not isinstance(k, sympy.Symbol):
                    raise ValueError(f"subs replaces symbols by values; {sympy.sstr(k)[:40]} is not a symbol")
        self.steps.append((self.read(expr), reason, subs_c))
        return self

    def replace_step(self, index: int, expr: Any) -> "Derivation":
        """A copy with step ``index`` (1-based) replaced by ``expr``."""
        if not 1 <= index <= len(self.steps):
            raise ValueError(f"step index must be in 1..{len(self.steps)}, got {index}")
        new = copy.copy(self)
        new.steps = list(self.steps)
        _, reason, subs = new.steps[index - 1]
        new.steps[index - 1] = (new.read(expr), reason, subs)
        return new

    @property
    def expressions(self) -> list:
        return [self.start] + [e for e, _, _ in self.steps]

    # -- the bounded part (runs in the child)
    def _limit(self) -> float:
        left = self._deadline - time.monotonic() if self._deadline is not None else self.timeout
        return min(self.timeout, left)

    def _symbolic(self, a, b) -> tuple[bool | None, str]:
        """(True: proved equal, False: proved different, None: cannot tell; the difference's form)."""
        diff = a - b
        tactics = (
            sympy.expand,
            sympy.simplify,
            lambda e: sympy.expand(numeric.carried_out(e)),  # sums and products in closed form
            lambda e: sympy.simplify(sympy.expand_trig(sympy.expand(e))),
        )
        for n, tactic in enumerate(tactics):
            try:
                # sums in closed form: quick where it works (polynomials), slow where it does not (trig)
                with time_limit(min(self._limit(), 0.3) if n == 2 else self._limit()):
                    out = [tactic(x) for x in numeric.entries(diff)]
                    if all(x == 0 for x in out):
                        return True, ""
                    if all(x.is_number for x in out) and any(x.is_zero is False for x in out):
                        return False, sympy.sstr(out[0] if len(out) == 1 else sympy.Matrix(out))
            except CheckTimeout:
                if self._deadline is not None and time.monotonic() >= self._deadline:
                    return None, ""
                continue
            except Exception:  # sympy may refuse a tactic on some expressions: try the next one
                continue
        return None, ""

    def _numeric(self, a, b, rng, overrides=None) -> numeric.Verdict:
        return numeric.numeric_equal(a, b, self.n_points, rng, lambda: time_limit(self._limit()), overrides)

    def _equal(self, a, b, rng) -> tuple[bool | None, str, Any]:
        """Decide ``a == b``: (verdict or None, how, counterexample)."""
        ma, mb = isinstance(a, sympy.MatrixBase), isinstance(b, sympy.MatrixBase)
        if ma != mb or (ma and a.shape != b.shape):
            return False, f"shape mismatch: {a.shape if ma else 'scalar'} vs {b.shape if mb else 'scalar'}", None
        if a == b:
            return True, "symbolic", None
        proved, _ = self._symbolic(a, b)
        if proved is not None:
            return proved, "symbolic", None
        v = self._numeric(a, b, rng)
        if v.equal is None:
            return None, v.why or (f"only {v.points} of {v.tried} points could be evaluated at {numeric.DIGITS} "
                                   f"digits, and sympy could not simplify the difference"), None
        return v.equal, v.how, v.counterexample

    def _explain(self, index: int, reason: str, prev, cur, how: str, counter) -> str:
        msg = [f"step {index} ({reason}) does not follow from the expression before it."]
        if how.startswith("shape"):
            return " ".join(msg + [how + "."])
        matrix = isinstance(prev, sympy.MatrixBase)
        try:
            with time_limit(self._limit()):
                diff = prev - cur
                sd = diff.applyfunc(sympy.simplify) if matrix else sympy.simplify(diff)
            msg.append(f"previous − this = {sympy.sstr(sd)}."[:400])
        except (CheckTimeout, Exception):
            pass
        if not matrix:
            msg += self._factor_hint(prev, cur)
        if counter is not None:
            point, va, vb = counter
            at = ", ".join(f"{k} = {numeric.approx(v)}" for k, v in point.items())
            sa, sb, differ = numeric.approx_pair(va, vb)
            msg.append(f"At {at or 'the values given'}: previous = {sa}, this = {sb}{differ}.")
            msg += self._domain_hint(prev, cur, point)
        for m in self.misconceptions:
            if m.step not in (None, index) or m.expr is None:
                continue
            try:
                wrong = numeric.prepared(self.read(m.expr, new_names=True))
                same, _, _ = self._equal(cur, wrong, random.Random(self.seed))
            except (ValueError, CheckTimeout):
                continue
            if same:
                msg.append(f"Hint: {m.hint}")
                break
        return " ".join(msg)

    def _factor_hint(self, prev, cur) -> list[str]:
        """A missing or extra factor, or a flipped sign: this step is the previous one times a simple
        factor (a small fraction, π, √2, a power of one symbol), found symbolically or, where sympy
        cannot simplify the ratio (sums, products), as the same factor at every sampled point."""
        if prev == 0 or cur == 0:
            return []
        try:
            with time_limit(self._limit()):
                ratio = sympy.simplify(cur / prev)
            if ratio not in (0, 1) and _simple_factor(ratio):
                return [self._ratio_words(ratio)]
        except (CheckTimeout, Exception):
            pass
        rng = random.Random(self.seed + 1)
        syms = numeric.symbols_in(prev, cur)
        samples = []  # (point, cur / prev there)
        for point in numeric.sample_points(syms, [prev, cur], 6, rng, limit=lambda: time_limit(self._limit())):
            try:
                with time_limit(self._limit()):
                    p = numeric.carried_out(numeric.evaluated(prev, point))
                    c = numeric.carried_out(numeric.evaluated(cur, point))
                    if p == 0 or not p.is_number or not c.is_number:
                        continue
                    samples.append((point, sympy.nsimplify(sympy.N(c / p, 30), [sympy.pi], tolerance=1e-20)))
            except (CheckTimeout, Exception):
                continue
        if len(samples) < 3:
            return []
        # the ratio itself, or the ratio over a power of one symbol (a factor d_k dropped inside a Sum)
        for s, k in [(None, 0)] + [(s, k) for s in syms for k in (1, -1, 2, -2)]:
            try:
                scaled = {r / point[s]**k if s is not None else r for point, r in samples}
            except (ArithmeticError, TypeError, ValueError):
                continue
            if len(scaled) == 1:
                ratio = next(iter(scaled)) * (s**k if s is not None else 1)
                if ratio not in (0, 1) and _simple_factor(ratio):
                    return [self._ratio_words(ratio)]
        return []

    @staticmethod
    def _ratio_words(ratio) -> str:
        if ratio == -1:
            return "The sign is flipped: this step is minus the previous one."
        if ratio.could_extract_minus_sign():
            return (f"This step is the previous one times {sympy.sstr(ratio)}: the sign is flipped, and a factor "
                    f"{sympy.sstr(-ratio)} is missing or extra.")
        return f"This step is the previous one times {sympy.sstr(ratio)}: a missing or extra factor?"

    def _domain_hint(self, prev, cur, point) -> list[str]:
        """Holds for positive (or real) values only? Say so, and name the assumption to declare."""
        syms = numeric.symbols_in(prev, cur)
        loose = [s for s in syms if not s.is_positive]
        if not loose:
            return []
        for word, flags in (("real", {"real": True}), ("positive", {"positive": True})):
            targets = [s for s in loose if not (word == "real" and s.is_real)]
            if not targets:
                continue
            if word == "real" and not any(getattr(point.get(s), "is_real", True) is False for s in targets):
                continue  # the counterexample is real already
            overrides = {s: numeric._kind(sympy.Symbol(s.name, **flags, **({"integer": True} if s.is_integer else {})),
                                          False) for s in targets}
            try:
                v = self._numeric(prev, cur, random.Random(self.seed + 2), overrides)
            except CheckTimeout:
                return []
            if v.equal:
                names = ", ".join(s.name for s in targets)
                spec = ", ".join(f"'{s.name}': '{word}'" for s in targets)
                return [f"It holds for {word} {names} but not at this point: if {names} "
                        f"{'is' if len(targets) == 1 else 'are'} {word} here, declare it: "
                        f"assumptions={{{spec}}}."]
        return []

    def _run_steps(self, emit) -> None:
        for i, e in enumerate(self.expressions):  # printed here, in the bounded child: printing evaluates
            emit({"tex": i, "value": tex(e)})
        rng = random.Random(self.seed)
        try:
            with time_limit(self.step_seconds):
                prev = numeric.prepared(self.start)
        except (numeric.TooLarge, CheckTimeout) as err:
            why = f"too large to compute ({err})" if isinstance(err, numeric.TooLarge) else "it took too long"
            emit({"index": 1, "ok": False, "method": "undecided", "detail": f"the start could not be evaluated: {why}"})
            return
        prev_written = self.start
        for i, (cur_written, reason, subs) in enumerate(self.steps, start=1):
            self._deadline = time.monotonic() + self.step_seconds
            item = {"index": i, "trivial": False}
            try:
                cur = numeric.prepared(cur_written)
                lhs = numeric.prepared(prev.subs(subs)) if subs else prev
                if not subs:
                    item["trivial"] = numeric.light(prev_written) == numeric.light(cur_written)
                ok, how, counter = self._equal(lhs, cur, rng)
                if ok:
                    item.update(ok=True, method="numeric" if how.startswith("numeric") else "symbolic", detail=how)
                elif ok is None:
                    item.update(ok=False, method="undecided", detail=how)
                else:
                    item.update(ok=False, method="failed", detail=self._explain(i, reason, lhs, cur, how, counter))
            except numeric.TooLarge as err:
                item.update(ok=False, method="undecided", detail=f"too large to compute exactly ({err})")
            except CheckTimeout:
                item.update(ok=False, method="undecided", detail=f"it ran past {self.step_seconds:g} s")
            emit(item)
            if not item["ok"]:
                return
            prev, prev_written = cur, cur_written

    # -- checking
    def _bounded(self, work, n_items: int) -> list[dict]:
        """``work(emit)``, bounded: in a forked child where possible, else inline (soft limits only)."""
        items: list[dict] = []
        if not (self.isolate and isolation_available()):
            try:
                work(items.append)
            except (MemoryError, RecursionError) as err:
                items.append({"failure": "crashed", "detail": type(err).__name__})
            return items
        for item in stream(work, item_seconds=self.step_seconds + 2, memory_mb=self.memory_mb,
                           total_seconds=(self.step_seconds + 2) * max(n_items, 1) + 5):
            if "done" not in item:
                items.append(item)
        return items

    def check(self, budget: float | None = None) -> CheckResult:
        """Check every step; the message names the first one that does not follow or cannot be checked.

        ``budget``, if given, caps the seconds per step below ``step_seconds``.
        """
        if not self.steps:
            raise ValueError("a derivation needs at least one step")
        saved = self.step_seconds
        if budget is not None:
            self.step_seconds = max(0.5, min(self.step_seconds, budget))
        try:
            items = self._bounded(self._run_steps, 2 * len(self.steps) + 1)
        finally:
            self.step_seconds = saved
        return self._result(items)

    def _result(self, items: list[dict]) -> CheckResult:
        results: list[StepResult] = []
        by_index = {it["index"]: it for it in items if "index" in it}
        texts = {it["tex"]: it["value"] for it in items if "tex" in it}
        failure = next((it for it in items if "failure" in it), None)
        failed, message = None, ""
        for i, (_, reason, _) in enumerate(self.steps, start=1):
            it = by_index.get(i)
            if failed is not None:
                results.append(StepResult(i, reason, None, "skipped"))
                continue
            if it is None:  # the child stopped here: it ran out of time or memory on this step
                why = failure["detail"] if failure else "the checker stopped"
                it = {"ok": False, "method": "undecided", "detail": why}
            results.append(StepResult(i, reason, it["ok"], it["method"], it.get("detail", ""), it.get("trivial", False)))
            if not it["ok"]:
                failed = i
                if it["method"] == "undecided":
                    message = (f"step {i} ({reason}) could not be checked: {it['detail']}. It is not counted as "
                               f"correct; simplify the step or split it into smaller ones.")
                else:
                    message = it["detail"]
        if failed is None:
            message = f"all {len(self.steps)} steps follow" + (f" ({self.title})" if self.title else "")
        return CheckResult(ok=failed is None, failed_step=failed, message=message, steps=results,
                           latex=[texts.get(i, NOT_SHOWN) for i in range(len(self.steps) + 1)], title=self.title)

    def equivalent(self, a: Any, b: Any, budget: float | None = None) -> bool | None:
        """Whether ``a == b`` under this derivation's assumptions, decided as a step would be
        (None: could not be decided within the bound)."""
        a, b = self.read(a, new_names=True), self.read(b, new_names=True)
        saved = self.step_seconds
        if budget is not None:
            self.step_seconds = max(0.5, min(self.step_seconds, budget))

        def work(emit):
            self._deadline = time.monotonic() + self.step_seconds
            try:
                ok, _, _ = self._equal(numeric.prepared(a), numeric.prepared(b), random.Random(self.seed))
            except (numeric.TooLarge, CheckTimeout):
                ok = None
            emit({"index": 0, "equal": ok})

        try:
            items = self._bounded(work, 1)
        finally:
            self.step_seconds = saved
        return next((it["equal"] for it in items if "equal" in it), None)

    def verify(self) -> CheckResult:
        """:meth:`check`, raising :class:`DerivationError` on the first wrong step."""
        return self.check().raise_if_failed()

    def _repr_markdown_(self) -> str:
        shown = tex_all(self.expressions)  # bounded: printing a student's expression evaluates it
        lines = [r"\begin{aligned}", f"& {shown[0]} \\\\"]
        for tx, (_, reason, _) in zip(shown[1:], self.steps):
            lines.append(f"&={tx} && \\text{{{tex_text(reason)}}} \\\\")
        head = f"**{self.title}**\n\n" if self.title else ""
        return head + "$$\n" + "\n".join(lines + [r"\end{aligned}"]) + "\n$$"

    def __repr__(self) -> str:
        return f"Derivation({self.title or sympy.sstr(self.start)!s}, {len(self.steps)} steps)"
