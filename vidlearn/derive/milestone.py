"""Milestones: intermediate forms a derivation must pass through, described by their structure.

Every correct step equals the start in value, so a milestone cannot be a value: it is a shape.
For ``Var(q·k) = d_k`` it is "a single sum over i, with no j left" (``has=("Sum", "i")``,
``free_of=("j",)``); for a cost it may be "multiplied out" (``expanded=True``). Names are symbols
(free or bound) and functions (``Sum``, ``sin``, ``KroneckerDelta``).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

__all__ = ["Milestone", "names_in"]


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


@dataclass(frozen=True)
class Milestone:
    """``name`` is what the feedback says is missing: "a single sum over i, with no j left"."""

    name: str
    has: tuple[str, ...] = ()
    free_of: tuple[str, ...] = ()
    expanded: bool = False

    def reached(self, written, evaluated=None) -> bool:
        """Whether an expression (as written, and as evaluated by the checker) has this shape."""
        names = names_in(written)
        if not all(n in names for n in self.has) or any(n in names for n in self.free_of):
            return False
        if self.expanded:
            e = written if evaluated is None else evaluated
            return not isinstance(e, sympy.MatrixBase) and sympy.expand(e) == e
        return True

    def as_dict(self) -> dict:
        return {"name": self.name, "has": list(self.has), "free_of": list(self.free_of), "expanded": self.expanded}
