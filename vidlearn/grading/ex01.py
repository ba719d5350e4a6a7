"""Exercise 1 — attention from scratch: softmax, scaled dot-product attention, heads, Var(q·k)."""

from __future__ import annotations

import math

import torch
from einops import rearrange

from vidlearn.attention import merge_heads, scaled_dot_product_attention, softmax, split_heads
from vidlearn.grading.forbidden import LIBRARY
from vidlearn.grading.questions import (Case, DerivationQuestion, FunctionQuestion, Milestone, Misconception,
                                        register, seeded)
from vidlearn.masks import causal_mask, padding_mask

DT = torch.float64
# what the student's functions may not call (the grader and check() both catch it)
FORBIDS = (LIBRARY, "torch.softmax", "torch.nn.functional.softmax", "torch.nn.functional.scaled_dot_product_attention",
           "torch.nn.MultiheadAttention")


# ----------------------------------------------------------------------------- softmax


def _softmax_cases() -> list[Case]:
    g = seeded(101)
    with_blocked_row = torch.randn(3, 5, generator=g, dtype=DT)
    with_blocked_row[1] = float("-inf")
    partly_blocked = torch.randn(2, 6, generator=g, dtype=DT)
    partly_blocked[0, [1, 4]] = float("-inf")
    return [
        Case((torch.randn(5, generator=g, dtype=DT),), label="a vector"),
        Case((torch.randn(3, 7, generator=g, dtype=DT),), label="rows of a matrix"),
        Case((torch.randn(3, 7, generator=g, dtype=DT),), {"dim": 0}, label="dim=0"),
        Case((torch.randn(2, 3, 4, generator=g, dtype=DT),), {"dim": 1}, label="dim=1 of a 3-D tensor"),
        Case((1e4 * torch.randn(4, 6, generator=g, dtype=DT),), label="large logits"),
        Case((partly_blocked,), label="some logits are -inf"),
        Case((with_blocked_row,), label="a row that is -inf everywhere"),
        Case((torch.randn(2, 9, generator=g, dtype=torch.float32),), label="float32 input"),
    ]


def _softmax_no_shift(x, dim=-1):
    e = torch.exp(x)
    return e / e.sum(dim, keepdim=True)


def _softmax_ignores_dim(x, dim=-1):
    return softmax(x, -1)


def _softmax_nan_rows(x, dim=-1):
    return torch.softmax(x, dim)


register(
    FunctionQuestion(
        id="ex01.softmax",
        name="softmax",
        points=2,
        forbids=FORBIDS,
        reference=softmax,
        make_cases=_softmax_cases,
        misconceptions=(
            Misconception(
                "no max subtraction",
                (
                    "Look at the case with large logits: what is exp(10000) in floating point?",
                    "Subtract each row's maximum before exp. softmax(z) = softmax(z - c) for any c, "
                    "so this changes nothing mathematically (chapter 1, section 4).",
                ),
                fn=_softmax_no_shift,
            ),
            Misconception(
                "ignores dim",
                (
                    "Your result is right along the last axis only: is the dim argument used?",
                    "Take the max, the exp-sum and the division along `dim`, with keepdim=True.",
                ),
                fn=_softmax_ignores_dim,
            ),
            Misconception(
                "NaN on a fully blocked row",
                (
                    "A row that is -inf everywhere is a query that may attend to nothing. What should it return?",
                    "Its maximum is -inf and (-inf) - (-inf) is NaN. Replace a -inf maximum by 0 before "
                    "shifting, and divide by 1 where the sum is 0, so the row comes out all zeros.",
                ),
                fn=_softmax_nan_rows,
            ),
        ),
        hints=("Every slice along `dim` must be non-negative and sum to one (or be all zeros if it is all -inf).",),
    )
)


# ----------------------------------------------------------------------------- attention


