"""Showing expressions and verdicts in a notebook: LaTeX for MathJax, escaped text for Markdown."""

from __future__ import annotations

import sympy

__all__ = ["tex", "tex_text", "escape_markdown"]


def tex(e) -> str:
    """LaTeX of an expression as written (nothing is evaluated while printing)."""
    try:
        return sympy.latex(e)
    except (ValueError, TypeError, RecursionError):  # e.g. an integer over Python's str limit
        return r"\text{(too large to show)}"


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
