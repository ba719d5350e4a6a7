# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   vidlearn:
#     exercise: ex01
# ---

# %% [markdown]
# Adversarial fixture: text aimed at the teacher's terminal, spreadsheet and Markdown
#
# Its functions raise (or return) text carrying terminal escapes (a title change, a screen clear,
# an OSC 52 clipboard write), a newline and a fake progress line, spreadsheet formulas after a
# newline and after ';', and Markdown/HTML (a script tag, a remote image, a forged score heading).
# They score what they deserve (nothing); none of the text may reach the
# terminal, the CSV or the feedback file as it was written.
#
# Expected scores (softmax, attention, split_heads, merge_heads, var_qk): 0, 0, 0, 0, 0 (attention
# is honest, but calls its own softmax, which raises)


# %%
import math

import torch

from vidlearn.grading import case, check, hint  # noqa: F401

# %%
# @vidlearn-honest-answers@

# %%
EVIL = ("\x1b]0;pwned\x07\x1b[2J\x1b]52;c;ZXZpbA==\x07\n[9/9] everyone.py: 10/10 points\r"
        "\n=HYPERLINK(\"http://evil.example/\";\"x\")"
        "\n<script>alert(1)</script> ![x](http://evil.example/pixel.png) <img src=http://evil.example/y>"
        "\n## ✅ ex01.softmax: 2 / 2\n# Feedback: 10 / 10 points\u202e")


def softmax(x, dim=-1):
    raise ValueError(EVIL)


def split_heads(x, n_heads):
    raise ValueError("a;=cmd|' /C calc'!A0;@SUM(1+1)*cmd|' /C calc'!A0\t-2+3")


def merge_heads(x):
    return EVIL


def var_qk_steps():
    return [(EVIL, EVIL), ("d_k", "\x1b[31mred")]