def _attention_cases() -> list[Case]:
    g = seeded(102)

    def r(*shape):
        return torch.randn(*shape, generator=g, dtype=DT)

    fully_blocked = torch.ones(4, 6, dtype=torch.bool)
    fully_blocked[2] = False
    random_mask = torch.rand(3, 5, 5, generator=g) < 0.6
    random_mask[..., 0] = True  # every query may attend somewhere
    return [
        Case((r(6, 4), r(6, 4), r(6, 4)), label="unbatched self-attention"),
        Case((r(2, 5, 8), r(2, 7, 8), r(2, 7, 3)), label="batched, L_q != L_k, d_v != d_k"),
        Case((r(2, 3, 4, 16), r(2, 3, 4, 16), r(2, 3, 4, 16)), label="batch and heads"),
        Case((r(5, 4), r(5, 4), r(5, 4)), {"mask": causal_mask(5)}, label="causal mask"),
        Case((r(3, 5, 6), r(3, 5, 6), r(3, 5, 6)), {"mask": random_mask}, label="random boolean mask"),
        Case((r(2, 4, 6), r(2, 6, 6), r(2, 6, 6)), {"mask": padding_mask([6, 3], 6)}, label="padding mask"),
        Case((r(4, 8), r(6, 8), r(6, 5)), {"mask": fully_blocked}, label="a query with no allowed key"),
        Case((3 * r(2, 7, 64), 3 * r(2, 7, 64), r(2, 7, 64)), label="wide heads, d_k = 64"),
    ]


def _attn_divide_by_dk(q, k, v, mask=None):
    return scaled_dot_product_attention(q, k, v, mask, scale=1.0 / q.shape[-1])


def _attn_no_scale(q, k, v, mask=None):
    return scaled_dot_product_attention(q, k, v, mask, scale=1.0)


def _attn_softmax_over_queries(q, k, v, mask=None):
    logits = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
    return softmax(logits, dim=-2) @ v


def _attn_mask_inverted(q, k, v, mask=None):
    return scaled_dot_product_attention(q, k, v, None if mask is None else ~mask)


def _attn_mask_after_softmax(q, k, v, mask=None):
    w = softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    if mask is not None:
        w = w * mask
    return w @ v


def _attn_nan_rows(q, k, v, mask=None):
    logits = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
    return torch.softmax(logits, dim=-1) @ v


register(
    FunctionQuestion(
        id="ex01.scaled_dot_product_attention",
        name="scaled_dot_product_attention",
        points=4,
        forbids=FORBIDS,
        reference=lambda q, k, v, mask=None: scaled_dot_product_attention(q, k, v, mask),
        make_cases=_attention_cases,
        misconceptions=(
            Misconception(
                "divides by d_k",
                (
                    "Check how you scale the logits.",
                    "Var(q·k) = d_k, so divide by its standard deviation √d_k, not by d_k.",
                ),
                fn=_attn_divide_by_dk,
            ),
            Misconception(
                "no scaling",
                ("Your logits are not scaled.", "Divide q kᵀ by √d_k before the softmax (chapter 1, section 2)."),
                fn=_attn_no_scale,
            ),
            Misconception(
                "softmax over the query axis",
                (
                    "Each row of the attention matrix (one query) should be a distribution over keys. "
                    "Which axis sums to one in yours?",
                    "Take the softmax over the last axis (keys), dim=-1, not dim=-2.",
                ),
                fn=_attn_softmax_over_queries,
            ),
            Misconception(
                "mask polarity inverted",
                (
                    "Mask polarity: in this course True means *may attend*, as in F.scaled_dot_product_attention.",
                    "Block the pairs where the mask is False: logits.masked_fill(~mask, float('-inf')).",
                ),
                fn=_attn_mask_inverted,
            ),
            Misconception(
                "mask applied after the softmax",
                (
                    "With a mask, do your attention weights still sum to one?",
                    "Mask the logits (-inf before the softmax), not the probabilities after it.",
                ),
                fn=_attn_mask_after_softmax,
            ),
            Misconception(
                "NaN for a query with no allowed key",
                (
                    "One query may attend to no key at all. What should its output be?",
                    "Use a softmax that returns zeros for an all -inf row (your softmax from part 1).",
                ),
                fn=_attn_nan_rows,
            ),
        ),
        hints=("softmax(q kᵀ / √d_k, masked) @ v, with the softmax over keys.",),
    )
)


# ----------------------------------------------------------------------------- heads


def _split_cases() -> list[Case]:
    g = seeded(103)
    return [
        Case((torch.randn(2, 5, 12, generator=g, dtype=DT), 3), label="3 heads of width 4"),
        Case((torch.randn(1, 7, 8, generator=g, dtype=DT), 1), label="one head"),
        Case((torch.randn(3, 4, 10, generator=g, dtype=DT), 5), label="5 heads of width 2"),
        Case((torch.randn(2, 6, 16, generator=g, dtype=DT), 16), label="16 heads of width 1"),
    ]


