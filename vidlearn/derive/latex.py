"""LaTeX to the course's plain notation, so that one parser (and one whitelist) reads both.

``\\frac{a}{b}`` -> ``((a)/(b))``, ``\\sqrt{x}`` -> ``sqrt(x)``, ``\\sum_{i=1}^{d_k} t`` ->
``Sum(t, (i, 1, d_k))``, ``\\delta_{ij}`` -> ``KroneckerDelta(i, j)``, ``x^{2}`` -> ``x**(2)``,
``\\sigma_q`` -> ``sigma_q``, ``|x|`` -> ``Abs(x)``. As in LaTeX, adjacent letters are a product
(``2xy`` is ``2*x*y``); a subscript belongs to the letter before it. The output is plain
notation, read by :func:`vidlearn.derive.notation.read` like anything a student types.
A command outside this list is refused by name.
"""

from __future__ import annotations

import re

from vidlearn.derive.notation import shown

__all__ = ["to_notation"]

_GREEK = {
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "mu", "nu",
    "xi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega", "Gamma", "Delta", "Theta",
    "Lambda", "Xi", "Sigma", "Phi", "Psi", "Omega",
}
_RENAMED = {"lambda": "lambda_", "varepsilon": "epsilon", "varphi": "phi", "vartheta": "theta", "pi": "pi",
            "infty": "oo", "cdot": "*", "times": "*", "ast": "*", "div": "/", "ln": "log", "arctan": "atan"}
_FUNCTIONS = {"sin", "cos", "tan", "exp", "log", "sinh", "cosh", "tanh", "atan", "max", "min"}
_SPACES = {",", ";", "!", ":", " ", "quad", "qquad", "displaystyle", "textstyle", "left", "right", "big",
           "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr"}
_TOKEN = re.compile(r"\\([A-Za-z]+|.)|(.)", re.S)


