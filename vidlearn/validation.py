"""Argument checks shared across the library, so that a bad size gets one clear wording everywhere."""

from __future__ import annotations

import numbers

__all__ = ["check_int"]


def check_int(value, what: str, *, minimum: int = 1) -> int:
    """``int(value)`` if it is a whole number ``>= minimum`` (``int`` or another integral type such
    as ``numpy.int64``), else a ValueError naming ``what``.

    ``bool`` is refused although it is an ``int`` subclass: ``True`` as a size is always a mistake.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        got = f"{value!r} ({type(value).__name__})" if isinstance(value, numbers.Number) else repr(value)
        raise ValueError(f"{what} must be {kind}, got {got}")
    return int(value)
