"""Derivations of chapter 2: sinusoidal encodings rotate, and their dot products see offsets only."""

from __future__ import annotations

import sympy as sp

from vidlearn.derivations import register
from vidlearn.derive import Derivation

# PE[t, 2i] = sin(ω_i t), PE[t, 2i+1] = cos(ω_i t), ω_i = base^(-2i/d).
_OMEGA = "base**(-2*i/d)"
_PE_SYMBOLS = {"d": "positive even integer", "i": "nonnegative integer", "t": "real", "k": "real", "base": "positive"}


@register("ch02.pe_rotation")
def pe_rotation() -> Derivation:
    """One channel pair: (sin ω(t+k), cos ω(t+k)) = R_ω(k) (sin ωt, cos ωt), R independent of t."""
    w, t, k = sp.Symbol("omega", positive=True), sp.Symbol("t", real=True), sp.Symbol("k", real=True)
    s, c = sp.sin, sp.cos
    rotation = sp.Matrix([[c(w * k), s(w * k)], [-s(w * k), c(w * k)]])
    return (
        Derivation(sp.Matrix([s(w * (t + k)), c(w * (t + k))]), title="PE(t+k) = R(k)·PE(t), one channel pair")
        .step(
            sp.Matrix([s(w * t) * c(w * k) + c(w * t) * s(w * k), c(w * t) * c(w * k) - s(w * t) * s(w * k)]),
            "angle addition: sin(a+b) = sin a cos b + cos a sin b, cos(a+b) = cos a cos b − sin a sin b",
        )
        .step(rotation * sp.Matrix([s(w * t), c(w * t)]), "as a matrix acting on (sin ωt, cos ωt): R depends on ω and k only")
    )


@register("ch02.pe_dot_product")
def pe_dot_product() -> Derivation:
    """PE(t)·PE(t+k) = Σ_i cos(ω_i k): a function of the offset k alone."""
    term = f"sin({_OMEGA}*t)*sin({_OMEGA}*(t + k)) + cos({_OMEGA}*t)*cos({_OMEGA}*(t + k))"
    return (
        Derivation(f"Sum({term}, (i, 0, d/2 - 1))", _PE_SYMBOLS, title="PE(t)·PE(t+k) depends only on k")
        .step(f"Sum(cos({_OMEGA}*(t + k) - {_OMEGA}*t), (i, 0, d/2 - 1))", "cos a cos b + sin a sin b = cos(a − b), per pair")
        .step(f"Sum(cos({_OMEGA}*k), (i, 0, d/2 - 1))", "t cancels inside the cosine")
    )


@register("ch02.pe_signed_offset")
def pe_signed_offset() -> Derivation:
    """With W_Qᵀ W_K rotating each pair by a quarter turn, PE(t)ᵀ W_Qᵀ W_K PE(t+k) = Σ_i sin(ω_i k): odd in k."""
    # pair i of PE(t) is (sin ω_i t, cos ω_i t); the quarter turn maps (x, y) to (-y, x)
    term = f"sin({_OMEGA}*t)*(-cos({_OMEGA}*(t + k))) + cos({_OMEGA}*t)*sin({_OMEGA}*(t + k))"
    return (
        Derivation(f"Sum({term}, (i, 0, d/2 - 1))", _PE_SYMBOLS, title="a quarter-turn W_QᵀW_K makes the logit odd in k")
        .step(f"Sum(sin({_OMEGA}*(t + k) - {_OMEGA}*t), (i, 0, d/2 - 1))", "sin b cos a − cos b sin a = sin(b − a), per pair")
        .step(f"Sum(sin({_OMEGA}*k), (i, 0, d/2 - 1))", "t cancels inside the sine")
    )


@register("ch02.pe_norm")
def pe_norm() -> Derivation:
    """‖PE(t)‖² = d/2 for every position t."""
    return (
        Derivation(
            f"Sum(sin({_OMEGA}*t)**2 + cos({_OMEGA}*t)**2, (i, 0, d/2 - 1))", _PE_SYMBOLS, title="‖PE(t)‖² = d/2"
        )
        .step("Sum(1, (i, 0, d/2 - 1))", "sin² + cos² = 1 for each of the d/2 pairs")
        .step("d/2", "d/2 terms")
    )


@register("ch02.wavelengths")
def wavelengths() -> Derivation:
    """The wavelength of pair i is 2π·base^(2i/d): 2π at i = 0, approaching 2π·base as i → d/2."""
    return (
        Derivation(f"2*pi/{_OMEGA}", _PE_SYMBOLS, title="wavelength λ_i = 2π·base^(2i/d)")
        .step("2*pi*base**(2*i/d)", "λ = 2π/ω")
        .step("2*pi", "first pair, i = 0", subs={"i": 0})
    )
