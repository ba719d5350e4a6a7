"""Exercise 3 — temporal attention: the causal mask, causal attention, a KV-cache step, causal pairs."""

from __future__ import annotations

import math

import torch

from vidlearn.attention import scaled_dot_product_attention, softmax
from vidlearn.grading.forbidden import LIBRARY
from vidlearn.grading.questions import (Case, DerivationQuestion, FunctionQuestion, Milestone, Misconception, pick, register,
                                        seeded)
from vidlearn.masks import causal_mask, to_additive

DT = torch.float64
# what the student's functions may not call (the grader and check() both catch it)
FORBIDS = (LIBRARY, "torch.nn.functional.scaled_dot_product_attention", "torch.nn.MultiheadAttention")


# ----------------------------------------------------------------------------- the mask


def _mask_transposed(T):
    return causal_mask(T).T


def _mask_strict(T):
    return torch.ones(T, T, dtype=torch.bool).tril(-1)


def _mask_inverted(T):
    return ~causal_mask(T)


def _mask_additive(T):
    return to_additive(causal_mask(T))


def _mask_cases() -> list[Case]:
    short = pick(301, 1, [3, 4])  # the grader cannot keep T = 1 (its answer could be memorised), so: short
    return [Case((short,), label="one frame" if short == 1 else "a short clip"),
            Case((pick(302, 2, range(6, 12)),)), Case((pick(303, 5, range(12, 20)),)),
            Case((pick(304, 8, range(20, 41)),))]


register(
    FunctionQuestion(
        id="ex03.causal_mask",
        name="causal_mask",
        points=1,
        forbids=FORBIDS,
        reference=causal_mask,
        make_cases=_mask_cases,
        misconceptions=(
            Misconception(
                "causal mask transposed",
                (
                    "Row t is query frame t. Which key frames may it see in yours?",
                    "Frame t may attend to frames s <= t: the lower triangle, torch.tril.",
                ),
                fn=_mask_transposed,
            ),
            Misconception(
                "a frame may not see itself",
                ("Look at the diagonal.", "Frame t may attend to itself: s <= t, not s < t (keep the diagonal)."),
                fn=_mask_strict,
            ),
            Misconception(
                "mask polarity inverted",
                (
                    "In this course True means *may attend*.",
                    "Return True on and below the diagonal, False above it.",
                ),
                fn=_mask_inverted,
            ),
            Misconception(
                "additive mask instead of boolean",
                (
                    "The course's masks are boolean.",
                    "Return a torch.bool tensor (True = may attend); the -inf comes later, inside attention.",
                ),
                fn=_mask_additive,
            ),
        ),
        hints=("A (T, T) torch.bool tensor, True where key frame s <= query frame t.",),
    )
)


# ----------------------------------------------------------------------------- causal attention


def _causal_cases() -> list[Case]:
    g = seeded(301)

    def r(*shape):
        return torch.randn(*shape, generator=g, dtype=DT)

    return [
        Case((r(1, 4), r(1, 4), r(1, 4)), label="a single frame"),
        Case((r(6, 4), r(6, 4), r(6, 4)), label="unbatched, 6 frames"),
        Case((r(2, 5, 8), r(2, 5, 8), r(2, 5, 3)), label="batched, d_v != d_k"),
        Case((r(2, 3, 7, 16), r(2, 3, 7, 16), r(2, 3, 7, 16)), label="batch and heads"),
    ]


def _causal_reference(q, k, v):
    return scaled_dot_product_attention(q, k, v, causal_mask(q.shape[-2]))


def _causal_after_softmax(q, k, v):
    w = softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    return (w * causal_mask(q.shape[-2])) @ v


def _causal_transposed(q, k, v):
    return scaled_dot_product_attention(q, k, v, causal_mask(q.shape[-2]).T)


def _causal_missing(q, k, v):
    return scaled_dot_product_attention(q, k, v)


