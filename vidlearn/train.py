"""Training a video classifier on generated clips, reproducibly, on a laptop CPU.

Every step draws a fresh batch from :func:`vidlearn.data.generate` with a seed derived
from the run's seed and the step number, so a run never sees the same clip twice (no
over-fitting to a small training set) and two runs with the same seed are identical.
The held-out clips come from a seed no training step uses.

    cfg = TrainConfig(steps=300)
    result = train_classifier(ViViT(ViViTConfig.tiny("joint")), cfg, name="Model 1")
    result.accuracy                      # held-out accuracy on the target label
    print(results_table([result, ...]))  # a markdown table

Optimisation is the usual recipe for small transformers: AdamW, linear warm-up then cosine
decay of the learning rate, gradient clipping at norm 1.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn
from tqdm import tqdm  # text bars: tqdm.auto warns in notebooks without ipywidgets

from vidlearn.data import MovingShapesConfig, VideoBatch, generate, shuffle_frames
from vidlearn.flops import vivit_macs
from vidlearn.validation import check_int
from vidlearn.vivit import ViViT, ViViTConfig

__all__ = [
    "TARGETS", "TrainConfig", "TrainResult", "Optimiser", "train_classifier", "train_vivit", "held_out", "accuracy",
    "shuffled_accuracy", "results_table",
]

# "caption" is the whole label combination (VideoBatch.caption_id): one class per caption
TARGETS = ("direction", "shape", "colour", "speed", "caption")
# Training batches use seeds seed·STRIDE + step and the held-out set seed·STRIDE - 1, so
# no training batch ever shares a seed with the evaluation clips.
_STRIDE = 1_000_003


@dataclass(frozen=True)
class TrainConfig:
    """How to train: ``steps`` optimiser steps of ``batch_size`` fresh clips, evaluated on
    ``eval_clips`` held-out clips; ``target`` is the label to predict (one of :data:`TARGETS`)."""

    steps: int = 300
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup: int = 30
    seed: int = 0
    eval_clips: int = 512
    target: str = "direction"
    data: MovingShapesConfig = field(default_factory=MovingShapesConfig)

    def __post_init__(self):
        for name in ("steps", "batch_size", "eval_clips"):
            check_int(getattr(self, name), name)
        check_int(self.warmup, "warmup", minimum=0)
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {self.target!r}")
        if not isinstance(self.data, MovingShapesConfig):
            raise ValueError(f"data must be a MovingShapesConfig, got {type(self.data).__name__}")

    @property
    def num_classes(self) -> int:
        """Number of values the target label takes."""
        if self.target == "caption":
            return self.data.n_captions
        return len(getattr(self.data, {"colour": "colours", "shape": "shapes"}.get(self.target, self.target + "s")))


@dataclass
class TrainResult:
    """What a run measured: held-out ``accuracy``, the training ``losses`` per step,
    wall-clock ``seconds`` of training (evaluation excluded), and the model's ``params``."""

    name: str
    accuracy: float
    losses: list[float]
    seconds: float
    params: int
    steps: int
    macs: int | None = None
    model: nn.Module | None = field(default=None, repr=False)

    @property
    def final_loss(self) -> float:
        """Mean training loss over the last tenth of the steps (less noisy than the last step)."""
        tail = self.losses[-max(1, len(self.losses) // 10):]
        return sum(tail) / len(tail)


def _labels(batch: VideoBatch, target: str) -> torch.Tensor:
    return batch.caption_id if target == "caption" else getattr(batch, target)  # (B,) int64


def _lr_factor(step: int, config: TrainConfig) -> float:
    """Linear warm-up to 1 over ``warmup`` steps, then cosine decay to 0 at ``steps``."""
    if step < config.warmup:
        return (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.steps - config.warmup)
    return 0.5 * (1 + math.cos(math.pi * progress))


class Optimiser:
    """The course's optimisation recipe, in one place: AdamW, the learning rate warmed up then
    decayed by :func:`_lr_factor`, gradients clipped at norm 1.

    ``config`` supplies ``lr``, ``weight_decay``, ``steps`` and ``warmup`` (a :class:`TrainConfig`
    or a :class:`vidlearn.videobert.PretrainConfig`); :meth:`step` takes one training step.
    """

    def __init__(self, model: nn.Module, config):
        self.params = list(model.parameters())
        self.opt = torch.optim.AdamW(self.params, lr=config.lr, weight_decay=config.weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: _lr_factor(s, config))

    def step(self, loss: torch.Tensor) -> None:
        """Back-propagate ``loss``, clip, update, and advance the schedule."""
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.params, 1.0)
        self.opt.step()
        self.sched.step()


@torch.no_grad()
def accuracy(model: nn.Module, video: torch.Tensor, labels: torch.Tensor, *, batch_size: int = 256) -> float:
    """Fraction of ``video (B, T, C, H, W)`` clips whose arg-max logit is ``labels (B,)``."""
    if video.shape[0] != labels.shape[0]:
        raise ValueError(f"{video.shape[0]} clips but {labels.shape[0]} labels")
    was_training = model.training
    model.eval()
    try:
        correct = sum(
            (model(video[i : i + batch_size]).argmax(dim=-1) == labels[i : i + batch_size]).sum().item()
            for i in range(0, video.shape[0], batch_size)
        )
    finally:
        model.train(was_training)
    return correct / video.shape[0]


def train_classifier(
    model: nn.Module,
    config: TrainConfig = TrainConfig(),
    *,
    name: str = "model",
    progress: bool = True,
    transform: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
) -> TrainResult:
    """Train ``model`` (clips ``(B, T, C, H, W)`` -> logits ``(B, classes)``) on fresh generated
    batches and return its held-out accuracy.

    Training starts from the model's current parameters (nothing is re-initialised): pass a
    freshly built model, built after ``torch.manual_seed`` if the run should be reproducible. ``transform``
    (e.g. :func:`vidlearn.data.shuffle_frames`) is applied to every training and held-out
    clip batch with a generator seeded from the run.
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    probe = generate(config.data, 1, seed=0)
    with torch.no_grad():
        out = model.eval()(probe.video)
    if out.ndim != 2 or out.shape[1] != config.num_classes:
        raise ValueError(
            f"the model gives logits of shape {tuple(out.shape)} but target {config.target!r} has "
            f"{config.num_classes} classes: expected (1, {config.num_classes})"
        )
    model.train()
    optimiser = Optimiser(model, config)
    g = torch.Generator().manual_seed(config.seed)
    losses: list[float] = []
    start = time.perf_counter()
    bar = tqdm(range(config.steps), desc=name, disable=not progress, leave=False, mininterval=0.5)
    for step in bar:
        batch = generate(config.data, config.batch_size, seed=config.seed * _STRIDE + step)
        video = batch.video if transform is None else transform(batch.video, g)  # (B, T, C, H, W)
        loss = nn.functional.cross_entropy(model(video), _labels(batch, config.target))
        optimiser.step(loss)
        losses.append(loss.item())
        if step % 10 == 0:
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    seconds = time.perf_counter() - start
    bar.close()

    clips = held_out(config)
    video = clips.video if transform is None else transform(clips.video, g)
    acc = accuracy(model, video, _labels(clips, config.target))
    params = sum(p.numel() for p in model.parameters())
    return TrainResult(name, acc, losses, seconds, params, config.steps, model=model)


def held_out(config: TrainConfig) -> VideoBatch:
    """The ``eval_clips`` held-out clips of a run: drawn from a seed no training step uses."""
    return generate(config.data, config.eval_clips, seed=config.seed * _STRIDE - 1)


def shuffled_accuracy(model: nn.Module, config: TrainConfig, *, seed: int = 0) -> float:
    """Held-out accuracy with each clip's frames in a random order (one permutation per clip).

    On a task where only the order carries the label (the direction of motion on the torus
    canvas, chapter 5 §7) every model, whatever it learned, is at chance here: the check
    confirms the data's construction, it does not rank models. On a task the frames' content
    decides (shape, colour), an order-blind model keeps its accuracy."""
    clips = held_out(config)
    video = shuffle_frames(clips.video, torch.Generator().manual_seed(seed))  # (B, T, C, H, W)
    return accuracy(model, video, _labels(clips, config.target))


def train_vivit(config: ViViTConfig, train_config: TrainConfig = TrainConfig(), *, name: str | None = None, **kwargs) -> TrainResult:
    """Build ``ViViT(config)`` with ``torch.manual_seed(train_config.seed)`` and train it with
    :func:`train_classifier`; the result carries the model's MACs per clip."""
    torch.manual_seed(train_config.seed)
    model = ViViT(config)
    result = train_classifier(model, train_config, name=name or config.variant, **kwargs)
    result.macs = vivit_macs(config)
    return result


def results_table(results: list[TrainResult], *, chance: float | None = None) -> str:
    """A markdown table of runs: accuracy, parameters, MACs per clip and training seconds."""
    lines = [
        "| model | held-out accuracy | params | MACs / clip | train s | final loss |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        macs = "" if r.macs is None else f"{r.macs / 1e6:.2f} M"
        lines.append(
            f"| {r.name} | {r.accuracy:.3f} | {r.params:,} | {macs} | {r.seconds:.1f} | {r.final_loss:.3f} |"
        )
    if chance is not None:
        lines.append(f"\nChance level: {chance:.3f}.")
    return "\n".join(lines)
