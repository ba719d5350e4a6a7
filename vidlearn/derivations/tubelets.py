"""Derivations of chapter 4: how many tubelet tokens, a tubelet embedding is one matrix product,
and why inflation and central-frame initialisation both reproduce the 2D filter on a static video."""

from __future__ import annotations

import sympy as sp

from vidlearn.derivations import register
from vidlearn.derive import Derivation

_GRID = {
    name: "positive integer" for name in ("T", "H", "W", "t", "h", "w", "s_t", "s_h", "s_w")
} | {"p": "nonnegative integer"}

# One tap (c, i, j) of a t-frame filter: W is the 2D filter's weight there, x the static
# frame's pixel there. The full response sums such terms over taps, linearly, so one tap
# carries the argument.
_TAP = {"t": "positive integer", "tau": "nonnegative integer", "W": "real", "x": "real"}


@register("ch04.token_count")
def token_count() -> Derivation:
    """N = ⌊T/t⌋⌊H/h⌋⌊W/w⌋ from Conv3d's output size, and 3136 for 32×224×224 with 2×16×16."""
    return (
        Derivation(
            # Conv3d output length per axis: ⌊(L + 2p − k)/s⌋ + 1, for input length L, kernel k,
            # padding p, stride s; the token count is the product over the three axes.
            "(floor((T + 2*p - t)/s_t) + 1)*(floor((H + 2*p - h)/s_h) + 1)*(floor((W + 2*p - w)/s_w) + 1)",
            _GRID,
            title="tubelet tokens N = ⌊T/t⌋·⌊H/h⌋·⌊W/w⌋",
        )
        .step(
            "(floor((T - t)/t) + 1)*(floor((H - h)/h) + 1)*(floor((W - w)/w) + 1)",
            "a tubelet embedding: no padding, stride = kernel",
            subs={"p": 0, "s_t": "t", "s_h": "h", "s_w": "w"},
        )
        .step(
            "floor(T/t)*floor(H/h)*floor(W/w)",
            "(L − k)/k = L/k − 1, and an integer comes out of the floor: ⌊L/k − 1⌋ + 1 = ⌊L/k⌋",
        )
        .step(
            "floor(32/t)*floor(224/h)*floor(224/w)",
            "a 32-frame clip at 224×224",
            subs={"T": 32, "H": 224, "W": 224},
        )
        .step("16*14*14", "2×16×16 tubelets (ViViT)", subs={"t": 2, "h": 16, "w": 16})
        .step("3136", "multiply: 16 time steps × 196 patches")
    )


@register("ch04.inflation_static")
def inflation_static() -> Derivation:
    """Inflated filter (W/t at every frame) on t equal frames x: Σ_τ (W/t)·x = W·x."""
    return (
        Derivation("Sum((W/t)*x, (tau, 0, t - 1))", _TAP, title="inflation on a static video = the 2D response")
        .step("t*(W/t)*x", "neither the weight W/t nor the pixel x depends on τ: t equal terms")
        .step("W*x", "t cancels: dividing by t is exactly what undoes the repetition")
    )


@register("ch04.central_frame_static")
def central_frame_static() -> Derivation:
    """Central-frame filter (W at τ = ⌊t/2⌋, 0 elsewhere) on t equal frames x: Σ_τ δ(τ, ⌊t/2⌋)·W·x = W·x."""
    return (
        Derivation(
            "Sum(KroneckerDelta(tau, floor(t/2))*W*x, (tau, 0, t - 1))",
            _TAP,
            title="central-frame init on a static video = the 2D response",
        )
        .step("W*x*Sum(KroneckerDelta(tau, floor(t/2)), (tau, 0, t - 1))", "the static frame x and W do not depend on τ")
        .step("W*x", "0 ≤ ⌊t/2⌋ ≤ t − 1, so exactly one τ in the sum is the central frame")
    )


def _tubelet_symbols(D: int, C: int, t: int, h: int, w: int):
    """Symbolic Conv3d weight (D, C, t, h, w), bias (D,) and one tubelet of video (C, t, h, w)."""
    idx = [(c, tau, i, j) for c in range(C) for tau in range(t) for i in range(h) for j in range(w)]
    weight = {(d, *k): sp.Symbol(f"w_{d}{''.join(map(str, k))}", real=True) for d in range(D) for k in idx}
    pixel = {k: sp.Symbol(f"x_{''.join(map(str, k))}", real=True) for k in idx}
    bias = [sp.Symbol(f"b_{d}", real=True) for d in range(D)]
    return idx, weight, pixel, bias


@register("ch04.conv_as_matmul")
def conv_as_matmul() -> Derivation:
    """One Conv3d output token (stride = kernel) = W.reshape(D, -1) @ flatten_(C,t,h,w)(tubelet) + b.

    Shown for D = 2 outputs and a C×t×h×w = 2×2×1×2 tubelet with every weight and pixel a
    symbol; flattening uses the row-major index ((c·t + τ)·h + i)·w + j of torch's reshape.
    """
    D, C, t, h, w = 2, 2, 2, 1, 2
    idx, weight, pixel, bias = _tubelet_symbols(D, C, t, h, w)
    # what Conv3d computes at one output position: a sum over the kernel's taps, plus the bias
    conv = sp.Matrix([sum(weight[(d, *k)] * pixel[k] for k in idx) + bias[d] for d in range(D)])  # (D, 1)
    flat = [None] * len(idx)
    for c, tau, i, j in idx:
        flat[((c * t + tau) * h + i) * w + j] = pixel[(c, tau, i, j)]
    x_flat = sp.Matrix(flat)  # (C·t·h·w, 1)
    W_flat = sp.Matrix(D, len(idx), lambda d, n: weight[(d, *idx[n])])  # weight.reshape(D, -1): (D, C·t·h·w)
    return Derivation(conv, title="Conv3d with stride = kernel is a linear map of flattened tubelets").step(
        W_flat * x_flat + sp.Matrix(bias),
        "the sum over taps (c, τ, i, j) is a dot product once weight and tubelet are flattened in the same (C, t, h, w) order",
    )
