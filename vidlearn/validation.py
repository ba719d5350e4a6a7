"""Argument checks shared across the library, so that a bad size gets one clear wording everywhere."""

from __future__ import annotations

__all__ = ["check_int"]


def check_int(value, what: str, *, minimum: int = 1) -> int:
    """``value`` if it is an ``int >= minimum``, else a ValueError naming ``what``.

    ``bool`` is refused although it is an ``int`` subclass: ``True`` as a size is always a mistake.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{what} must be {kind}, got {value!r}")
    return value
