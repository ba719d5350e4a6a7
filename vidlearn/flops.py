"""Cost formulas (as sympy expressions) and measured counts (torch's FLOP counter).

Conventions: a **MAC** is one multiply-accumulate; torch's ``FlopCounterMode`` counts
**2 FLOPs per MAC** for matrix products and ignores elementwise work (softmax, bias
adds, LayerNorm, activations). Papers' "FLOPs" are often MACs: read their tables with care.

On the CPU, ``F.scaled_dot_product_attention`` dispatches to a fused kernel that the
counter has no formula for, so it counts **0**; forcing the MATH backend
(``torch.nn.attention.sdpa_kernel(SDPBackend.MATH)``) routes it through ordinary matmuls,
which the counter sees. :func:`count_flops` forces MATH by default.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import sympy as sp
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["attention_macs", "mha_macs", "mha_params", "evaluate", "count_flops"]


def _sym(x: Any) -> sp.Expr:
    return sp.Symbol(x, positive=True, integer=True) if isinstance(x, str) else sp.sympify(x)


def attention_macs(n_q: Any = "N", n_k: Any = None, d: Any = "d") -> sp.Expr:
    """MACs of ``softmax(QKᵀ)V`` for one head of width ``d``: ``n_q·n_k·d`` (scores) twice."""
    n_q = _sym(n_q)
    n_k = n_q if n_k is None else _sym(n_k)
    return 2 * n_q * n_k * _sym(d)


def mha_macs(n_q: Any = "N", n_k: Any = None, d: Any = "d", h: Any = "h") -> sp.Expr:
    """MACs of multi-head attention: projections ``(2·n_q + 2·n_k)·d²`` plus ``h`` heads of width ``d/h``.

    The ``h`` cancels: ``2·n_q·n_k·d`` for attention, whatever the number of heads.
    """
    n_q = _sym(n_q)
    n_k = n_q if n_k is None else _sym(n_k)
    d, h = _sym(d), _sym(h)
    projections = 2 * n_q * d**2 + 2 * n_k * d**2  # Q and output from the queries' side, K and V from the keys'
    return sp.simplify(projections + h * attention_macs(n_q, n_k, d / h))


def mha_params(d: Any = "d", bias: bool = True) -> sp.Expr:
    """Parameters of :class:`vidlearn.attention.MultiHeadAttention`: four ``d×d`` maps (+ biases)."""
    d = _sym(d)
    return 4 * d**2 + (4 * d if bias else 0)


def evaluate(expr: sp.Expr, **values: int) -> int:
    """Evaluate a cost formula at integer sizes given by symbol name: ``evaluate(f, N=64, d=32, h=4)``."""
    by_name = {s.name: s for s in expr.free_symbols}
    missing = set(by_name) - set(values)
    if missing:
        raise ValueError(f"no value given for {sorted(missing)} (the formula's symbols: {sorted(by_name)})")
    out = expr.subs({by_name[k]: v for k, v in values.items() if k in by_name})
    if not out.is_integer:
        raise ValueError(f"{expr} at {values} is {out}, not an integer count")
    return int(out)


def count_flops(fn: Callable, *args, force_math: bool = True, **kwargs) -> int:
    """FLOPs of ``fn(*args, **kwargs)`` as counted by ``FlopCounterMode`` (2 per MAC).

    ``force_math=True`` routes ``scaled_dot_product_attention`` through the MATH backend
    so that the counter sees it on the CPU.
    """
    ctx = sdpa_kernel(SDPBackend.MATH) if force_math else contextlib.nullcontext()
    with ctx, torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn(*args, **kwargs)
    return int(counter.get_total_flops())


def block_macs(n_tokens: Any = "L", d: Any = "d", mlp_ratio: Any = 4) -> sp.Expr:
    """MACs of one self-attention transformer block over ``L`` tokens: MHA plus a ``d → r·d → d`` MLP."""
    n, d, r = _sym(n_tokens), _sym(d), _sym(mlp_ratio)
    return mha_macs(n, n, d, 1) + 2 * r * n * d**2


def cross_frame_macs(T: Any = "T", N: Any = "N", d: Any = "d", mlp_ratio: Any = 4) -> sp.Expr:
    """MACs of :class:`vidlearn.temporal.CrossFrameAttention` on ``T`` frames of ``1 + N`` tokens.

    Message projection ``T·d²``; CFA: MHA over ``T`` message tokens; IFA: ``T`` MHAs over
    ``N + 2`` tokens; MLP over the ``T(N + 1)`` frame tokens.
    """
    T, N, d, r = _sym(T), _sym(N), _sym(d), _sym(mlp_ratio)
    return T * d**2 + mha_macs(T, T, d, 1) + T * mha_macs(N + 2, N + 2, d, 1) + 2 * r * T * (N + 1) * d**2
