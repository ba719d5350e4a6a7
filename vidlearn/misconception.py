"""A recognisable mistake and the hints it deserves: one type for the derivation checker and the grader.

A misconception is a wrong-but-plausible answer: a wrong implementation (``fn``, for function
questions) or a wrong expression (``expr``, for derivations). An answer that behaves exactly like
it gets its hints, in tiers, nudge first. ``step`` restricts an expression to one step of a
derivation (1-based; ``None``: any step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Misconception"]


@dataclass(frozen=True)
class Misconception:
    name: str
    hints: tuple[str, ...]
    fn: Callable | None = None
    expr: Any = None
    step: int | None = None

    def __post_init__(self):
        hints = (self.hints,) if isinstance(self.hints, str) else tuple(self.hints)
        if not hints or not all(isinstance(h, str) and h.strip() for h in hints):
            raise ValueError(f"misconception {self.name!r} needs at least one hint (a non-empty string)")
        object.__setattr__(self, "hints", hints)

    @property
    def hint(self) -> str:
        """The first (gentlest) hint."""
        return self.hints[0]
