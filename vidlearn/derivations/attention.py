"""Derivations of chapter 1: why 1/√d_k, the softmax Jacobian, shift invariance, head cost."""

from __future__ import annotations

import sympy as sp

from vidlearn.derivations import register
from vidlearn.derive import Derivation

_MOMENTS = {
    "d_k": "positive integer",
    "i": "positive integer",
    "j": "positive integer",
    "mu_q": "real",
    "mu_k": "real",
    "sigma_q": "positive",
    "sigma_k": "positive",
}


@register("ch01.dot_product_variance")
def dot_product_variance() -> Derivation:
    """Var(q·k) = d_k for independent components with mean 0 and variance 1."""
    return (
        Derivation(
            # X = Σ_i q_i k_i. Var X = E[X²] − (E X)², and E[X²] = Σ_i Σ_j E[q_i q_j] E[k_i k_j]
            # (q independent of k), with E[q_i q_j] = μ_q² + σ_q² δ_ij (components independent).
            "Sum(Sum((mu_q**2 + sigma_q**2*KroneckerDelta(i, j))*(mu_k**2 + sigma_k**2*KroneckerDelta(i, j)),"
            " (j, 1, d_k)), (i, 1, d_k)) - Sum(mu_q*mu_k, (i, 1, d_k))**2",
            _MOMENTS,
            title="Var(q·k) = d_k",
        )
        .step(
            "d_k**2*mu_q**2*mu_k**2"
            " + d_k*(mu_q**2*sigma_k**2 + sigma_q**2*mu_k**2 + sigma_q**2*sigma_k**2)"
            " - d_k**2*mu_q**2*mu_k**2",
            "all d_k² pairs (i, j) give μ_q²μ_k²; the δ_ij terms survive only on the d_k diagonal pairs",
        )
        .step(
            "d_k*(sigma_q**2*sigma_k**2 + sigma_q**2*mu_k**2 + mu_q**2*sigma_k**2)",
            "the (E X)² term cancels the d_k² μ_q²μ_k² terms",
        )
        .step("d_k*sigma_q**2*sigma_k**2", "zero-mean components: μ_q = μ_k = 0", subs={"mu_q": 0, "mu_k": 0})
        .step("d_k", "unit-variance components: σ_q = σ_k = 1", subs={"sigma_q": 1, "sigma_k": 1})
    )


@register("ch01.scaled_logit_variance")
def scaled_logit_variance() -> Derivation:
    """Var(q·k / √d_k) = 1: the scaling undoes the growth with d_k."""
    return (
        Derivation("(1/sqrt(d_k))**2 * d_k", {"d_k": "positive integer"}, title="Var(q·k/√d_k) = 1")
        .step("d_k/d_k", "Var(cX) = c² Var(X) with c = 1/√d_k and Var(q·k) = d_k")
        .step("1", "cancel")
    )


def _logits(n: int = 3):
    z = sp.symbols(f"z1:{n + 1}", real=True)
    total = sum(sp.exp(x) for x in z)
    p = sp.Matrix([sp.exp(x) / total for x in z])  # (n, 1)
    return z, total, p


@register("ch01.softmax_jacobian")
def softmax_jacobian() -> Derivation:
    """∂p_i/∂z_j = p_i δ_ij − p_i p_j, i.e. J = diag(p) − p pᵀ (shown for 3 logits)."""
    z, S, p = _logits()
    n = len(z)
    start = sp.Matrix(n, n, lambda i, j: sp.Derivative(sp.exp(z[i]) / S, z[j]))
    quotient = sp.Matrix(
        n, n, lambda i, j: (sp.KroneckerDelta(i, j) * sp.exp(z[i]) * S - sp.exp(z[i]) * sp.exp(z[j])) / S**2
    )
    in_p = sp.Matrix(n, n, lambda i, j: sp.KroneckerDelta(i, j) * p[i] - p[i] * p[j])
    return (
        Derivation(start, title="softmax Jacobian J = diag(p) − ppᵀ")
        .step(quotient, "quotient rule: ∂e^{z_i}/∂z_j = δ_ij e^{z_i}, ∂S/∂z_j = e^{z_j}, S = Σ e^{z}")
        .step(in_p, "split the fraction: e^{z_i}/S = p_i")
        .step(sp.diag(*p) - p * p.T, "in matrix form")
    )


@register("ch01.softmax_jacobian_rows")
def softmax_jacobian_rows() -> Derivation:
    """J·1 = 0: adding the same constant to every logit changes nothing, to first order."""
    z, S, p = _logits()
    ones = sp.ones(len(z), 1)
    return (
        Derivation((sp.diag(*p) - p * p.T) * ones, title="J·1 = 0")
        .step(p - p * (p.T * ones)[0], "diag(p)·1 = p and pᵀ1 = Σ_j p_j")
        .step(p - p, "the probabilities sum to one")
        .step(sp.zeros(len(z), 1), "p − p = 0")
    )


@register("ch01.softmax_shift_invariance")
def softmax_shift_invariance() -> Derivation:
    """softmax(z − c) = softmax(z): why subtracting the row maximum is exact (4 logits)."""
    z, S, p = _logits(4)
    c = sp.Symbol("c", real=True)
    shifted = sp.Matrix([sp.exp(x - c) / sum(sp.exp(y - c) for y in z) for x in z])
    factored = sp.Matrix([sp.exp(-c) * sp.exp(x) / (sp.exp(-c) * S) for x in z])
    return (
        Derivation(shifted, title="softmax(z − c) = softmax(z)")
        .step(factored, "e^{a−c} = e^{−c} e^{a}, in every numerator and every term of the sum")
        .step(p, "e^{−c} cancels")
    )


@register("ch01.multihead_cost")
def multihead_cost() -> Derivation:
    """h heads of width d/h cost the same multiply-accumulates as one head of width d."""
    return (
        Derivation(
            "4*N*d**2 + Sum(N*N*(d/h) + N*N*(d/h), (head, 1, h))",
            {"N": "positive integer", "d": "positive integer", "h": "positive integer", "head": "positive integer"},
            title="MACs of multi-head attention do not depend on h",
        )
        .step("4*N*d**2 + h*(2*N**2*d/h)", "the h heads cost the same: scores QKᵀ and weights·V, N²·d/h each")
        .step("4*N*d**2 + 2*N**2*d", "h cancels: the projections (4Nd²) and attention (2N²d) are width-for-width the same")
    )
