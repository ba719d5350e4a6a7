"""The symmetric InfoNCE loss of contrastive dual encoders (CLIP; CLIP4Clip, Luo et al. 2021).

A batch of ``B`` matching pairs, video embeddings ``v (B, D)`` and text embeddings
``t (B, D)``: row ``i`` of each belongs together. Both are L2-normalised, and the logits are
cosine similarities over a temperature ``τ``::

    S = v̂ t̂ᵀ / τ                                   (B, B): S[i, j] = cos(v_i, t_j) / τ
    L = ½ [ CE(S, diag) + CE(Sᵀ, diag) ]             video→text rows, text→video columns

``CE(S, diag) = -(1/B) Σ_i log softmax(S[i])[i]``: each video must pick out its own caption
among the ``B`` in the batch, and (``Sᵀ``) each caption its own video. Its gradient with respect
to one logit is ``(softmax(S[i])[j] − [i = j]) / B`` per direction, and with all embeddings
equal every softmax is uniform, so ``L = log B``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["similarity_logits", "symmetric_info_nce"]


def _check_embeddings(**tensors) -> None:
    for name, x in tensors.items():
        if not isinstance(x, torch.Tensor) or x.ndim != 2 or not x.dtype.is_floating_point:
            got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{name} must be float embeddings (B, D), got {got}")
        if x.shape[0] < 1 or x.shape[1] < 1:
            raise ValueError(f"{name} is empty, (B, D) = {tuple(x.shape)}: need at least one embedding of width >= 1")


def _check_pairs(video: torch.Tensor, text: torch.Tensor) -> None:
    _check_embeddings(video=video, text=text)
    if video.shape != text.shape:
        raise ValueError(f"video {tuple(video.shape)} and text {tuple(text.shape)} must both be (B, D): row i of each is one pair")


def _check_temperature(temperature) -> torch.Tensor | float:
    if isinstance(temperature, torch.Tensor):
        if not temperature.dtype.is_floating_point:  # a bool, integer or complex tensor is not a temperature
            raise ValueError(f"temperature must be a floating-point number or tensor, got a {temperature.dtype} tensor")
        if temperature.numel() != 1 or not bool(temperature.detach() > 0) or not torch.isfinite(temperature.detach()).all():
            raise ValueError(f"temperature must be one positive finite number, got {temperature.detach().flatten()[:4].tolist()}")
        return temperature.reshape(())
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (0 < temperature < math.inf):
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
    return float(temperature)


def similarity_logits(video: torch.Tensor, text: torch.Tensor, temperature) -> torch.Tensor:
    """``S = v̂ t̂ᵀ / τ``: ``(B_v, B_t)`` cosine similarities over the temperature.

    Here ``video (B_v, D)`` and ``text (B_t, D)`` may have different batch sizes (a gallery
    scored against queries); ``temperature`` is a positive number or a one-element tensor
    (learnable, e.g. ``log_tau.exp()``).
    """
    _check_embeddings(video=video, text=text)
    if video.shape[1] != text.shape[1]:
        raise ValueError(f"video and text embeddings must have the same width D, got {video.shape[1]} and {text.shape[1]}")
    if video.dtype != text.dtype:
        raise ValueError(f"video is {video.dtype} and text {text.dtype}: convert one so both have the same dtype")
    tau = _check_temperature(temperature)
    return F.normalize(video, dim=-1) @ F.normalize(text, dim=-1).T / tau  # (B_v, B_t)


def symmetric_info_nce(video: torch.Tensor, text: torch.Tensor, temperature) -> torch.Tensor:
    """The symmetric InfoNCE loss of ``B`` pairs ``video (B, D)``, ``text (B, D)``: a scalar.

    ``½ [CE(S, diag) + CE(Sᵀ, diag)]`` with ``S = v̂ t̂ᵀ / τ`` (:func:`similarity_logits`); row
    ``i`` of ``video`` and of ``text`` are a matching pair, every other row of the batch a negative.
    """
    _check_pairs(video, text)
    logits = similarity_logits(video, text, temperature)  # (B, B): rows are videos, columns captions
    target = torch.arange(logits.shape[0], device=logits.device)  # (B,): the pair is on the diagonal
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
