"""Tensor identities checked on random inputs: ``f(*inputs) == g(*inputs)`` within a tolerance.

Where a chapter claims that two computations are the same (a convolution and a matmul, a masked
joint attention and a factorised one), :func:`check_identity` runs both on random inputs and
reports the largest difference seen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from vidlearn.derive.checker import DerivationError

__all__ = ["IdentityResult", "check_identity"]


@dataclass
class IdentityResult:
    """Outcome of :func:`check_identity`."""

    ok: bool
    max_abs_error: float
    message: str
    failed_trial: int | None = None

    def __bool__(self) -> bool:
        return self.ok

    def raise_if_failed(self) -> "IdentityResult":
        if not self.ok:
            raise DerivationError(self.message)
        return self

    def _repr_markdown_(self) -> str:
        return ("✅ " if self.ok else "❌ ") + self.message


def _as_tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def check_identity(
    f: Callable,
    g: Callable,
    *,
    shapes: Sequence[Sequence[int]] | None = None,
    make_inputs: Callable[["torch.Generator"], Sequence[Any]] | None = None,
    n_trials: int = 5,
    dtype: "torch.dtype | None" = None,
    atol: float = 1e-10,
    rtol: float = 1e-8,
    seed: int = 0,
    name: str = "identity",
) -> IdentityResult:
    """Check ``f(*inputs) == g(*inputs)`` on ``n_trials`` random inputs.

    Inputs are standard-normal tensors of the given ``shapes``, or whatever
    ``make_inputs(generator)`` returns. Outputs may be tensors or tuples of tensors.
    """
    import torch  # only here: the derivation checker itself needs no torch

    if (shapes is None) == (make_inputs is None):
        raise ValueError("give exactly one of shapes= or make_inputs=")
    dtype = torch.float64 if dtype is None else dtype
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for trial in range(n_trials):
        if shapes is not None:
            args = [torch.randn(*s, generator=gen, dtype=dtype) for s in shapes]
        else:
            args = list(make_inputs(gen))
        outs_f, outs_g = _as_tuple(f(*args)), _as_tuple(g(*args))
        if len(outs_f) != len(outs_g):
            return IdentityResult(False, math.inf, f"{name}: the two sides return {len(outs_f)} vs {len(outs_g)} values", trial)
        for a, b in zip(outs_f, outs_g):
            a, b = torch.as_tensor(a), torch.as_tensor(b)
            if a.shape != b.shape:
                return IdentityResult(
                    False, math.inf, f"{name}: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)} (trial {trial})", trial
                )
            err = (a.double() - b.double()).abs()
            worst = max(worst, float(err.max()) if err.numel() else 0.0)
            if not torch.allclose(a.double(), b.double(), atol=atol, rtol=rtol, equal_nan=False):
                return IdentityResult(
                    False, worst, f"{name}: fails on trial {trial}, max |difference| = {worst:.3g} (atol={atol:g})", trial
                )
    return IdentityResult(True, worst, f"{name}: holds on {n_trials} random trials, max |difference| = {worst:.2g}")