def _split_eh(x, n_heads):
    return rearrange(x, "b l (e h) -> b h l e", h=n_heads)


def _split_reshape_only(x, n_heads):
    B, L, D = x.shape
    return x.reshape(B, n_heads, L, D // n_heads)


register(
    FunctionQuestion(
        id="ex01.split_heads",
        name="split_heads",
        points=1,
        forbids=FORBIDS,
        reference=split_heads,
        make_cases=_split_cases,
        misconceptions=(
            Misconception(
                "channels interleaved across heads",
                (
                    "Which channels does head 0 own in your version?",
                    "Head i owns the contiguous channels i·e .. (i+1)·e - 1: the pattern is 'b l (h e)', not 'b l (e h)'.",
                ),
                fn=_split_eh,
            ),
            Misconception(
                "reshape without transpose",
                (
                    "A reshape alone mixes up positions and channels.",
                    "Reshape to (B, L, h, e) first, then move the head axis forward: .transpose(1, 2).",
                ),
                fn=_split_reshape_only,
            ),
        ),
    )
)


def _merge_cases() -> list[Case]:
    g = seeded(104)
    return [
        Case((torch.randn(2, 3, 5, 4, generator=g, dtype=DT),), label="3 heads of width 4"),
        Case((torch.randn(1, 1, 7, 8, generator=g, dtype=DT),), label="one head"),
        Case((torch.randn(3, 5, 4, 2, generator=g, dtype=DT),), label="5 heads of width 2"),
    ]


def _merge_eh(x):
    return rearrange(x, "b h l e -> b l (e h)")


def _merge_reshape_only(x):
    B, h, L, e = x.shape
    return x.reshape(B, L, h * e)


register(
    FunctionQuestion(
        id="ex01.merge_heads",
        name="merge_heads",
        points=1,
        forbids=FORBIDS,
        reference=merge_heads,
        make_cases=_merge_cases,
        misconceptions=(
            Misconception(
                "channels interleaved across heads",
                ("merge_heads must undo split_heads exactly.", "Use the pattern 'b h l e -> b l (h e)'."),
                fn=_merge_eh,
            ),
            Misconception(
                "reshape without transpose",
                (
                    "A reshape alone mixes up positions and channels.",
                    "Move the head axis back next to the channels first: .transpose(1, 2), then reshape.",
                ),
                fn=_merge_reshape_only,
            ),
        ),
    )
)


# ----------------------------------------------------------------------------- derivation

register(
    DerivationQuestion(
        id="ex01.var_qk",
        name="var_qk_steps",
        points=2,
        start="Sum(Sum(KroneckerDelta(i, j)**2, (j, 1, d_k)), (i, 1, d_k))",
        target="d_k",
        assumptions={"d_k": "positive integer", "i": "positive integer", "j": "positive integer"},
        prompt=(
            "q and k have independent components with mean 0 and variance 1, so E[q_i q_j] = δ_ij and "
            "Var(q·k) = E[(q·k)²] = Σ_i Σ_j E[q_i q_j] E[k_i k_j] = Σ_i Σ_j δ_ij². Derive Var(q·k) = d_k."
        ),
        misconceptions=(
            Misconception(
                "counted every pair",
                (
                    "You counted all d_k² pairs (i, j).",
                    "δ_ij is 0 unless i = j: only the d_k diagonal pairs contribute, each 1.",
                ),
                expr="d_k**2",
            ),
            Misconception(
                "one term only",
                (
                    "The variance of a sum of independent terms is the sum of their variances.",
                    "There are d_k terms q_i k_i, each of variance 1.",
                ),
                expr="1",
            ),
            Misconception(
                "standard deviation instead of variance",
                (
                    "√d_k is the standard deviation of q·k, not its variance.",
                    "The variance is d_k; that is why the logits are divided by √d_k.",
                ),
                expr="sqrt(d_k)",
            ),
        ),
        hints=("Write the inner sum over j first: for fixed i, which j give δ_ij ≠ 0?",),
        milestones=(Milestone("the inner sum done: a single sum over i, with no j left", has=("Sum", "i"),
                              free_of=("j",)),),
    )
)
