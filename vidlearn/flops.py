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
import math
import numbers
import time
from typing import Any, Callable

import sympy as sp
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["attention_macs", "mha_macs", "mha_params", "evaluate", "count_flops", "forward_seconds"]


def _sym(x: Any) -> sp.Expr:
    """A size: a name (a positive integer symbol), a sympy expression, or a count >= 0."""
    if isinstance(x, str):
        if not x.isidentifier():
            raise ValueError(f"a symbolic size must be a name such as 'N', got {x!r}")
        return sp.Symbol(x, positive=True, integer=True)
    if isinstance(x, sp.Basic):
        return x
    # sizes count tokens, channels, queries...: a negative, fractional or boolean one is a mistake
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not math.isfinite(x) or x < 0 or x != int(x):
        raise ValueError(f"a size must be a whole number >= 0 (or a name), got {x!r}")
    return sp.Integer(int(x))


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


def forward_seconds(module: torch.nn.Module, *inputs: torch.Tensor, repeats: int = 5) -> float:
    """Median wall-clock seconds of ``module(*inputs)`` without grad, after one warm-up call.

    A measurement, not a formula: it depends on the machine, its load and its threads.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    times = []
    with torch.no_grad():
        module(*inputs)  # warm-up: first-call allocations and kernel selection
        for _ in range(repeats):
            start = time.perf_counter()
            module(*inputs)
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def block_macs(n_tokens: Any = "L", d: Any = "d", mlp_ratio: Any = 4, *, mlp_width: Any = None) -> sp.Expr:
    """MACs of one self-attention transformer block over ``L`` tokens: MHA plus a ``d → m → d`` MLP.

    The MLP width is ``m = mlp_ratio·d`` unless ``mlp_width`` is given.
    """
    n, d = _sym(n_tokens), _sym(d)
    m = _sym(mlp_ratio) * d if mlp_width is None else _sym(mlp_width)
    return mha_macs(n, n, d, 1) + 2 * n * d * m


def cross_frame_macs(T: Any = "T", N: Any = "N", d: Any = "d", mlp_ratio: Any = 4) -> sp.Expr:
    """MACs of :class:`vidlearn.temporal.CrossFrameAttention` on ``T`` frames of ``1 + N`` tokens.

    Message projection ``T·d²``; CFA: MHA over ``T`` message tokens; IFA: ``T`` MHAs over
    ``N + 2`` tokens; MLP over the ``T(N + 1)`` frame tokens.
    """
    T, N, d, r = _sym(T), _sym(N), _sym(d), _sym(mlp_ratio)
    return T * d**2 + mha_macs(T, T, d, 1) + T * mha_macs(N + 2, N + 2, d, 1) + 2 * r * T * (N + 1) * d**2


# --------------------------------------------------------------------------- ViViT (vidlearn.vivit)

# Symbols of the ViViT formulas: n_t temporal indices, N tokens per index, d width, L depth
# (Model 2: spatial depth), m MLP width, L_t Model 2's temporal depth, K classes, P = C·t·h·w
# values in one tubelet.
_VIVIT_SYMBOLS = ("n_t", "N", "d", "L", "m", "L_t", "K", "P")


def _vivit_structure(variant: str, pooling: str, temporal: bool) -> None:
    variants = ("joint", "factorised_encoder", "factorised_self_attention", "factorised_dot_product")
    if variant not in variants:
        raise ValueError(f"variant must be one of {variants}, got {variant!r}")
    if pooling not in ("cls", "mean"):
        raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}")


def vivit_macs_formula(variant: str, pooling: str = "cls", temporal: bool = True) -> sp.Expr:
    """MACs of one clip through a ViViT, in the symbols ``n_t, N, d, L, m, L_t, K, P``.

    As ``FlopCounterMode`` counts them: matrix products only (tubelet ``Conv3d`` ``n_t·N·d·P``,
    attention and MLP, head ``d·K``). ``temporal`` says whether Model 2 has a temporal
    encoder (``L_t > 0``).

    Model 4 is computed by reshaping (:func:`vidlearn.vivit.factorised_dot_product_attention`):
    its ``h/2`` spatial heads (width ``d/2`` together) score ``N`` keys per query in ``n_t``
    groups, ``n_t·N²·d`` MACs for scores and weighted sums; its ``h/2`` temporal heads score
    ``n_t`` keys in ``N`` groups, ``N·n_t²·d``. Attention costs ``n_t·N·(N + n_t)·d`` per layer,
    half of Model 3's ``2·n_t·N·(N + n_t)·d``.
    """
    _vivit_structure(variant, pooling, temporal)
    n_t, N, d, L, m, L_t, K, P = (_sym(s) for s in _VIVIT_SYMBOLS)
    c = 1 if pooling == "cls" else 0
    embed, head = n_t * N * d * P, d * K
    if variant == "joint":
        body = L * block_macs(c + n_t * N, d, mlp_width=m)
    elif variant == "factorised_dot_product":
        n, half = n_t * N, d / 2  # each head group has h/2 heads of width d/h: width d/2 in all
        attention = n_t * attention_macs(N, N, half) + N * attention_macs(n_t, n_t, half)
        body = L * (4 * n * d**2 + attention + 2 * n * d * m)  # Q, K, V, O projections; MLP
    elif variant == "factorised_self_attention":
        # spatial MHA on n_t groups of N, temporal MHA on N groups of n_t, MLP on every token
        per_block = n_t * mha_macs(N, N, d, 1) + N * mha_macs(n_t, n_t, d, 1) + 2 * n_t * N * d * m
        body = L * per_block
    else:
        body = n_t * L * block_macs(1 + N, d, mlp_width=m)  # spatial CLS per temporal index
        if temporal:
            body += L_t * block_macs(c + n_t, d, mlp_width=m)
    return sp.expand(embed + body + head)


def vivit_params_formula(variant: str, pooling: str = "cls", temporal: bool = True) -> sp.Expr:
    """Parameters of a ViViT, in the symbols ``n_t, N, d, L, m, L_t, K, P`` (every one, biases included).

    Tubelet ``Conv3d`` ``d·P + d``; a block ``4d² + 4d`` (MHA) ``+ 2dm + m + d`` (MLP) ``+ 4d``
    (two LayerNorms), Model 3's blocks another MHA and LayerNorm; ``2d`` per final LayerNorm;
    learned positional embeddings and CLS tokens ``d`` per token; head ``d·K + K``.
    """
    _vivit_structure(variant, pooling, temporal)
    n_t, N, d, L, m, L_t, K, P = (_sym(s) for s in _VIVIT_SYMBOLS)
    c = 1 if pooling == "cls" else 0
    mha, ln = 4 * d**2 + 4 * d, 2 * d
    block = mha + 2 * ln + 2 * d * m + m + d
    embed, head = d * P + d, d * K + K
    if variant == "factorised_encoder":
        body = (1 + (1 + N)) * d + L * block + ln  # spatial CLS, spatial positions, encoder, norm
        if temporal:
            body += (c + (c + n_t)) * d + L_t * block + ln
    else:
        per_block = block + (mha + ln if variant == "factorised_self_attention" else 0)
        body = (c + (c + n_t * N)) * d + L * per_block + ln
    return sp.expand(embed + body + head)


def _vivit_values(config) -> dict[str, int]:
    t, h, w = config.tubelet
    return dict(
        n_t=config.n_t, N=config.N, d=config.width, L=config.depth, m=config.mlp_width,
        L_t=config.temporal_depth, K=config.num_classes, P=config.channels * t * h * w,
    )


def _vivit_flags(config) -> tuple[str, str, bool]:
    return config.variant, config.pooling, config.temporal_depth > 0


def vivit_macs(config) -> int:
    """MACs of one clip through ``ViViT(config)`` (:func:`vivit_macs_formula` at the config's sizes)."""
    return evaluate(vivit_macs_formula(*_vivit_flags(config)), **_vivit_values(config))


def vivit_params(config) -> int:
    """Parameters of ``ViViT(config)`` (:func:`vivit_params_formula` at the config's sizes)."""
    return evaluate(vivit_params_formula(*_vivit_flags(config)), **_vivit_values(config))


__all__ += ["vivit_macs_formula", "vivit_params_formula", "vivit_macs", "vivit_params"]


# --------------------------------------------------------------------------- cross-modal (vidlearn.crossmodal)

# Symbols of the cross-modal formulas: n_x text tokens, n_v video tokens, d width, m MLP width.


def single_stream_block_macs(n_x: Any = "n_x", n_v: Any = "n_v", d: Any = "d", m: Any = "m") -> sp.Expr:
    """MACs of one block of :class:`vidlearn.crossmodal.SingleStreamEncoder`: a block over ``n_x + n_v`` tokens.

    Adding the segment embeddings is elementwise work, which the counter (and this count) ignores.
    """
    return block_macs(_sym(n_x) + _sym(n_v), d, mlp_width=m)


def co_attention_block_macs(n_x: Any = "n_x", n_v: Any = "n_v", d: Any = "d", m: Any = "m") -> sp.Expr:
    """MACs of one :class:`vidlearn.crossmodal.CoAttentionBlock`: two cross MHAs, then each stream's block.

    Which is cheaper: the single stream, always, by exactly ``4(n_x + n_v)d²`` per block.
    Both compute the same attention scores, ``2(n_x + n_v)²d = 2n_x²d + 2n_v²d + 2·(2n_x n_v d)``
    (self-text, self-video, the two cross terms), and the same MLPs; the two streams pay
    for a second set of Q, K, V, O projections over every token (the cross MHAs). Relative
    to a single-stream block the extra is ``2d / (2d + n_x + n_v + m)``: about a third at
    ``m = 4d`` with few tokens, vanishing once ``n_x + n_v ≫ d + m``.
    """
    n_x, n_v = _sym(n_x), _sym(n_v)
    cross = mha_macs(n_x, n_v, d, 1) + mha_macs(n_v, n_x, d, 1)  # text asks video, video asks text
    return cross + block_macs(n_x, d, mlp_width=m) + block_macs(n_v, d, mlp_width=m)


__all__ += ["single_stream_block_macs", "co_attention_block_macs"]


# --------------------------------------------------------------------------- retrieval (vidlearn.dual_encoder, vidlearn.videobert)

# Symbols of the retrieval formulas: Q text queries, M gallery videos, E shared embedding width;
# a tower of width d, MLP width m: N_v video tokens of P = C·t·h·w values each and K_v blocks,
# L_x text tokens and K_x blocks; a single-stream model of K blocks over L joint tokens.


def video_tower_macs(N_v: Any = "N_v", P: Any = "P", d: Any = "d", m: Any = "m", K_v: Any = "K_v",
                     E: Any = "E") -> sp.Expr:
    """MACs of one :meth:`vidlearn.dual_encoder.DualEncoder.encode_video` pass: the tubelet
    projection ``N_v·P·d``, ``K_v`` blocks over ``N_v`` tokens, the projection ``d·E``.

    Positions, mean pooling, LayerNorm and the L2 normalisation are elementwise or reductions,
    which the counter (and this count) ignores.
    """
    N_v, d = _sym(N_v), _sym(d)
    return N_v * _sym(P) * d + _sym(K_v) * block_macs(N_v, d, mlp_width=m) + d * _sym(E)


def text_tower_macs(L_x: Any = "L_x", d: Any = "d", m: Any = "m", K_x: Any = "K_x", E: Any = "E") -> sp.Expr:
    """MACs of one :meth:`vidlearn.dual_encoder.DualEncoder.encode_text` pass over ``L_x`` tokens
    (padding included: masked keys still cost): ``K_x`` blocks and the projection ``d·E``."""
    d = _sym(d)
    return _sym(K_x) * block_macs(L_x, d, mlp_width=m) + d * _sym(E)


def dual_encoder_retrieval_macs(Q: Any = "Q", M: Any = "M", video: Any = "V", text: Any = "X", E: Any = "E") -> sp.Expr:
    """MACs of answering ``Q`` text queries over ``M`` videos with a dual encoder:
    ``M·V + Q·X + Q·M·E`` (each video and each query encoded once, then ``Q·M`` dot products of
    width ``E``). ``video``, ``text``: one tower pass (:func:`video_tower_macs`, :func:`text_tower_macs`).
    The gallery's ``M·V`` is paid once, when the videos are indexed, not per query."""
    Q, M = _sym(Q), _sym(M)
    return M * _sym(video) + Q * _sym(text) + Q * M * _sym(E)


def single_stream_retrieval_macs(Q: Any = "Q", M: Any = "M", L: Any = "L", d: Any = "d", m: Any = "m",
                                 K: Any = "K") -> sp.Expr:
    """MACs of answering ``Q`` text queries over ``M`` videos with VideoBERT's alignment head
    (:func:`vidlearn.videobert.retrieval_scores`): ``Q·M`` joint passes of ``K`` blocks over the
    ``L`` tokens of ``[CLS] text [>] video [SEP]``, each with the head on ``[CLS]``
    (``d·d`` pooler, ``d`` logit). The visual words are indexed ahead (not counted here); the joint
    passes cannot be: every pair is its own pass."""
    d = _sym(d)
    return _sym(Q) * _sym(M) * (_sym(K) * block_macs(L, d, mlp_width=m) + d**2 + d)


def _retrieval_sizes(config, want: type, fields: tuple[str, ...], Q, M, length_name: str, length,
                     max_name: str) -> None:
    """ValueError naming the problem: ``config`` not a ``want`` or a size of it not a positive int; ``Q``
    queries or ``M`` videos not an int >= 0 (0 costs the other side alone: indexing the gallery); the
    sequence length not a positive int, or longer than the model takes (``config.<max_name>``)."""
    from vidlearn.validation import check_int

    if not isinstance(config, want):
        raise ValueError(f"config must be a {want.__name__}, got {type(config).__name__}")
    for name in fields:
        check_int(getattr(config, name), f"config.{name}")
    check_int(Q, "Q", minimum=0)
    check_int(M, "M", minimum=0)
    check_int(length, length_name)
    if length > getattr(config, max_name):
        raise ValueError(f"{length_name}={length} is longer than the model takes (config.{max_name}="
                         f"{getattr(config, max_name)})")


def dual_encoder_macs(config, Q: int, M: int, text_len: int) -> int:
    """:func:`dual_encoder_retrieval_macs` at a :class:`vidlearn.dual_encoder.DualEncoderConfig`'s
    sizes, for captions padded to ``text_len`` words."""
    from vidlearn.dual_encoder import DualEncoderConfig

    _retrieval_sizes(config, DualEncoderConfig, ("width", "mlp_width", "video_depth", "text_depth", "embed_dim"),
                     Q, M, "text_len", text_len, "max_text_len")
    c = config
    g = c.grid
    t, h, w = c.tubelet
    video = video_tower_macs(g.n_t * g.n_h * g.n_w, c.channels * t * h * w, c.width, c.mlp_width, c.video_depth,
                             c.embed_dim)
    text = text_tower_macs(text_len, c.width, c.mlp_width, c.text_depth, c.embed_dim)
    return int(dual_encoder_retrieval_macs(Q, M, video, text, c.embed_dim))


def single_stream_macs(config, Q: int, M: int, joint_len: int) -> int:
    """:func:`single_stream_retrieval_macs` at a :class:`vidlearn.videobert.VideoBERTConfig`'s sizes,
    for joint sequences of ``joint_len`` tokens."""
    from vidlearn.videobert import VideoBERTConfig

    _retrieval_sizes(config, VideoBERTConfig, ("width", "mlp_width", "depth"), Q, M, "joint_len", joint_len, "max_len")
    c = config
    return int(single_stream_retrieval_macs(Q, M, joint_len, c.width, c.mlp_width, c.depth))


__all__ += ["video_tower_macs", "text_tower_macs", "dual_encoder_retrieval_macs", "single_stream_retrieval_macs",
            "dual_encoder_macs", "single_stream_macs"]
