"""Making what a student wrote inert before a teacher's terminal, spreadsheet or Markdown shows it.

Anything derived from a submission (its file name, exception text, returned strings, cell errors)
passes through one of these on its way out:

* :func:`text` — one line of plain text: control and format characters (terminal escapes, BiDi
  overrides, zero-width characters, line and paragraph separators, newlines, tabs) become visible
  escapes such as ``\\x1b`` or ``\\u202e``;
* :func:`csv_cell` — :func:`text`, then neutralised against spreadsheet formulas wherever a cell
  or a field split at ``;`` or a tab could begin (``=``, ``+``, ``-``, ``@``), and capped at
  Excel's 32,767 characters (the JSON report keeps the full text);
* :func:`markdown` — :func:`text` in a code span (fenced by more backticks than it holds), which
  Markdown shows as it is: no tag, image, link (not even a bare URL), emphasis or table cell; being
  one line placed after a prefix, it cannot start a heading either.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["text", "csv_cell", "markdown", "table_cell", "CSV_CELL_LIMIT"]

CSV_CELL_LIMIT = 32_767
_TRUNCATED = " … [truncated; the full text is in the JSON report]"
_UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
_FORMULA = re.compile(r"(^|[;\t])(\s*)([=+\-@])")


def _escape(c: str) -> str:
    code = ord(c)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def text(s: object, limit: int | None = None) -> str:
    """``s`` as one inert line of text (at most ``limit`` characters, if given)."""
    s = str(s)
    out = "".join(_escape(c) if unicodedata.category(c) in _UNSAFE_CATEGORIES else c for c in s)
    if limit is not None and len(out) > limit:
        out = out[: max(0, limit - 1)] + "…"
    return out


def csv_cell(s: object) -> str:
    """A spreadsheet-safe cell: inert text, no formula at the start of any field, at most 32,767 characters."""
    out = _FORMULA.sub(r"\1\2'\3", text(s))
    if len(out) > CSV_CELL_LIMIT:
        out = out[: CSV_CELL_LIMIT - len(_TRUNCATED)] + _TRUNCATED
    return out


def markdown(s: object, limit: int | None = None) -> str:
    """Inert text for a Markdown document: a code span, whose content every renderer shows as it is
    (no HTML, no emphasis, no links, not even bare URLs or e-mail addresses), on one line."""
    out = text(s, limit)
    fence = "`" * (1 + max((len(run) for run in re.findall(r"`+", out)), default=0))
    pad = " " if out.startswith("`") or out.endswith("`") or not out.strip() else ""
    return f"{fence}{pad}{out}{pad}{fence}"


def table_cell(s: object, limit: int | None = None) -> str:
    """Text of ours read back from a file (a question id, a misconception's name) for a Markdown
    table cell: one line, no HTML, no ``|`` to break the table; otherwise as it is."""
    out = text(s, limit).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return out.replace("|", "\\|")
