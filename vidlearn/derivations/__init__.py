"""The course's derivations, one builder per claim, registered by id.

Chapters display and verify them (``derivations.get("ch01.dot_product_variance").verify()``);
the tests check that each one passes and that corrupting any single step makes the
checker fail at exactly that step. Keeping them here, rather than inline in the
chapters, is what makes that second test possible.
"""

from __future__ import annotations

from typing import Callable

from vidlearn.derive import Derivation

REGISTRY: dict[str, Callable[[], Derivation]] = {}


def register(name: str):
    """Decorator: add a derivation builder to :data:`REGISTRY` under ``name``."""

    def deco(fn: Callable[[], Derivation]):
        if name in REGISTRY:
            raise ValueError(f"derivation {name!r} is registered twice")
        REGISTRY[name] = fn
        return fn

    return deco


def get(name: str) -> Derivation:
    """Build the derivation registered as ``name`` (a fresh object each call).

    The course's derivations are trusted code, so they are checked in this process (``isolate=False``:
    sympy's caches stay warm from one to the next, and a forked child per check would throw them
    away), under the checker's soft time limits. What a student types is checked in a bounded child.
    """
    try:
        d = REGISTRY[name]()
    except KeyError:
        raise KeyError(f"no derivation {name!r}; known: {sorted(REGISTRY)}") from None
    d.isolate = False
    return d


# Importing the chapter modules fills the registry.
from vidlearn.derivations import attention, positional, temporal  # noqa: E402,F401

__all__ = ["REGISTRY", "register", "get"]
from vidlearn.derivations import tubelets as _tubelets  # noqa: E402,F401
from vidlearn.derivations import vivit as _vivit  # noqa: E402,F401
from vidlearn.derivations import crossmodal as _crossmodal  # noqa: E402,F401
from vidlearn.derivations import blocks as _blocks  # noqa: E402,F401
from vidlearn.derivations import contrastive as _contrastive  # noqa: E402,F401
