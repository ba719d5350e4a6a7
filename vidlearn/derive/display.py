"""Showing expressions and verdicts in a notebook: LaTeX for MathJax, escaped text for Markdown."""

from __future__ import annotations

import sympy

from vidlearn.derive.bounds import CheckTimeout, isolation_available, stream, time_limit

__all__ = ["tex", "tex_all", "tex_text", "escape_markdown", "NOT_SHOWN"]

NOT_SHOWN = r"\text{(too large to show)}"


def tex(e, seconds: float | None = 2.0) -> str:
    """LaTeX of an expression as written, within ``seconds`` (soft limit) and never an exception.

    Printing is not free: sympy orders the terms of a sum by their numeric value, which evaluates
    them (a product of 5000 factors, a tower of exponentials). Untrusted expressions are therefore
    printed by :func:`tex_all`, in a bounded child."""
    try:
        with time_limit(seconds):
            return sympy.latex(e)
    except (Exception, RecursionError, CheckTimeout):  # too large, too deep, too slow, or unprintable
        return NOT_SHOWN


def tex_all(exprs, seconds: float = 2.0) -> list[str]:
    """:func:`tex` of each expression, printed in a forked child with a hard time and memory bound."""
    exprs = list(exprs)
    if not isolation_available():
        return [tex(e, seconds) for e in exprs]
    out: dict[int, str] = {}

    def work(emit):
        for i, e in enumerate(exprs):
            emit({"i": i, "tex": tex(e, seconds)})

    for item in stream(work, item_seconds=seconds + 1, total_seconds=(seconds + 1) * len(exprs) + 2, memory_mb=512):
        if "i" in item:
            out[item["i"]] = item["tex"]
    return [out.get(i, NOT_SHOWN) for i in range(len(exprs))]


def tex_text(s: str) -> str:
    """Escape text for use inside ``\\text{...}`` in MathJax."""
    for ch, rep in (("\\", r"\backslash "), ("{", r"\{"), ("}", r"\}"), ("&", r"\&"), ("#", r"\#"),
                    ("%", r"\%"), ("$", r"\$"), ("_", r"\_"), ("^", r"\^{}"), ("~", r"\~{}")):
        s = s.replace(ch, rep)
    return s


def escape_markdown(s: str) -> str:
    """Text that Markdown shows as it is: no HTML, links or emphasis from what a student typed."""
    out = []
    for ch in s:
        if ch in "\\`*_{}[]()#+-.!|<>&$~":
            out.append("&#" + str(ord(ch)) + ";")
        elif ch in "\n\r":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)
