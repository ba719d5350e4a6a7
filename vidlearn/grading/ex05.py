"""Exercise 5 — ViViT: the same-frame and same-location masks, Models 3 and 4, Model 3's attention cost."""

from __future__ import annotations

import torch

from vidlearn.attention import attention_weights, scaled_dot_product_attention
from vidlearn.grading.forbidden import LIBRARY
from vidlearn.grading.questions import Case, DerivationQuestion, FunctionQuestion, Misconception, pick, register, seeded
from vidlearn.vivit import factorised_head_mask, same_frame_mask, same_location_mask

DT = torch.float64
# what the student's functions may not call (the grader and check() both catch it)
FORBIDS = (LIBRARY, "torch.nn.functional.scaled_dot_product_attention", "torch.nn.MultiheadAttention")


# ----------------------------------------------------------------------------- the masks


def _grid_cases() -> list[Case]:
    return [
        Case((1, pick(501, 4, range(2, 13))), label="one temporal index"),
        Case((pick(502, 3, range(2, 9)), 1), label="one token per temporal index"),
        Case((pick(503, 2, range(2, 5)), pick(504, 3, range(5, 9))), label="n_t != N"),
        Case((pick(505, 4, range(5, 9)), pick(506, 6, range(7, 13))), label="a larger grid"),
    ]


def _same(index: torch.Tensor) -> torch.Tensor:
    """``(L,)`` label of each token -> boolean ``(L, L)``: True where two tokens share it."""
    return index[:, None] == index[None, :]


def _frame_mask_location_major(n_t, N):
    # token i_s·n_t + i_t: the temporal index cycles fastest
    return _same(torch.arange(n_t * N) % n_t)


