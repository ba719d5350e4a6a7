"""Derivations of chapter 3: how far convolutions and attention reach in time, what causality costs."""

from __future__ import annotations

from vidlearn.derivations import register
from vidlearn.derive import Derivation

_INTS = {"L": "positive integer", "k": "positive odd integer", "layer": "positive integer"}


@register("ch03.causal_conv_reach")
def causal_conv_reach() -> Derivation:
    """L causal convolutions of kernel k reach L(k − 1) frames back; 2L for k = 3."""
    return (
        Derivation("Sum(k - 1, (layer, 1, L))", _INTS, title="reach of L causal convolutions (kernel k)")
        .step("L*(k - 1)", "each layer looks k − 1 more frames into the past")
        .step("2*L", "kernel 3", subs={"k": 3})
    )


@register("ch03.centred_conv_reach")
def centred_conv_reach() -> Derivation:
    """L centred convolutions of kernel k reach L(k − 1)/2 frames back; L for k = 3."""
    return (
        Derivation("Sum((k - 1)/2, (layer, 1, L))", _INTS, title="reach of L centred convolutions (kernel k)")
        .step("L*(k - 1)/2", "each layer looks (k − 1)/2 frames to each side")
        .step("L", "kernel 3", subs={"k": 3})
    )


@register("ch03.causal_pairs")
def causal_pairs() -> Derivation:
    """A causal mask keeps T(T + 1)/2 of the T² query–key pairs."""
    return (
        Derivation(
            "Sum(Sum(1, (s, 1, t)), (t, 1, T))",
            {"T": "positive integer", "t": "positive integer", "s": "positive integer"},
            title="pairs allowed by a causal mask",
        )
        .step("Sum(t, (t, 1, T))", "frame t may attend to the t frames 1 .. t (itself included)")
        .step("T*(T + 1)/2", "arithmetic series")
    )


@register("ch03.cross_frame_cost")
def cross_frame_cost() -> Derivation:
    """Attention-score MACs of X-CLIP's CFA + IFA (cross-frame fusion and intra-frame diffusion
    attention) for T frames of N patches (+ [class]) of width d."""
    return (
        Derivation(
            "Sum(T*d, (m, 1, T)) + Sum((N + 2)**2*d, (frame, 1, T))",
            {"T": "positive integer", "N": "positive integer", "d": "positive integer",
             "m": "positive integer", "frame": "positive integer"},
            title="score MACs of cross-frame fusion + intra-frame diffusion attention",
        )
        .step("T**2*d + T*(N + 2)**2*d", "CFA: T messages × T messages; IFA: per frame, N + 2 tokens × N + 2 tokens")
        .step("T*d*(T + (N + 2)**2)", "factor out T·d: linear in T for the patch tokens")
    )