class _Reader:
    def __init__(self, text: str):
        self.text = text
        self.toks = [("cmd", m.group(1)) if m.group(1) is not None else ("chr", m.group(2))
                     for m in _TOKEN.finditer(text)]
        self.pos = 0

    def fail(self, why: str):
        raise ValueError(f"cannot read the LaTeX {shown(self.text)}: {why}")

    def peek(self, skip_space: bool = True):
        p = self.pos
        while skip_space and p < len(self.toks) and self.toks[p] == ("chr", " "):
            p += 1
        return self.toks[p] if p < len(self.toks) else (None, None)

    def next(self):
        tok = self.peek()
        if tok == (None, None):
            self.fail("it ends too early")
        while self.toks[self.pos] == ("chr", " "):
            self.pos += 1
        self.pos += 1
        return tok

    def group(self) -> str:
        """``{...}`` or a single token, as notation."""
        kind, val = self.next()
        if (kind, val) == ("chr", "{"):
            out = self.sequence(stop="}")
            self.next()
            return out
        if kind == "chr" and val.isdigit():  # \frac12: one digit a group, as in LaTeX
            return val
        self.pos -= 1
        return self.atom()

    def sequence(self, stop: str | None = None, term_only: bool = False) -> str:
        """Tokens up to ``stop`` (not consumed); with ``term_only``, also up to a top-level + or -."""
        out: list[str] = []
        while True:
            kind, val = self.peek()
            if kind is None or (kind == "chr" and val == stop) or (kind == "chr" and val in ")]" and stop in ")]}|"
                                                                   and term_only):
                break
            if term_only and kind == "chr" and val in "+-=" and out:
                break
            if kind == "chr" and val == "|" and stop == "|":
                break
            out.append(self.atom())
        return " ".join(out)

    def atom(self) -> str:
        kind, val = self.next()
        if kind == "chr":
            if val in "{(|":
                close = {"{": "}", "(": ")", "|": "|"}[val]
                inner = self.sequence(stop=close)
                if self.peek()[1] != close:
                    self.fail(f"a {val} is not closed")
                self.next()
                return self.scripts(f"Abs({inner})" if val == "|" else f"({inner})")
            if val.isalpha():
                word, p = val, self.pos  # a function typed without its backslash: sin(x), ln(x)
                while p < len(self.toks) and self.toks[p][0] == "chr" and self.toks[p][1].isalpha():
                    word, p = word + self.toks[p][1], p + 1
                if word in _FUNCTIONS or word in ("ln", "sqrt"):
                    self.pos = p
                    return _RENAMED.get(word, word)
                return self.scripts(val)
            if val.isdigit() or val == ".":
                digits = val
                while self.pos < len(self.toks) and self.toks[self.pos][0] == "chr" and (
                        self.toks[self.pos][1].isdigit() or self.toks[self.pos][1] == "."):
                    digits += self.toks[self.pos][1]
                    self.pos += 1
                return self.scripts(digits)
            if val in "^_":
                self.fail(f"a {val} with nothing before it")
            if val in "+-*/,=)":
                if val == "=":
                    self.fail("write one expression per step, without =")
                return val
            if val == "!":
                return "!"
            if val in "}]":
                self.fail(f"an unexpected {val}")
            if val == "[":
                return "("
            self.fail(f"the character {val!r}")
        return self.command(val)

    def scripts(self, base: str) -> str:
        """Subscripts join the name (``d_{k}`` -> ``d_k``); superscripts are powers."""
        while True:
            kind, val = self.peek(skip_space=False)
            if (kind, val) == ("chr", "_"):
                self.next()
                sub = re.sub(r"[\s{}]", "", self._raw_group())
                if not re.fullmatch(r"[A-Za-z0-9]+", sub) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", base):
                    self.fail(f"the subscript _{sub} (a subscript is part of a name: d_k, sigma_q)")
                base = f"{base}_{sub}"
            elif (kind, val) == ("chr", "^"):
                self.next()
                base = f"{base}**({self.group()})"
            else:
                return base

    def _raw_group(self) -> str:
        kind, val = self.next()
        if (kind, val) != ("chr", "{"):
            return val if kind == "chr" else _RENAMED.get(val, val)
        depth, out = 1, []
        while True:
            kind, val = self.next()
            if (kind, val) == ("chr", "{"):
                depth += 1
            elif (kind, val) == ("chr", "}"):
                depth -= 1
                if depth == 0:
                    return "".join(out)
            out.append(val if kind == "chr" else _RENAMED.get(val, val))

    def command(self, name: str) -> str:
        if name in _SPACES:
            kind, val = self.peek()
            if name in ("left", "right") and (kind, val) in (("chr", "."),):
                self.next()
            return ""
        if name in ("{", "}"):
            return "(" if name == "{" else ")"
        if name in ("frac", "dfrac", "tfrac"):
            num, den = self.group(), self.group()
            if re.fullmatch(r"d(\s.*)?", num.strip()) and re.fullmatch(r"d\s*[A-Za-z]\w*(\*\*\(\d+\))?", den.strip()):
                self.fail("\\frac{d...}{dx} is a derivative, which is not part of the notation (it would read as a "
                          "fraction in which the d's cancel): write the derivative's result")
            return self.scripts(f"(({num})/({den}))")
        if name == "binom":
            n, k = self.group(), self.group()
            return self.scripts(f"binomial({n}, {k})")
        if name == "sqrt":
            if self.peek()[1] == "[":
                self.next()
                degree = self.sequence(stop="]")
                self.next()
                return self.scripts(f"(({self.group()})**(1/({degree})))")
            return self.scripts(f"sqrt({self.group()})")
        if name in ("sum", "prod"):
            return self.big_operator("Sum" if name == "sum" else "Product")
        if name in ("lfloor", "lceil"):
            close = "rfloor" if name == "lfloor" else "rceil"
            out = []
            while self.peek() != ("cmd", close):
                if self.peek()[0] is None:
                    self.fail(f"\\{name} without \\{close}")
                out.append(self.atom())
            self.next()
            return self.scripts(f"{'floor' if name == 'lfloor' else 'ceiling'}({' '.join(out)})")
        if name == "delta" and self.peek(skip_space=False) == ("chr", "_"):
            self.next()
            idx = [x for x in re.split(r"[\s,]+|(?<=[A-Za-z])(?=[A-Za-z])", self._raw_group()) if x]
            if len(idx) != 2:
                self.fail("write the Kronecker delta as \\delta_{ij}")
            return self.scripts(f"KroneckerDelta({idx[0]}, {idx[1]})")
        if name in ("mathrm", "operatorname", "text", "mathit"):
            word = re.sub(r"\s", "", self._raw_group())
            return self.scripts(word)
        if name in _FUNCTIONS or name in ("ln", "arctan"):
            fn = _RENAMED.get(name, name)
            power = None
            if self.peek(skip_space=False) == ("chr", "^"):
                self.next()
                power = self.group()
                if re.sub(r"[\s()]", "", power).startswith("-"):
                    self.fail(f"\\{name}^{{{power}}} reads two ways (the inverse function, or 1/\\{name}): write "
                              f"1/\\{name}(x), or \\{name}(x)^{{-1}}; inverse functions other than \\arctan are "
                              f"not part of the notation")
            if self.peek() in (("chr", "("), ("cmd", "left")):
                arg = self.atom() if self.peek() == ("chr", "(") else (self.next(), self.atom())[1]
            else:
                arg = f"({self.function_argument()})"
            call = f"{fn}{arg}"
            return f"({call})**({power})" if power else call
        if name in _GREEK or name in _RENAMED:
            return self.scripts(_RENAMED.get(name, name))
        self.fail(f"the command \\{name} is not supported")

    def function_argument(self) -> str:
        """The argument of ``\\sin 2x`` without brackets: the product of the atoms that follow, up to an
        operator or another function (``\\sin 2x = \\sin(2x)``, ``\\sin x \\cos x = \\sin(x)\\cos(x)``)."""
        out = [self.atom()]
        while True:
            kind, val = self.peek()
            if kind == "chr" and (val.isalnum() or val == "."):
                out.append(self.atom())
            elif kind == "cmd" and (val in _GREEK or val in ("pi",)):
                out.append(self.atom())
            else:
                return " ".join(out)

    def big_operator(self, fn: str) -> str:
        lower = upper = None
        while self.peek(skip_space=False)[1] in ("_", "^"):
            _, which = self.next()
            if which == "_":
                lower = self._raw_group()
            else:
                upper = self.group()
        if lower is None or upper is None or "=" not in lower:
            self.fail(f"write \\{'sum' if fn == 'Sum' else 'prod'}_{{i=1}}^{{n}} with the index, its first "
                      f"and its last value")
        index, first = lower.split("=", 1)
        index = index.strip()
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", index):
            self.fail(f"the index {index!r}")
        body = self.sequence(stop="}", term_only=True)
        if not body.strip():
            self.fail(f"\\{fn.lower()} without a term")
        first = to_notation(first) if "\\" in first else first
        return f"{fn}({body}, ({index}, {first}, {upper}))"


def to_notation(text: str) -> str:
    """The plain notation for a LaTeX string (``$...$`` and ``\\(...\\)`` delimiters are dropped)."""
    t = text.strip()
    for a, b in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if t.startswith(a) and t.endswith(b) and len(t) >= len(a) + len(b):
            t = t[len(a):len(t) - len(b)]
            break
    r = _Reader(t)
    out = r.sequence()
    if r.peek()[0] is not None:
        r.fail(f"unexpected {r.peek()[1]!r}")
    return out