def _location_mask_location_major(n_t, N):
    return _same(torch.arange(n_t * N) // n_t)


def _frame_mask_float(n_t, N):
    return same_frame_mask(n_t, N).float()


def _location_major(fn, which: str, index: str) -> Misconception:
    """The same mistake in either mask: tokens numbered location-major, ``i_s·n_t + i_t``."""
    return Misconception(
        "location-major token order",
        (
            "In your order, which token is temporal index i_t at spatial location i_s?",
            f"Tokens are time-major, token i_t·N + i_s, so the {which} of token j is {index}.",
        ),
        fn=fn,
    )


register(
    FunctionQuestion(
        id="ex05.same_frame_mask",
        name="same_frame_mask",
        points=2,
        forbids=FORBIDS,
        reference=same_frame_mask,
        make_cases=_grid_cases,
        misconceptions=(
            Misconception(
                "same location instead of same temporal index",
                (
                    "Your mask connects the tokens at one spatial location, across time.",
                    "The temporal index of token j is j // N (its spatial location is j % N).",
                ),
                fn=same_location_mask,
            ),
            _location_major(_frame_mask_location_major, "temporal index", "j // N"),
            Misconception(
                "0/1 floats instead of booleans",
                (
                    "The course's masks are boolean.",
                    "Return the comparison itself, a torch.bool tensor (True = may attend), without .float().",
                ),
                fn=_frame_mask_float,
            ),
        ),
        hints=("Token j has temporal index j // N: compare the temporal indices of every pair, (L, 1) == (1, L).",),
    )
)


register(
    FunctionQuestion(
        id="ex05.same_location_mask",
        name="same_location_mask",
        points=2,
        forbids=FORBIDS,
        reference=same_location_mask,
        make_cases=_grid_cases,
        misconceptions=(
            Misconception(
                "same temporal index instead of same location",
                (
                    "Your mask connects the tokens of one temporal index, across space.",
                    "The spatial location of token j is j % N (its temporal index is j // N).",
                ),
                fn=same_frame_mask,
            ),
            _location_major(_location_mask_location_major, "spatial location", "j % N"),
        ),
        hints=("Token j sits at spatial location j % N: compare the locations of every pair, (L, 1) == (1, L).",),
    )
)


# ----------------------------------------------------------------------------- Model 3


def _tokens_cases() -> list[Case]:
    g = seeded(501)

    def tokens(*shape):
        return torch.randn(*shape, generator=g, dtype=DT)  # (B, n_t, N, D)

    return [
        Case((tokens(1, 1, 4, 8),), label="one temporal index"),
        Case((tokens(1, 3, 4, 8),), label="n_t != N"),
        Case((tokens(2, 4, 3, 8),), label="a batch of two, n_t > N"),
        Case((tokens(2, 2, 5, 16),), label="a batch of two, D = 16"),
    ]


def _attend(z):
    return scaled_dot_product_attention(z, z, z)  # among the tokens of axis -2, every other axis a batch


def _spatial(x):
    return _attend(x)  # (B, n_t, N, D): the N tokens of each temporal index


def _temporal(x):
    return _attend(x.transpose(1, 2)).transpose(1, 2)  # via (B, N, n_t, D): the n_t tokens of each location


def _fsa_reference(x):
    y = x + _spatial(x)
    return y + _temporal(y)


def _fsa_unpermuted(x):
    B, n_t, N, D = x.shape
    y = x + _spatial(x)
    return y + _attend(y.reshape(B * N, n_t, D)).reshape(B, n_t, N, D)


def _fsa_temporal_first(x):
    y = x + _temporal(x)
    return y + _spatial(y)


def _fsa_no_residual(x):
    return _temporal(_spatial(x))


def _fsa_parallel(x):
    return x + _spatial(x) + _temporal(x)


def _fsa_joint(x):
    B, n_t, N, D = x.shape
    return x + _attend(x.reshape(B, n_t * N, D)).reshape(B, n_t, N, D)


register(
    FunctionQuestion(
        id="ex05.factorised_self_attention",
        name="factorised_self_attention",
        points=3,
        forbids=FORBIDS,
        reference=_fsa_reference,
        make_cases=_tokens_cases,
        misconceptions=(
            Misconception(
                "temporal step reshaped without transposing",
                (
                    "In your temporal step, do the n_t tokens of one group share a spatial location?",
                    "Bring N next to B first: y.transpose(1, 2) is (B, N, n_t, D). Reshaping (B, n_t, N, D) "
                    "straight to (B·N, n_t, D) regroups the tokens in memory order and mixes locations.",
                ),
                fn=_fsa_unpermuted,
            ),
            Misconception(
                "temporal step first",
                (
                    "Which of the two steps comes first in Model 3?",
                    "Spatial first: y = x + attention within each temporal index, then z = y + attention "
                    "across time at each location (TimeSformer orders them the other way round).",
                ),
                fn=_fsa_temporal_first,
            ),
            Misconception(
                "no residual connections",
                ("Is the input still part of your output?",
                 "Each step adds its input back: y = x + spatial(x), then z = y + temporal(y)."),
                fn=_fsa_no_residual,
            ),
            Misconception(
                "both steps applied to x",
                (
                    "What does your temporal step attend over: x, or the spatial step's output?",
                    "The steps are sequential: the temporal step runs on y = x + spatial(x), so that a token "
                    "can gather from any other token in two hops.",
                ),
                fn=_fsa_parallel,
            ),
            Misconception(
                "joint attention over all tokens",
                (
                    "Your tokens attend to tokens at other locations of other temporal indices.",
                    "Model 3 factorises: among the N tokens of each temporal index, then among the n_t tokens "
                    "of each location, never among all n_t·N at once.",
                ),
                fn=_fsa_joint,
            ),
        ),
        hints=("Spatial: attend over the N axis of (B, n_t, N, D) as it is. Temporal: transpose to (B, N, n_t, D), "
               "attend, transpose back.",),
    )
)


# ----------------------------------------------------------------------------- Model 4


def _qkv_cases() -> list[Case]:
    g = seeded(502)
    cases = []
    for B, h, n_t, N, d_h, label in [(1, 2, 1, 3, 4, "one temporal index"), (1, 2, 3, 2, 4, "two heads"),
                                     (2, 4, 2, 3, 8, "a batch of two, four heads"), (2, 6, 4, 2, 4, "six heads")]:
        q, k, v = torch.randn(3, B, h, n_t * N, d_h, generator=g, dtype=DT)  # each (B, h, L, d_h)
        cases.append(Case((q, k, v, n_t, N), label=label))
    return cases


def _fdp_reference(q, k, v, n_t, N):
    return scaled_dot_product_attention(q, k, v, factorised_head_mask(n_t, N, q.shape[1]))


def _fdp_halves_swapped(q, k, v, n_t, N):
    h = q.shape[1]
    return scaled_dot_product_attention(q, k, v, factorised_head_mask(n_t, N, h).roll(h // 2, dims=0))


def _fdp_all_spatial(q, k, v, n_t, N):
    return scaled_dot_product_attention(q, k, v, same_frame_mask(n_t, N))


def _fdp_after_softmax(q, k, v, n_t, N):
    return (attention_weights(q, k) * factorised_head_mask(n_t, N, q.shape[1])) @ v


def _fdp_unmasked(q, k, v, n_t, N):
    return scaled_dot_product_attention(q, k, v)


register(
    FunctionQuestion(
        id="ex05.factorised_dot_product",
        name="factorised_dot_product",
        points=3,
        forbids=FORBIDS,
        reference=_fdp_reference,
        make_cases=_qkv_cases,
        misconceptions=(
            Misconception(
                "head halves swapped",
                (
                    "Which of your heads attend within one temporal index?",
                    "Heads 0 .. h/2-1 are the spatial heads (same-frame mask); heads h/2 .. h-1 the temporal "
                    "ones (same-location mask).",
                ),
                fn=_fdp_halves_swapped,
            ),
            Misconception(
                "every head spatial",
                ("Do any of your heads attend across time?",
                 "Only the first h/2 heads get the same-frame mask; the other h/2 get the same-location mask."),
                fn=_fdp_all_spatial,
            ),
            Misconception(
                "mask applied after the softmax",
                ("Do each head's weights still sum to one over the tokens it may see?",
                 "Fill the blocked logits with -inf, then softmax: multiplying the probabilities by the mask "
                 "afterwards keeps the blocked tokens' share of the denominator."),
                fn=_fdp_after_softmax,
            ),
            Misconception(
                "no mask",
                ("Every one of your heads attends to every token: that is joint attention.",
                 "Put -inf on the logits where a head's mask is False, before the softmax."),
                fn=_fdp_unmasked,
            ),
        ),
        hints=("Stack an (h, L, L) mask, h/2 same-frame masks then h/2 same-location masks; it broadcasts over B.",),
    )
)


# ----------------------------------------------------------------------------- derivation

register(
    DerivationQuestion(
        id="ex05.model3_attention_macs",
        name="model3_attention_macs_steps",
        points=2,
        start="n_t*(2*N**2*d) + N*(2*n_t**2*d)",
        target="2*d*n_t*N*(N + n_t)",
        assumptions={"n_t": "positive integer", "N": "positive integer", "d": "positive integer"},
        prompt="The MACs of the score and weighted-sum products (QKᵀ and AV, projections not counted) of one "
        "Model-3 block of width d: spatial attention on n_t groups of N tokens, temporal attention on N groups "
        "of n_t tokens, and attention among n tokens costs 2·n²·d. Bring the total to a single product.",
        misconceptions=(
            Misconception(
                "joint attention's cost",
                ("That is what joint attention among all n_t·N tokens costs.",
                 "Model 3 attends among n_t groups of N tokens, then N groups of n_t: it costs (N + n_t)/(n_t·N) "
                 "of joint attention."),
                expr="2*d*(n_t*N)**2",
            ),
            Misconception(
                "weighted sum forgotten",
                ("Your total is half the right one.",
                 "QKᵀ and AV cost n²·d MACs each: 2·n²·d for a group of n tokens."),
                expr="d*n_t*N*(N + n_t)",
            ),
            Misconception(
                "one group of each",
                ("How many spatial groups are there, and how many temporal ones?",
                 "n_t spatial groups (one per temporal index) of N tokens, N temporal groups (one per location) "
                 "of n_t tokens."),
                expr="2*d*(N**2 + n_t**2)",
            ),
        ),
        hints=(
            "Multiply out both terms: what do they share?",
            "Factor out 2·d·n_t·N. Joint attention costs 2·d·(n_t·N)², so Model 3's attention costs "
            "(N + n_t)/(n_t·N) of it.",
        ),
    )
)
