"""Derivations of chapter 5: what factorising space-time attention saves.

Symbols: ``n_t`` temporal indices, ``N`` tokens per temporal index, ``d`` width, ``h``
heads. Attention among ``n_q`` queries and ``n_k`` keys of width ``w`` costs
``2·n_q·n_k·w`` MACs (``QKᵀ`` and ``AV``); projections and the MLP cost the same in every
variant, so only the attention terms differ.
"""

from __future__ import annotations

from vidlearn.derivations import register
from vidlearn.derive import Derivation

_SIZES = {name: "positive integer" for name in ("n_t", "N", "d", "h")}


@register("ch05.factorised_attention_ratio")
def factorised_attention_ratio() -> Derivation:
    """Model 3's attention over Model 1's: (N + n_t)/(n_t·N) = 1/N + 1/n_t, 6.8 % for ViViT-B/16x2."""
    return (
        Derivation(
            # spatial: n_t groups of N tokens; temporal: N groups of n_t tokens; joint: one group of n_t·N
            "(n_t*(2*N**2*d) + N*(2*n_t**2*d)) / (2*(n_t*N)**2*d)",
            _SIZES,
            title="Model 3 / Model 1 attention MACs = 1/N + 1/n_t",
        )
        .step("2*n_t*N*d*(N + n_t) / (2*n_t**2*N**2*d)", "take out the common factor 2·n_t·N·d")
        .step("(N + n_t)/(n_t*N)", "cancel 2·n_t·N·d")
        .step("1/n_t + 1/N", "split the fraction: each query scores N + n_t keys instead of n_t·N")
        .step("1/16 + 1/196", "ViViT-B/16x2: n_t = 32/2 = 16, N = (224/16)² = 196", subs={"n_t": 16, "N": 196})
        .step("53/784", "common denominator 3136: (196 + 16)/3136")
    )


@register("ch05.dot_product_attention_macs")
def dot_product_attention_macs() -> Derivation:
    """Model 4 computed by reshaping (as ``ViViT`` does and the paper counts): h/2 heads score N keys,
    h/2 score n_t, each head d/h wide; no masked-out pair is computed."""
    return (
        Derivation(
            "(h/2)*2*(n_t*N)*N*(d/h) + (h/2)*2*(n_t*N)*n_t*(d/h)",
            _SIZES,
            title="Model 4's attention MACs = n_t·N·(N + n_t)·d",
        )
        .step("n_t*N*N*d + n_t*N*n_t*d", "the heads cancel: h/2 · 2 · d/h = d")
        .step("n_t*N*d*(N + n_t)", "factor: every query scores N spatial and n_t temporal keys at width d/2")
        .step(
            "(n_t*(2*N**2*d) + N*(2*n_t**2*d))/2",
            "half of Model 3's attention: the same pairs, but each scored by half the heads",
        )
    )
