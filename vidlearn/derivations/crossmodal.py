"""Derivations of chapter 6: what two streams cost over one, and what hierarchical k-means saves.

Symbols: ``n_x`` text tokens, ``n_v`` video tokens, ``d`` width, ``m`` MLP width. A block's
MACs as in :mod:`vidlearn.flops`: multi-head attention of ``n_q`` queries over ``n_k`` keys is
``2·n_q·d² + 2·n_k·d²`` (projections Q, O and K, V) ``+ 2·n_q·n_k·d`` (scores and weighted
sum); the MLP is ``2·n·d·m``.
"""

from __future__ import annotations

from vidlearn.derivations import register
from vidlearn.derive import Derivation

_TOKENS = {name: "positive integer" for name in ("n_x", "n_v", "d", "m")}


@register("ch06.two_stream_overhead")
def two_stream_overhead() -> Derivation:
    """Co-attention block minus single-stream block = 4·(n_x + n_v)·d²: the cross MHAs' projections."""
    two_stream = (
        # text queries over video keys, and video queries over text keys
        "(2*n_x*d**2 + 2*n_v*d**2 + 2*n_x*n_v*d) + (2*n_v*d**2 + 2*n_x*d**2 + 2*n_v*n_x*d)"
        # then each stream's own self-attention block
        " + (4*n_x*d**2 + 2*n_x**2*d + 2*n_x*d*m) + (4*n_v*d**2 + 2*n_v**2*d + 2*n_v*d*m)"
    )
    single_stream = "(4*(n_x + n_v)*d**2 + 2*(n_x + n_v)**2*d + 2*(n_x + n_v)*d*m)"
    return (
        Derivation(f"{two_stream} - {single_stream}", _TOKENS, title="two-stream − single-stream block MACs")
        .step(
            "8*(n_x + n_v)*d**2 + 2*(n_x**2 + 2*n_x*n_v + n_v**2)*d + 2*(n_x + n_v)*d*m"
            " - (4*(n_x + n_v)*d**2 + 2*(n_x + n_v)**2*d + 2*(n_x + n_v)*d*m)",
            "collect the two-stream terms: projections, the four score blocks, the MLPs",
        )
        .step(
            "4*(n_x + n_v)*d**2 + 2*(n_x + n_v)**2*d - 2*(n_x + n_v)**2*d",
            "the MLPs cancel, and 4 of the 8 projection terms",
        )
        .step(
            "4*(n_x + n_v)*d**2",
            "the scores cancel: n_x² + 2n_x·n_v + n_v² = (n_x + n_v)², the same blocks in both",
        )
    )


@register("ch06.hierarchical_assignment_cost")
def hierarchical_assignment_cost() -> Derivation:
    """Greedy descent compares a feature with k centroids per level: k·depth distances, not k^depth."""
    return (
        Derivation(
            "Sum(k, (level, 1, depth))",
            {"k": "positive integer", "depth": "positive integer", "level": "positive integer"},
            title="distances per feature in hierarchical assignment",
        )
        .step("k*depth", "k children are compared at each of the depth levels")
        .step("12*4", "VideoBERT: k = 12, depth 4", subs={"k": 12, "depth": 4})
        .step("48", "against 12⁴ = 20736 leaves for the exact nearest leaf")
    )


@register("ch06.joint_minus_separate")
def joint_minus_separate() -> Derivation:
    """A single-stream block minus a text-only and a video-only block = 4·n_x·n_v·d: the cross scores.

    This is what "single stream costs more" can honestly mean: more than two single-modality
    blocks, which fuse nothing. A two-stream block that fuses pays the same cross scores and
    4·(n_x + n_v)·d² more (ch06.two_stream_overhead).
    """
    single_stream = "(4*(n_x + n_v)*d**2 + 2*(n_x + n_v)**2*d + 2*(n_x + n_v)*d*m)"
    separate = "(4*n_x*d**2 + 2*n_x**2*d + 2*n_x*d*m) + (4*n_v*d**2 + 2*n_v**2*d + 2*n_v*d*m)"
    return (
        Derivation(f"{single_stream} - ({separate})", _TOKENS, title="single-stream − two single-modality blocks, MACs")
        .step(
            "2*(n_x + n_v)**2*d - 2*n_x**2*d - 2*n_v**2*d",
            "projections and MLPs are per token: the same in both, they cancel",
        )
        .step(
            "2*(n_x**2 + 2*n_x*n_v + n_v**2)*d - 2*n_x**2*d - 2*n_v**2*d",
            "expand (n_x + n_v)²",
        )
        .step("4*n_x*n_v*d", "what is left: the text→video and video→text score blocks, 2·n_x·n_v·d each")
    )
