"""Reading maths the way students write it, without ``eval``.

One parser for every input: LaTeX is first translated into the plain notation
(:mod:`vidlearn.derive.latex`), plain notation is normalised (Unicode operators and superscripts,
``^``, implicit multiplication, exact decimals), and the result is walked as a Python syntax tree
against a whitelist of numbers, names, arithmetic and functions. Nothing is evaluated while
reading (every node is built with sympy's evaluation off), so a huge number in a string costs
nothing until the checker, in its bounded child, is asked to compute it.

``e`` and ``i`` are Euler's number and the imaginary unit unless declared as symbols or used as a
summation index; ``ln`` is ``log``; ``π``, ``√``, ``²``, ``−``, ``×``, ``·`` mean what they look like.
A character that only looks like a Latin letter (a Cyrillic ``ԁ``) is refused, not read as a new name.
"""

from __future__ import annotations

import ast
import difflib
import io
import re
import tokenize
import unicodedata
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Iterable, Mapping

import sympy

from vidlearn.derive.bounds import CheckTimeout, time_limit
from vidlearn.derive.numeric import symbols_in

__all__ = [
    "parse", "read", "preview", "Reading", "symbols_with", "FUNCTIONS", "CONSTANTS", "unknown_names",
    "MAX_CHARS", "MAX_NODES",
]

FUNCTIONS: dict[str, Callable] = {
    "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "exp": sympy.exp, "log": sympy.log,
    "sqrt": sympy.sqrt, "Abs": sympy.Abs, "Sum": sympy.Sum, "Product": sympy.Product,
    "Matrix": sympy.Matrix, "factorial": sympy.factorial, "binomial": sympy.binomial,
    "Rational": sympy.Rational, "floor": sympy.floor, "ceiling": sympy.ceiling, "Min": sympy.Min,
    "Max": sympy.Max, "atan": sympy.atan, "sinh": sympy.sinh, "cosh": sympy.cosh, "tanh": sympy.tanh,
    "diag": sympy.diag, "KroneckerDelta": sympy.KroneckerDelta, "sign": sympy.sign,
}
# how students also spell them
ALIASES = {"ln": "log", "abs": "Abs", "min": "Min", "max": "Max", "ceil": "ceiling", "arctan": "atan",
           "sum": "Sum", "prod": "Product", "delta": "KroneckerDelta", "sgn": "sign"}
CONSTANTS = {"pi": sympy.pi, "E": sympy.E, "I": sympy.I, "oo": sympy.oo}
SOFT_CONSTANTS = {"e": sympy.E, "i": sympy.I}  # unless declared as symbols or used as an index
MAX_CHARS, MAX_NODES, MAX_EXPONENT = 2000, 600, 1000
MAX_MATRIX, MAX_MATRIX_POWER, MAX_INVERSE, MATRIX_SECONDS = 8, 8, 4, 1.0
_MAX_DECIMAL_EXPONENT = 300

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
    out = {}
    for name, spec in assumptions.items():
        if not (isinstance(name, str) and name.isidentifier() and name.isascii() and not name.startswith("_")):
            raise ValueError(f"a symbol's name must be a plain identifier, got {name!r}")
        out[name] = sympy.Symbol(name, **_assumption_kwargs(spec))
    return out


def shown(text: str, limit: int = 80) -> str:
    """``text`` quoted for a message, cut to ``limit`` characters (an error never echoes a whole input)."""
    return repr(text) if len(text) <= limit else repr(text[:limit - 20]) + f"... ({len(text)} characters)"


# --------------------------------------------------------------------------- characters

