"""What a student wrote reaches the teacher's terminal, spreadsheet and Markdown only escaped."""

import re

import pytest

from vidlearn.grading import inert

NASTY = ["\x1b]0;title\x07", "\x1b[2J", "\x1b]52;c;ZXZpbA==\x07", "a\nb", "a\rb", "tab\there", "\u202eevil", "zero\u200bwidth",
         "line\u2028sep", "bell\x07", "del\x7f", "c1\x9b31m", "\ud800"]


@pytest.mark.parametrize("s", NASTY)
def test_text_escapes_control_and_format_characters(s):
    out = inert.text(s)
    assert out.isprintable() and "\\" in out
    assert all(c.isprintable() for c in out)


def test_text_keeps_ordinary_unicode_and_caps_length():
    assert inert.text("√d_k ≈ 8 ✅ é") == "√d_k ≈ 8 ✅ é"
    assert inert.text("x" * 50, limit=10) == "x" * 9 + "…"


@pytest.mark.parametrize("s", ["=1+1", "+1", "-1", "@SUM(A1)", "ok;=cmd|' /C calc'!A0", "a\n=HYPERLINK(1)",
                               "a\t=1", " =1", "x; @y"])
def test_csv_cells_never_start_a_field_with_a_formula(s):
    out = inert.csv_cell(s)
    for field in re.split(r"[;\n\t]", out):
        assert not re.match(r"^\s*[=+\-@]", field), (s, out)


def test_csv_cells_are_capped_at_excels_limit():
    out = inert.csv_cell("x" * 100_000)
    assert len(out) == inert.CSV_CELL_LIMIT and out.endswith("the full text is in the JSON report]")


def _outside_code_spans(md: str) -> str:
    return re.sub(r"(`+).*?\1", "", md)


@pytest.mark.parametrize("s", ["<script>alert(1)</script>", "![x](http://evil/p.png)", "[link](http://evil)",
                               "<img src=x onerror=y>", "`code` *em* _em_ ~~s~~ | cell |", "# heading",
                               "https://evil.example/login", "www.evil.example", "a@evil.example", "``x`` `",
                               "`", ""])
def test_markdown_is_one_code_span(s):
    out = inert.markdown(s)
    fence = re.match(r"`+", out).group()
    assert out.endswith(fence) and fence not in out[len(fence):-len(fence)]
    assert _outside_code_spans(out) == "" and "\n" not in out


def test_table_cells_cannot_break_the_table():
    assert inert.table_cell("a | b <i>") == "a \\| b &lt;i&gt;"