register(
    FunctionQuestion(
        id="ex03.causal_attention",
        name="causal_attention",
        points=3,
        forbids=FORBIDS,
        reference=_causal_reference,
        make_cases=_causal_cases,
        misconceptions=(
            Misconception(
                "mask applied after the softmax",
                (
                    "Do your attention weights still sum to one for every frame?",
                    "Put -inf on the blocked logits before the softmax; zeroing probabilities afterwards "
                    "leaves rows that no longer sum to one.",
                ),
                fn=_causal_after_softmax,
            ),
            Misconception(
                "causal mask transposed",
                (
                    "Your first frame's output depends on later frames.",
                    "Frame t may attend to frames s <= t: the lower triangle.",
                ),
                fn=_causal_transposed,
            ),
            Misconception(
                "no mask",
                ("Your attention is bidirectional.", "Block every key frame s > t before the softmax."),
                fn=_causal_missing,
            ),
        ),
        hints=("softmax(q kᵀ / √d_k with -inf where s > t) @ v, over the last axis.",),
    )
)


# ----------------------------------------------------------------------------- the KV cache


def _cache_cases() -> list[Case]:
    g = seeded(302)

    def r(*shape):
        return torch.randn(*shape, generator=g, dtype=DT)

    cases = []
    for B, t, d, label in [(1, 0, 4, "the first frame: empty cache"), (2, 3, 8, "three frames cached"),
                           (3, 6, 5, "six frames cached")]:
        cases.append(Case((r(B, 1, d), r(B, 1, d), r(B, 1, d), r(B, t, d), r(B, t, d)), label=label))
    return cases


def _cache_reference(q_t, k_t, v_t, cache_k, cache_v):
    k = torch.cat([cache_k, k_t], dim=-2)  # (B, t+1, d): the new frame is the latest
    v = torch.cat([cache_v, v_t], dim=-2)
    return scaled_dot_product_attention(q_t, k, v), k, v


def _cache_prepended(q_t, k_t, v_t, cache_k, cache_v):
    k = torch.cat([k_t, cache_k], dim=-2)
    v = torch.cat([v_t, cache_v], dim=-2)
    return scaled_dot_product_attention(q_t, k, v), k, v


def _cache_without_current(q_t, k_t, v_t, cache_k, cache_v):
    out = scaled_dot_product_attention(q_t, cache_k, cache_v)
    return out, torch.cat([cache_k, k_t], dim=-2), torch.cat([cache_v, v_t], dim=-2)


register(
    FunctionQuestion(
        id="ex03.kv_cache_step",
        name="kv_cache_step",
        points=3,
        forbids=FORBIDS,
        reference=_cache_reference,
        make_cases=_cache_cases,
        misconceptions=(
            Misconception(
                "cache appended in the wrong order",
                (
                    "Your output is right but your cache is not: where does the newest frame go?",
                    "Append at the end of the time axis, torch.cat([cache_k, k_t], dim=-2), so position "
                    "t in the cache is frame t.",
                ),
                fn=_cache_prepended,
            ),
            Misconception(
                "the new frame does not see itself",
                (
                    "Which keys does the new frame's query attend to?",
                    "Append k_t and v_t to the cache first, then attend: a frame may attend to itself.",
                ),
                fn=_cache_without_current,
            ),
        ),
        hints=("Return (out_t, new_cache_k, new_cache_v); the caches grow by one frame along dim -2.",),
    )
)


# ----------------------------------------------------------------------------- derivation

register(
    DerivationQuestion(
        id="ex03.causal_pairs",
        name="causal_pairs_steps",
        points=2,
        start="Sum(Sum(1, (s, 1, t)), (t, 1, T))",
        target="T*(T + 1)/2",
        assumptions={"T": "positive integer", "t": "positive integer", "s": "positive integer"},
        prompt="Count the (query t, key s) pairs a causal mask keeps for T frames: Σ_t Σ_{s<=t} 1.",
        misconceptions=(
            Misconception(
                "diagonal left out",
                ("A frame may attend to itself.", "Frame t sees t frames (1 .. t), so the total is 1 + 2 + ... + T."),
                expr="T*(T - 1)/2",
            ),
            Misconception(
                "half the square",
                ("T²/2 is only approximately right.", "1 + 2 + ... + T = T(T + 1)/2: the diagonal adds T/2."),
                expr="T**2/2",
            ),
            Misconception(
                "every pair",
                ("That is the number of pairs without a mask.", "Frame t may only see frames 1 .. t."),
                expr="T**2",
            ),
        ),
        hints=("The inner sum is over s = 1 .. t: what is it?",),
        milestones=(Milestone("the inner sum done: a single sum over t, with no s left", has=("Sum", "t"),
                              free_of=("s",)),),
    )
)