_GREEK = {
    "α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "ζ": "zeta", "η": "eta",
    "θ": "theta", "ι": "iota", "κ": "kappa", "λ": "lambda_", "μ": "mu", "ν": "nu", "ξ": "xi", "ρ": "rho",
    "σ": "sigma", "τ": "tau", "υ": "upsilon", "φ": "phi", "χ": "chi", "ψ": "psi", "ω": "omega",
    "Γ": "Gamma", "Δ": "Delta", "Θ": "Theta", "Λ": "Lambda", "Ξ": "Xi", "Σ": "Sigma", "Φ": "Phi",
    "Ψ": "Psi", "Ω": "Omega", "π": "pi", "ϵ": "epsilon", "ϕ": "phi",
}
_OPERATORS = {
    "−": "-", "–": "-", "×": "*", "·": "*", "⋅": "*", "∙": "*", "÷": "/", "∕": "/", "∞": "oo",
    "√": "√", "（": "(", "）": ")", "⁄": "/",
}
_SUPERSCRIPTS = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺⁽⁾ⁿⁱ", "0123456789-+()ni"))
_SUBSCRIPTS = dict(zip("₀₁₂₃₄₅₆₇₈₉ₖᵢⱼₙₜ", "0123456789kijnt"))


def _normalise_characters(text: str) -> str:
    """Unicode maths to plain ASCII notation; look-alike letters refused with their name."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in _SUPERSCRIPTS:  # a run of superscripts is one exponent: x²³ -> x**(23)
            j = i
            while j < len(text) and text[j] in _SUPERSCRIPTS:
                j += 1
            out.append("**(" + "".join(_SUPERSCRIPTS[c] for c in text[i:j]) + ")")
            i = j
            continue
        if ch in _SUBSCRIPTS:  # x₁ -> x_1, d_ₖ -> d_k
            j = i
            while j < len(text) and text[j] in _SUBSCRIPTS:
                j += 1
            out.append(("" if out and out[-1].endswith("_") else "_") + "".join(_SUBSCRIPTS[c] for c in text[i:j]))
            i = j
            continue
        if unicodedata.decomposition(ch).startswith("<fraction>"):  # ½, ¾, ⅓: a number, written n/d
            out.append(_vulgar_fraction(text, i))
            i += 1
            continue
        if ch in _GREEK:
            # its own word (2σ is 2*sigma, σx is sigma*x), but a subscript stays attached: σ_q, d_σ
            before = "" if not out or out[-1][-1:] in ("_", " ", "") or not out[-1][-1:].isalnum() else " "
            nxt = text[i + 1] if i + 1 < len(text) else ""
            after = " " if nxt.isalnum() and nxt not in _SUPERSCRIPTS else ""
            out.append(before + _GREEK[ch] + after)
        else:
            out.append(_OPERATORS.get(ch, ch))
        i += 1
    text = "".join(out)
    text = re.sub(r"√\s*\(", "sqrt(", text)  # √(x + 1)
    text = re.sub(r"√\s*(\d+(?:\.\d+)?|[A-Za-z_][A-Za-z0-9_]*)", r"sqrt(\1)", text)  # √x, √2, √d_k; √2x is √2·x
    text = unicodedata.normalize("NFKC", text)  # full-width letters and digits to ASCII
    for col, ch in enumerate(text, start=1):
        if not ch.isascii():
            name = unicodedata.name(ch, "unnamed character")
            base = _CONFUSABLE.get(ch) or unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
            like = f" It looks like {base!r} but is a different character: type it from the keyboard." if base else ""
            raise ValueError(f"character {ch!r} ({name}, U+{ord(ch):04X}) at column {col} is not part of the "
                             f"notation.{like}")
    return text


def _vulgar_fraction(text: str, i: int) -> str:
    """``½`` (at ``text[i]``) as ``(1/2)``, with a ``*`` after a name or a bracket (``c½`` is ``c*(1/2)``).

    Refused where the reading would be a guess: after a digit (``2½`` is the mixed number 5/2 on paper
    but 2·½ to a parser) or before one, and for ``⅟``, which has no denominator.
    """
    ch = text[i]
    num, _, den = unicodedata.normalize("NFKC", ch).partition("\u2044")
    plain = f"{num}/{den}" if num.isdigit() and den.isdigit() else None
    before = text[:i].rstrip()[-1:]
    after = text[i + 1:i + 2]
    where = f"character {ch!r} ({unicodedata.name(ch, 'a fraction')}) at column {i + 1}"
    if plain is None:
        raise ValueError(f"{where} is not a number: write the fraction with '/', e.g. 1/x")
    if before.isdigit() or before == "." or after.isdigit() or after == ".":
        raise ValueError(f"{where} touches a digit, which is ambiguous (2½ is 2 + 1/2 on paper, 2·(1/2) to a "
                         f"parser): write it as {plain} with the operator you mean, e.g. 2 + {plain}")
    star = "*" if before and (before.isalnum() or before in "_)]") else ""
    return f"{star}({plain})"


_FUNCTION_POWER = re.compile(r"\b([A-Za-z]+)\s*(?:\^|\*\*)\s*(?:\((\d+)\)|(\d+))\s*\(")


def _function_powers(text: str) -> str:
    """``sin^2(x)`` and ``sin²(x)`` -> ``sin(x)**2``, as in maths books (the power of the value)."""
    while True:
        m = next((m for m in _FUNCTION_POWER.finditer(text) if m.group(1) in FUNCTIONS or m.group(1) in ALIASES),
                 None)
        if m is None:
            return text
        depth, end = 0, None
        for j in range(m.end() - 1, len(text)):
            depth += {"(": 1, ")": -1}.get(text[j], 0)
            if depth == 0:
                end = j
                break
        if end is None:
            return text  # unbalanced: the tokenizer says so
        power = m.group(2) or m.group(3)
        text = f"{text[:m.start()]}{m.group(1)}{text[m.end() - 1:end + 1]}**{power}{text[end + 1:]}"


# letters that render like Latin ones (the ones a student is likely to paste by accident)
_CONFUSABLE = dict(zip("аеорсухіјԁһкмтвнᴅ", "aeopcyxijdhkmtbHD"))


# --------------------------------------------------------------------------- tokens


def _group_start(kinds: list[str]) -> int:
    """Index where the last token or bracket group begins (with the function it calls, if any)."""
    j = len(kinds) - 1
    if kinds[j] == "close":
        depth = 0
        while j >= 0:
            depth += {"close": 1, "open": -1}.get(kinds[j], 0)
            if depth == 0:
                break
            j -= 1
        if j > 0 and kinds[j - 1] == "func":
            j -= 1
    return j


def _atom_start(pieces: list[str], kinds: list[str]) -> int:
    """Index where the last operand of ``pieces`` begins: a group, with the base of a power before it."""
    j = _group_start(kinds)
    while j > 1 and pieces[j - 1] == "**":  # x**2 is one operand: the base belongs to it
        j = _atom_start(pieces[:j - 1], kinds[:j - 1])
    return j


def _normalise_tokens(text: str, functions: set[str], declared: set[str] = frozenset(),
                      known: set[str] | None = None) -> tuple[str, list[str]]:
    """``^`` -> ``**``, implicit products made explicit, ``n!`` -> ``factorial(n)``, decimals made
    exact, ``ln(`` -> ``log(``, ``ab`` -> ``a*b`` where both are ``known`` names; notes on what was read.

    Refused because a student could mean two things by them: a name before a bracket that is not a
    declared symbol (``Var(2X)``, ``f(x + y)``, ``E(X)``: a function of ours, or a product?), a
    division by an implicit product (``a/2c``: ``a/(2c)`` or ``(a/2)c``?), ``2e-1`` (``2e - 1`` or
    0.2?), ``n!!`` and ``#``."""
    notes: list[str] = []
    if "#" in text:
        raise ValueError(f"# is not part of the notation (in {shown(text)})")
    text = text.replace("\n", " ").replace("\r", " ").replace("\t", " ")
    try:
        tokens = [t for t in tokenize.generate_tokens(io.StringIO(text).readline)
                  if t.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.INDENT,
                                    tokenize.DEDENT, tokenize.COMMENT)
                  and not (t.type == tokenize.ERRORTOKEN and not t.string.strip())]
    except (tokenize.TokenError, IndentationError, SyntaxError) as err:
        raise ValueError(f"cannot read {shown(text)}: unbalanced brackets or an unfinished expression") from err
    pieces: list[str] = []
    kinds: list[str] = []  # per piece: 'num', 'name', 'func', 'close', 'open' or 'other'
    implicit = False
    for n, tok in enumerate(tokens):
        s = tok.string
        nxt = tokens[n + 1].string if n + 1 < len(tokens) else ""
        if s == "!" and tok.type in (tokenize.ERRORTOKEN, tokenize.OP):
            if nxt == "!":
                raise ValueError(f"!! in {shown(text)}: write (n!)! for the factorial of a factorial; the double "
                                 f"factorial is not part of the notation")
            _postfix_factorial(pieces, kinds, text)
            continue
        if tok.type == tokenize.ERRORTOKEN:
            raise ValueError(f"cannot read {s!r} in {shown(text)}" + (": write Abs(x) for |x|" if s == "|" else ""))
        if s == "^":
            s = "**"
        if s == "|":
            raise ValueError(f"write Abs(x) for |x| (in {shown(text)})")
        parts = None
        if tok.type == tokenize.NUMBER:
            kind = "num"
            if s[-1] in "jJ":
                raise ValueError(f"{s!r} is Python's complex literal: write {s[:-1]}*I")
            if re.search(r"[eE]", s) and not s.lower().startswith("0x"):
                mantissa, exponent = s.lower().split("e", 1)
                raise ValueError(f"{s!r} is ambiguous (Euler's number, or a power of 10?): write "
                                 f"{mantissa}*10**({exponent}), or put * or spaces around e")
            s = _exact_number(s)
            s = f"({s})" if "/" in s else s
        elif tok.type == tokenize.NAME:
            if s in ALIASES and nxt == "(":
                notes.append(f"{s}(...) read as {ALIASES[s]}(...)")
                s = ALIASES[s]
            kind = "func" if s in functions and nxt == "(" else "name"
            if (s in functions or s in ALIASES) and nxt != "(":
                raise ValueError(f"write {s}(...) with parentheses: {s} {nxt} is ambiguous"
                                 if nxt and nxt not in ")],+-*/" else f"{s} is a function; call it, e.g. {s}(x)")
            if kind == "name" and nxt == "(" and s not in declared and s not in (known or ()) and s != "pi":
                if s in SOFT_CONSTANTS or s in CONSTANTS:
                    raise ValueError(f"{s}(...) in {shown(text)} would be read as {s} times (...), with {s} the "
                                     f"constant; an expectation or a function is not part of the notation: give the "
                                     f"quantity a name of its own (E_X2), or write {s}*(...)")
                raise ValueError(f"{s}(...) in {shown(text)}: {s} is not a function of the notation"
                                 + (f" (did you mean {_suggest(s, functions)}?)" if _suggest(s, functions) else "")
                                 + f"; for a product write {s}*(...)")
            if kind == "name" and known is not None and s not in known and s not in CONSTANTS:
                split = _split(s, known)
                if split:
                    notes.append(f"{s} read as {'*'.join(split)}")
                    parts = [split[0]] + [x for p in split[1:] for x in ("*", p)]
        elif s in (")", "]"):
            kind = "close"
        elif s in ("(", "["):
            kind = "open"
        else:
            kind = "other"
        if kinds and kinds[-1] in ("num", "name", "close") and kind in ("num", "name", "func", "open") and s != "[":
            if kinds[-1] == "num" and kind == "num":
                raise ValueError(f"two numbers side by side in {shown(text)}: write * between them")
            _refuse_division_by_product(pieces, kinds, text)
            pieces.append("*")
            kinds.append("other")
            implicit = True
        parts = parts or [s]
        if len(parts) > 1:
            _refuse_division_by_product(pieces + [parts[0]], kinds + ["name"], text)
        for p in parts:
            pieces.append(p)
            kinds.append(kind if p != "*" else "other")
    if implicit:
        notes.append("implicit multiplication made explicit")
    return " ".join(pieces), notes


def _refuse_division_by_product(pieces: list[str], kinds: list[str], text: str) -> None:
    """``a/2c``: is it ``a/(2c)`` or ``(a/2)c``? Refused, with both readings."""
    j = _atom_start(pieces, kinds)
    if j > 0 and pieces[j - 1] == "/":
        raise ValueError(f"{shown(text)} divides by an implicit product, which reads two ways (a/2c: a/(2c) or "
                         f"(a/2)c): write the brackets, or * after the division")


def _postfix_factorial(pieces: list[str], kinds: list[str], text: str) -> None:
    """``n!`` and ``(n + 1)!``: wrap the atom before the ``!`` in ``factorial(...)``."""
    if not kinds or kinds[-1] not in ("num", "name", "close"):
        raise ValueError(f"a ! must follow a number, a name or a bracket in {shown(text)}")
    start = _group_start(kinds)  # n! binds tighter than a power: x**n! is x**(n!)
    atom = " ".join(pieces[start:])
    del pieces[start:], kinds[start:]
    pieces.append(f"factorial({atom})")
    kinds.append("close")


def _exact_number(s: str) -> str:
    """A numeric literal as an exact integer or fraction: 0.1 is 1/10, not the float near it."""
    s = s.replace("_", "")
    if re.fullmatch(r"\d+", s) or re.fullmatch(r"0[xXoObB][0-9a-fA-F]+", s):
        return str(int(s, 0)) if not s.isdigit() else s
    m = re.fullmatch(r"(\d*\.?\d*)(?:[eE]([+-]?\d+))?", s)
    if not m:
        raise ValueError(f"cannot read the number {s!r}")
    if m.group(2) and abs(int(m.group(2))) > _MAX_DECIMAL_EXPONENT:
        raise ValueError(f"the number {s!r} is too large or too small (exponent limit {_MAX_DECIMAL_EXPONENT})")
    if len(s) > 60:
        raise ValueError(f"the decimal {s[:20]}... has too many digits (limit 60)")
    f = Fraction(s)
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


# --------------------------------------------------------------------------- the syntax tree


def _bound_names(tree: ast.AST) -> set[str]:
    """Names used as the index of a Sum or Product: ``Sum(x_i, (i, 1, n))`` binds ``i``."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("Sum", "Product"):
            for lim in node.args[1:]:
                if isinstance(lim, ast.Tuple) and lim.elts and isinstance(lim.elts[0], ast.Name):
                    out.add(lim.elts[0].id)
    return out


class _Builder:
    def __init__(self, text: str, symbols: dict, soft: set[str]):
        self.text, self.symbols, self.soft = text, symbols, soft
        self.notes: list[str] = []

    def fail(self, what: str):
        raise ValueError(f"{what} in {shown(self.text)}")

    def build(self, node: ast.AST):
        b = self.build
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int):
                self.fail(f"only numbers are allowed as constants, got {node.value!r}")
            return sympy.Integer(node.value)
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = b(node.operand)
            if isinstance(node.op, ast.UAdd):
                return v
            if isinstance(v, sympy.MatrixBase):
                return -v
            return sympy.Integer(-v) if isinstance(v, sympy.Integer) else sympy.Mul(-1, v, evaluate=False)
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, (ast.Tuple, ast.List)):
            items = [b(e) for e in node.elts]
            return tuple(items) if isinstance(node, ast.Tuple) else list(items)
        if isinstance(node, ast.Call):
            return self.call(node)
        self.fail(f"{type(node).__name__} is not allowed in a math expression")

    def name(self, name: str):
        if name.startswith("_"):
            self.fail(f"name {name!r} is not allowed")
        if name in self.symbols:
            return self.symbols[name]
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in self.soft:
            self.notes.append(f"{name} read as {'Euler’s number' if name == 'e' else 'the imaginary unit'}")
            return SOFT_CONSTANTS[name]
        if name in FUNCTIONS:
            self.fail(f"{name} is a function; call it, e.g. {name}(x),")
        self.symbols[name] = sympy.Symbol(name)
        return self.symbols[name]

    def binop(self, node: ast.BinOp):
        a, b = self.build(node.left), self.build(node.right)
        op = type(node.op)
        matrix = any(isinstance(x, sympy.MatrixBase) for x in (a, b))
        if not matrix and any(isinstance(x, (tuple, list)) for x in (a, b)):
            self.fail("arithmetic on a tuple or list is not allowed")
        if op is ast.Pow:
            _check_power_size(a, b, self.text)
        if matrix:
            if op is ast.Pow:
                if not (isinstance(b, sympy.Integer) and abs(int(b)) <= MAX_MATRIX_POWER):
                    self.fail(f"a matrix power must be a whole number up to {MAX_MATRIX_POWER}")
            ops = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b,
                   ast.MatMult: lambda: a * b, ast.Div: lambda: a / b, ast.Pow: lambda: a**b}
            if op not in ops:
                self.fail(f"operator {op.__name__} is not allowed on matrices")
            if (op is ast.Div or (op is ast.Pow and int(b) < 0)) and max(getattr(b if op is ast.Div else a, "shape",
                                                                                 (0, 0))) > MAX_INVERSE:
                self.fail(f"inverses of matrices up to {MAX_INVERSE}x{MAX_INVERSE} only")
            try:
                # matrix arithmetic is carried out while reading: bounded, as symbolic entries can swell
                with time_limit(MATRIX_SECONDS):
                    return ops[op]()
            except CheckTimeout:
                self.fail(f"this matrix arithmetic takes more than {MATRIX_SECONDS:g} s to carry out; use smaller "
                          f"matrices or fewer symbols")
            except (ValueError, TypeError, ArithmeticError) as err:  # shapes that do not fit, singular
                self.fail(f"cannot combine these matrices ({str(err)[:120]})")
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
        self.fail(f"operator {op.__name__} is not allowed")

    def call(self, node: ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            shown = ast.unparse(node.func)
            self.fail(f"function {shown!r} is not allowed; allowed: {sorted(FUNCTIONS)}")
        if node.keywords:
            self.fail("keyword arguments are not allowed")
        name = node.func.id
        args = [self.build(a) for a in node.args]
        if name in ("Matrix", "diag"):
            return _matrix(name, args, self.text)
        if any(isinstance(a, (sympy.MatrixBase, list)) for a in args):
            self.fail(f"{name} of a matrix or list is not allowed")
        if name in ("Sum", "Product"):
            if len(args) < 2 or not all(isinstance(t, tuple) and len(t) == 3 and isinstance(t[0], sympy.Symbol)
                                        for t in args[1:]):
                self.fail(f"write {name}(term, (index, lower, upper))")
            args = [args[0]] + [sympy.Tuple(*t) for t in args[1:]]
        elif any(isinstance(a, tuple) for a in args):
            self.fail(f"{name} takes expressions, not tuples")
        if name in ("factorial", "binomial"):
            for a in args:
                size = _log10_bound(a) if isinstance(a, sympy.Basic) else None
                if size is not None and size > 3.0001:
                    self.fail(f"{name} of {sympy.sstr(a)} is too large (limit {MAX_EXPONENT})")
        if name == "Rational" and not all(isinstance(a, sympy.Integer) for a in args):
            self.fail("Rational takes two whole numbers")
        with sympy.evaluate(False):  # built as written: nothing is computed while reading
            return FUNCTIONS[name](*args)


def _matrix(name: str, args: list, text: str):
    rows = args[0] if name == "Matrix" and len(args) == 1 else args
    if name == "Matrix":
        if len(args) != 1 or not isinstance(rows, list):
            raise ValueError(f"write Matrix([[a, b], [c, d]]) in {shown(text)}")
        rows = [r if isinstance(r, list) else [r] for r in rows]
        if not rows or len({len(r) for r in rows}) != 1:
            raise ValueError(f"a matrix needs rows of equal length in {shown(text)}")
        if len(rows) > MAX_MATRIX or len(rows[0]) > MAX_MATRIX:
            raise ValueError(f"matrices up to {MAX_MATRIX}x{MAX_MATRIX}, please, in {shown(text)}")
        if any(isinstance(x, (list, tuple, sympy.MatrixBase)) for r in rows for x in r):
            raise ValueError(f"matrix entries must be expressions in {shown(text)}")
        return sympy.Matrix(rows)
    if len(rows) > MAX_MATRIX or any(isinstance(x, (list, tuple, sympy.MatrixBase)) for x in rows):
        raise ValueError(f"diag takes up to {MAX_MATRIX} expressions in {shown(text)}")
    return sympy.diag(*rows)


def _log10_bound(e) -> float | None:
    """An upper bound on log10|e| for a tree of plain numbers (None if it holds anything else)."""
    import math

    if isinstance(e, sympy.Integer):
        return math.log10(abs(int(e)) + 1) if abs(e) < 10**300 else len(str(abs(int(e))))
    if isinstance(e, sympy.Rational):
        return max(_log10_bound(sympy.Integer(e.p)), _log10_bound(sympy.Integer(e.q)))
    if isinstance(e, (sympy.Add, sympy.Mul)):
        parts = [_log10_bound(x) for x in e.args]
        if any(p is None for p in parts):
            return None
        return sum(parts) + 1 if isinstance(e, sympy.Mul) else max(parts) + math.log10(len(parts))
    if isinstance(e, sympy.Pow):
        base, exp = _log10_bound(e.args[0]), _log10_bound(e.args[1])
        if base is None or exp is None:
            return None
        return base * 10 ** min(exp, 300)
    return None


def _check_power_size(a, b, text: str) -> None:
    """Refuse numeric powers whose exact value would be enormous (``9**9**9``), as early as reading.

    The checker guards again after every evaluation and substitution (``(x - x + 2)**10**10``);
    this catches the plain case with a message that points at the input.
    """
    size = _log10_bound(sympy.Pow(a, b, evaluate=False)) if isinstance(a, sympy.Basic) and isinstance(
        b, sympy.Basic) else None
    if size is not None and size > 20000 and _log10_bound(a) and _log10_bound(a) > 0.302:
        raise ValueError(f"the power ({sympy.sstr(a)})**({sympy.sstr(b)}) is too large to compute exactly "
                         f"(more than 20000 digits) in {shown(text)}")


# --------------------------------------------------------------------------- reading


@dataclass
class Reading:
    """How a string was understood: the expression, the plain notation it was read as, notes
    (implicit products, constants, LaTeX), and the names that are neither known symbols nor functions."""

    text: str
    expr: Any
    notation: str
    notes: list[str] = field(default_factory=list)
    unknown: list[tuple[str, str | None]] = field(default_factory=list)  # (name, closest known name)

    def _repr_markdown_(self) -> str:
        from vidlearn.derive.display import escape_markdown, tex_all

        lines = [f"$${tex_all([self.expr])[0]}$$", "", f"read as: {escape_markdown(self.notation)}"]
        names = sorted({s.name for s in _symbols(self.expr)})
        if names:
            lines.append("symbols: " + ", ".join(escape_markdown(n) for n in names))
        lines += [f"- {escape_markdown(n)}" for n in self.notes]
        lines += [f"- ⚠️ {escape_markdown(unknown_message(n, s))}" for n, s in self.unknown]
        return "\n".join(lines)

    def __str__(self) -> str:
        lines = [f"{shown(self.text)} read as {self.notation}"]
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  warning: {unknown_message(n, s)}" for n, s in self.unknown]
        return "\n".join(lines)


def _symbols(e) -> set:
    return set(symbols_in(e))


def unknown_message(name: str, suggestion: str | None) -> str:
    return f"unknown name `{name}`" + (f": did you mean `{suggestion}`?" if suggestion else
                                        ": it is not a symbol of this derivation")


def _suggest(name: str, known: Iterable[str]) -> str | None:
    known = sorted(set(known))
    squash = {k.replace("_", "").lower(): k for k in known}
    if name.replace("_", "").lower() in squash:
        return squash[name.replace("_", "").lower()]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return close[0] if close else None


def unknown_names(expr, known: Iterable[str]) -> list[tuple[str, str | None]]:
    """Free names of ``expr`` not in ``known``, each with the closest known name (or function)."""
    known = set(known)
    out = []
    for s in sorted(_symbols(expr), key=lambda s: s.name):
        if s.name not in known:
            out.append((s.name, _suggest(s.name, known | set(FUNCTIONS) | set(ALIASES))))
    return out


def read(text: str, symbols: Mapping[str, sympy.Symbol] | None = None, *, known: Iterable[str] | None = None
         ) -> Reading:
    """Read ``text`` (plain notation, Unicode maths or LaTeX) into a :class:`Reading`.

    ``symbols`` maps declared names to their sympy symbols (new names become plain symbols);
    with ``known``, free names outside it are listed in ``Reading.unknown`` with a suggestion.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected a string expression, got {type(text).__name__}")
    if len(text) > MAX_CHARS:
        raise ValueError(f"expression is {len(text)} characters long; the limit is {MAX_CHARS}")
    if not text.strip():
        raise ValueError("an empty expression")
    notes = []
    plain = text
    if "\\" in text or "{" in text:  # LaTeX, or LaTeX's braces typed without a command: e^{2x}
        from vidlearn.derive.latex import to_notation

        plain = to_notation(text)
        notes.append("read as LaTeX")
    plain = _function_powers(_normalise_characters(plain))
    declared = set(symbols or {})
    plain, more = _normalise_tokens(plain, set(FUNCTIONS), declared,
                                    set(known) | declared if known is not None else None)
    notes += more
    try:
        tree = ast.parse(plain.strip(), mode="eval")
    except SyntaxError as e:
        raise ValueError(f"cannot parse {shown(text)}: {e.msg}") from None
    n_nodes = sum(1 for _ in ast.walk(tree))
    if n_nodes > MAX_NODES:
        raise ValueError(f"expression has {n_nodes} syntax nodes; the limit is {MAX_NODES}")
    symbols = dict(symbols or {})
    soft = {n for n in SOFT_CONSTANTS if n not in symbols} - _bound_names(tree)
    builder = _Builder(text, symbols, soft)
    try:
        expr = builder.build(tree.body)
    except ValueError:
        raise
    except RecursionError:
        raise ValueError(f"{shown(text)} is nested too deeply") from None
    except (TypeError, AttributeError, IndexError, ArithmeticError, NotImplementedError) as err:
        # e.g. KroneckerDelta(i) with one index: sympy's own complaint, reported as a reading error
        raise ValueError(f"cannot build {shown(text)}: {type(err).__name__}: {err}"[:300]) from None
    if isinstance(expr, list):
        raise ValueError(f"a list is not an expression; for a matrix write Matrix([...]) in {shown(text)}")
    if isinstance(expr, tuple):
        raise ValueError(f"a tuple is not an expression in {shown(text)}")
    notes += sorted(set(builder.notes))
    unknown = []
    if known is not None:
        unknown = unknown_names(expr, known)
    return Reading(text, expr, ast.unparse(tree), notes, unknown)


def _split(name: str, known: set[str]) -> list[str] | None:
    """``ab`` as ``a``, ``b`` when both are known names (and ``ab`` is not): the fewest parts.
    Names longer than 30 characters are not split (the search is quadratic in the length)."""
    if len(name) > 30:
        return None
    best: dict[int, list[str]] = {0: []}
    for end in range(1, len(name) + 1):
        for start in range(end):
            part = name[start:end]
            if start in best and part in known and (end not in best or len(best[start]) + 1 < len(best[end])):
                best[end] = best[start] + [part]
    parts = best.get(len(name))
    return parts if parts and len(parts) > 1 else None


def parse(text: str, symbols: Mapping[str, sympy.Symbol] | None = None, *, timeout: float | None = None
          ) -> sympy.Basic:
    """The expression ``text`` stands for (see :func:`read`); ``ValueError`` with the reason if
    it cannot be read. ``timeout`` is accepted for compatibility: reading is linear in the input's
    size, and nothing is computed while reading."""
    return read(text, symbols).expr


def preview(text: str, assumptions: Mapping[str, Any] | None = None, *, known: Iterable[str] | None = None
            ) -> Reading:
    """Show how ``text`` is read: rendered, with its symbols, notes and unknown names. In a notebook
    the result displays itself; in a terminal ``print`` it."""
    symbols = symbols_with(assumptions or {})
    return read(text, symbols, known=set(known) | set(symbols) if known is not None else None)
