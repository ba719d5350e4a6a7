"""Derivations of chapter 3's transformer block: what LayerNorm computes and what it cannot see.

LayerNorm without its affine maps a token ``x ∈ R^d`` to ``x̂ = (x − μ)/σ`` with
``μ = Σ_j x_j / d`` and ``σ² = Σ_j (x_j − μ)² / d`` (the biased variance, as ``nn.LayerNorm``).
"""

from __future__ import annotations

import sympy as sp

from vidlearn.derivations import register
from vidlearn.derive import Derivation


@register("ch03.layernorm_moments")
def layernorm_moments() -> Derivation:
    """Σ_j x̂_j = 0 and Σ_j x̂_j² = d: every token leaves LayerNorm with mean 0 and variance 1."""
    # S = Σ_j x_j and Q = Σ_j (x_j − μ)²: the two sums the claim is about, for any d
    return (
        Derivation(
            "Matrix([(S - d*mu)/sigma, Q/sigma**2])",
            {"S": "real", "Q": "positive", "d": "positive integer", "mu": "real", "sigma": "positive"},
            title="Σ x̂_j = 0 and Σ x̂_j² = d",
        )
        .step("Matrix([0, Q/sigma**2])", "the mean: μ = S/d, so S − dμ = 0", subs={"mu": "S/d"})
        .step("Matrix([0, d])", "the variance: σ² = Q/d, so Q/σ² = d", subs={"sigma": "sqrt(Q/d)"})
    )


def _token(n: int = 3):
    x = sp.symbols(f"x1:{n + 1}", real=True)
    mu = sum(x) / n
    sigma = sp.sqrt(sum((xi - mu) ** 2 for xi in x) / n)
    return x, mu, sigma


@register("ch03.layernorm_jacobian")
def layernorm_jacobian() -> Derivation:
    """∂x̂/∂x = (I − 11ᵀ/d − x̂x̂ᵀ/d)/σ, derived entry by entry for a token of d = 3 values."""
    x, mu, sigma = _token()
    n = len(x)
    start = sp.Matrix(n, n, lambda i, j: sp.Derivative((x[i] - mu) / sigma, x[j]))
    # ∂μ/∂x_j = 1/d; ∂σ/∂x_j = Σ_k (x_k − μ)(δ_kj − 1/d)/(dσ) = (x_j − μ)/(dσ), since Σ_k (x_k − μ) = 0
    quotient = sp.Matrix(
        n, n, lambda i, j: (sp.KroneckerDelta(i, j) - sp.Rational(1, n)) / sigma - (x[i] - mu) * (x[j] - mu) / (n * sigma**3)
    )
    xh = sp.Matrix([(xi - mu) / sigma for xi in x])  # (d, 1): the normalised token
    ones = sp.ones(n, 1)
    return (
        Derivation(start, title="LayerNorm Jacobian J = (I − 11ᵀ/d − x̂x̂ᵀ/d)/σ")
        .step(quotient, "quotient rule, with ∂μ/∂x_j = 1/d and ∂σ/∂x_j = (x_j − μ)/(dσ)")
        .step((sp.eye(n) - ones * ones.T / n - xh * xh.T / n) / sigma, "in matrix form, with x̂ = (x − μ)/σ")
    )


@register("ch03.layernorm_null_space")
def layernorm_null_space() -> Derivation:
    """J·1 = 0 and J·x̂ = 0 for any d: adding a constant to a token or rescaling it changes nothing (to first order)."""
    # Row i of J applied to v is (v_i − (1ᵀv)/d − x̂_i (x̂ᵀv)/d)/σ. For v = 1: v_i = 1, 1ᵀv = d,
    # x̂ᵀv = s₁; for v = x̂: v_i = x̂_i, 1ᵀv = s₁, x̂ᵀv = s₂, with s₁ = Σ_j x̂_j and s₂ = Σ_j x̂_j².
    return (
        Derivation(
            "Matrix([(1 - d/d - xh_i*s_1/d)/sigma, (xh_i - s_1/d - xh_i*s_2/d)/sigma])",
            {"d": "positive integer", "xh_i": "real", "s_1": "real", "s_2": "positive", "sigma": "positive"},
            title="J·1 = 0 and J·x̂ = 0",
        )
        .step("Matrix([-xh_i*s_1/(d*sigma), xh_i*(1 - s_2/d)/sigma - s_1/(d*sigma)])", "d/d = 1; collect x̂_i")
        .step("Matrix([0, xh_i*(1 - s_2/d)/sigma])", "x̂ has mean 0: s₁ = 0 (ch03.layernorm_moments)", subs={"s_1": 0})
        .step("Matrix([0, 0])", "x̂ has variance 1: s₂ = d (ch03.layernorm_moments)", subs={"s_2": "d"})
    )
