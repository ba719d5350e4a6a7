"""Derivations of the contrastive dual encoder (:mod:`vidlearn.contrastive`, :mod:`vidlearn.dual_encoder`).

* ``ch07.info_nce_logit_gradient``: for one direction of the symmetric InfoNCE loss,
  ``L = −(1/B) Σ_i log softmax(S_i)_i``, the gradient with respect to one logit is
  ``∂L/∂S_kl = (softmax(S_k)_l − δ_kl)/B``: softmax minus one-hot, divided by the batch
  (shown for ``B = 3``, nine free logits).
* ``ch07.info_nce_equal_embeddings``: with every embedding equal, every logit is the same
  ``c = cos(v, v)/τ = 1/τ``, every softmax is uniform and the loss is ``log B`` for any ``B``.
"""

from __future__ import annotations

import sympy as sp

from vidlearn.derivations import register
from vidlearn.derive import Derivation

_B = 3  # batch of the explicit gradient derivation


def _logit_matrix(n: int = _B) -> sp.Matrix:
    return sp.Matrix(n, n, lambda i, j: sp.Symbol(f"s_{i + 1}{j + 1}", real=True))  # (B, B): S[i, j]


@register("ch07.info_nce_logit_gradient")
def info_nce_logit_gradient() -> Derivation:
    """∂/∂S_kl of −(1/B) Σ_i log softmax(S_i)_i = (softmax(S_k)_l − δ_kl)/B (B = 3)."""
    S, n = _logit_matrix(), _B
    row_sum = [sum(sp.exp(S[i, j]) for j in range(n)) for i in range(n)]  # Σ_j e^{S_ij}, one per row
    loss = -sp.Rational(1, n) * sum(sp.log(sp.exp(S[i, i]) / row_sum[i]) for i in range(n))
    start = sp.Matrix(n, n, lambda k, l: sp.Derivative(loss, S[k, l]))
    # log softmax(S_i)_i = S_ii − log Σ_j e^{S_ij}: only row k's term holds S_kl
    split = sp.Matrix(
        n, n, lambda k, l: -sp.Rational(1, n) * (sp.KroneckerDelta(k, l) - sp.exp(S[k, l]) / row_sum[k])
    )
    softmax_minus_onehot = sp.Matrix(
        n, n, lambda k, l: (sp.exp(S[k, l]) / row_sum[k] - sp.KroneckerDelta(k, l)) / n
    )
    return (
        Derivation(start, title="InfoNCE gradient ∂L/∂S_kl = (softmax(S_k)_l − δ_kl)/B, B = 3")
        .step(split, "log softmax(S_i)_i = S_ii − log Σ_j e^{S_ij}; only row k depends on S_kl, "
                     "∂S_kk/∂S_kl = δ_kl and ∂ log Σ_j e^{S_kj}/∂S_kl = e^{S_kl}/Σ_j e^{S_kj}")
        .step(softmax_minus_onehot, "e^{S_kl}/Σ_j e^{S_kj} = softmax(S_k)_l: softmax minus one-hot, over B")
    )


@register("ch07.info_nce_equal_embeddings")
def info_nce_equal_embeddings() -> Derivation:
    """All embeddings equal: every logit is c, and ½[CE(S, diag) + CE(Sᵀ, diag)] = log B."""
    one_direction = "-(1/B)*Sum(log(exp(c)/Sum(exp(c), (j, 1, B))), (i, 1, B))"
    return (
        Derivation(
            f"(1/2)*({one_direction} + {one_direction})",
            {"B": "positive integer", "c": "real", "i": "positive integer", "j": "positive integer"},
            title="InfoNCE of a batch of equal embeddings = log B",
        )
        .step(one_direction, "every S_ij = c, so S = Sᵀ: both directions are the same loss")
        .step("-(1/B)*Sum(log(exp(c)/(B*exp(c))), (i, 1, B))", "the row sum is B equal terms e^c")
        .step("-(1/B)*Sum(log(1/B), (i, 1, B))", "e^c cancels: every softmax is uniform, 1/B")
        .step("-log(1/B)", "B equal terms, divided by B")
        .step("log(B)", "−log(1/B) = log B")
    )
