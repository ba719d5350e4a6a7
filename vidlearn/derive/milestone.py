"""Milestones: intermediate forms a derivation must pass through, described by their structure.

Every correct step equals the start in value, so a milestone cannot be a value: it is a shape.
For ``Var(q·k) = d_k`` it is "a single sum over i, with no j left" (``has=("Sum", "i")``,
``free_of=("j",)``); for a cost it may be "multiplied out" (``expanded=True``). Names are symbols
(free or bound) and functions (``Sum``, ``sin``, ``KroneckerDelta``).

A milestone can also pin a function's argument: ``only_args=(("log", "1/B"),)`` is "every log in the
form is log(1/B)". Every correct step equals the start, so a shape that only counts names can be met by
the target in disguise (``log(B**2)/2``, ``log(2*B) - log(2)``); pinning the argument asks for what the
student wrote at the step that matters (each softmax worked out to 1/B). It is read from the form as
written (the checker's light form, without evaluation: ``log(1/B)`` is not rewritten to ``-log(B)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

__all__ = ["Milestone", "names_in", "calls_of"]


def names_in(e) -> set[str]:
    """Every symbol name (bound indices included) and function name in ``e``."""
    out: set[str] = set()
    items = list(e) if isinstance(e, sympy.MatrixBase) else [e]
    for x in items:
        for node in sympy.preorder_traversal(x):
            if isinstance(node, sympy.Symbol):
                out.add(node.name)
            elif isinstance(node, (sympy.Function, sympy.Sum, sympy.Product, sympy.Derivative)):
                out.add(type(node).__name__)
    return out


def calls_of(e, function: str) -> list:
    """Every call of the function named ``function`` in ``e`` (a matrix's entries included)."""
    items = list(e) if isinstance(e, sympy.MatrixBase) else [e]
    return [node for x in items for node in sympy.preorder_traversal(x)
            if isinstance(node, sympy.Basic) and type(node).__name__ == function]


def _plain(e):
    """``e`` with every symbol replaced by an assumption-free one of the same name (so ``1/B`` typed in
    a question equals the student's ``1/B`` whatever ``B`` was assumed to be)."""
    with sympy.evaluate(False):  # rebuilt as written: exp(c)/(B*exp(c)) must not become 1/B here
        return e.xreplace({s: sympy.Symbol(s.name) for s in e.atoms(sympy.Symbol)})


def _form(text: str):
    from sympy.parsing.sympy_parser import parse_expr

    from vidlearn.derive.numeric import light

    return _plain(light(parse_expr(text, evaluate=False), cancel=False))


@dataclass(frozen=True)
class Milestone:
    """``name`` is what the feedback says is missing: "a single sum over i, with no j left"."""

    name: str
    has: tuple[str, ...] = ()
    free_of: tuple[str, ...] = ()
    expanded: bool = False
    # (function, argument) pairs: every call of each function named here must have one of the arguments
    # given for it, written as such (structurally, in the light form): ("log", "1/B") accepts log(1/B),
    # log(B**-1) and refuses log(B**2), log(2*B), log(1/B**2)
    only_args: tuple[tuple[str, str], ...] = ()

    def __post_init__(self):  # from JSON (the bounded checker's spec): lists back to tuples
        object.__setattr__(self, "has", tuple(self.has))
        object.__setattr__(self, "free_of", tuple(self.free_of))
        object.__setattr__(self, "only_args", tuple((str(f), str(a)) for f, a in self.only_args))

    def _args_pinned(self, written) -> bool:
        from vidlearn.derive.numeric import light

        allowed: dict[str, list] = {}
        for function, arg in self.only_args:
            allowed.setdefault(function, []).append(_form(arg))
        for function, forms in allowed.items():
            for call in calls_of(written, function):
                args = tuple(_plain(light(a, cancel=False)) for a in call.args)
                if len(args) != 1 or args[0] not in forms:
                    return False
        return True

    def reached(self, written, evaluated=None) -> bool:
        """Whether an expression (as written, and as evaluated by the checker) has this shape."""
        names = names_in(written)
        if not all(n in names for n in self.has) or any(n in names for n in self.free_of):
            return False
        if self.only_args and not self._args_pinned(written):
            return False
        if self.expanded:
            e = written if evaluated is None else evaluated
            return not isinstance(e, sympy.MatrixBase) and sympy.expand(e) == e
        return True

    def as_dict(self) -> dict:
        return {"name": self.name, "has": list(self.has), "free_of": list(self.free_of), "expanded": self.expanded,
                "only_args": [list(p) for p in self.only_args]}
