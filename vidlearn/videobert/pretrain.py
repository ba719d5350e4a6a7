"""VideoBERT pre-training: MLM on text-only, video-only and text+video sequences plus
linguistic-visual alignment with true negatives (:class:`PretrainConfig`, :func:`pretrain`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm import tqdm  # text bars: tqdm.auto warns in notebooks without ipywidgets

from vidlearn.train import Optimiser
from vidlearn.validation import check_int
from vidlearn.videobert.model import VideoBERT
from vidlearn.videobert.pairs import _caption_groups, _check_pairs, _other_caption
from vidlearn.videobert.sequences import IGNORE, build_sequence, mask_tokens, pad_batch
from vidlearn.videobert.vocab import JointVocabulary

__all__ = ["PretrainConfig", "pretrain"]


@dataclass(frozen=True)
class PretrainConfig:
    """How to pre-train: ``steps`` AdamW steps (warm-up then cosine decay) of ``batch_size``
    sequences, split ``mix`` = (text-only, video-only, text+video) in proportion. A fraction
    ``negative_fraction`` of the text+video sequences has a mismatched video (alignment
    negatives); the loss is ``MLM + alignment_weight · BCE``."""

    steps: int = 300
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: int = 30
    seed: int = 0
    mask_prob: float = 0.15
    mix: tuple[float, float, float] = (0.25, 0.25, 0.5)
    negative_fraction: float = 0.5
    alignment_weight: float = 1.0

    def __post_init__(self):
        for name in ("steps", "batch_size"):
            check_int(getattr(self, name), name)
        check_int(self.warmup, "warmup", minimum=0)
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if not 0 < self.mask_prob <= 1:
            raise ValueError(f"mask_prob must lie in (0, 1], got {self.mask_prob!r}")
        if not 0 <= self.negative_fraction < 1:
            raise ValueError(f"negative_fraction must lie in [0, 1), got {self.negative_fraction!r}")
        if len(self.mix) != 3 or min(self.mix) < 0 or sum(self.mix) <= 0:
            raise ValueError(f"mix must be three non-negative weights (text, video, text+video), got {self.mix!r}")
        if self.kind_counts[2] < 1:
            raise ValueError(f"mix={self.mix} leaves no text+video sequence in a batch of {self.batch_size}")

    @property
    def kind_counts(self) -> tuple[int, int, int]:
        """Sequences per step of each kind: (text-only, video-only, text+video)."""
        total = sum(self.mix)
        n_text = round(self.batch_size * self.mix[0] / total)
        n_video = round(self.batch_size * self.mix[1] / total)
        return n_text, n_video, self.batch_size - n_text - n_video


def pretrain(
    model: VideoBERT,
    text_ids: Sequence[Sequence[int]],
    visual_ids: torch.Tensor,
    vocab: JointVocabulary,
    config: PretrainConfig = PretrainConfig(),
    *,
    progress: bool = True,
) -> dict[str, list[float]]:
    """Pre-train ``model`` on ``M`` (caption, video) pairs of raw ids; returns per-step losses
    ``{"loss", "mlm", "alignment"}``.

    Each step draws ``batch_size`` pairs with replacement and builds
    :attr:`PretrainConfig.kind_counts` text-only, video-only and text+video sequences, all
    masked by :func:`mask_tokens`, in one padded batch. The alignment loss (BCE on
    ``[CLS]``) runs on the text+video sequences; in ``negative_fraction`` of them the video
    is swapped for the video of a pair with a *different* caption, so every negative is a
    true negative. The MLM loss (cross-entropy on chosen positions) covers every sequence
    except those negatives, whose mismatched video would teach wrong text-video pairings.
    As with BERT's next-sentence task, alignment is judged on the masked input (one forward
    pass serves both losses). Same model initialisation and ``config.seed`` give the same run.
    """
    if not isinstance(model, VideoBERT):
        raise ValueError(f"model must be a VideoBERT, got {type(model).__name__}")
    if not isinstance(config, PretrainConfig):
        raise ValueError(f"config must be a PretrainConfig, got {type(config).__name__}")
    texts, visual_ids = _check_pairs(text_ids, visual_ids, vocab)
    if model.config.vocab_size != vocab.size:
        raise ValueError(f"the model has {model.config.vocab_size} token embeddings but the vocabulary {vocab.size} ids")
    longest = max(len(t) for t in texts) + visual_ids.shape[1] + 3  # [CLS] text [>] video [SEP]
    if longest > model.config.max_len:
        raise ValueError(f"the longest text+video sequence has {longest} tokens > max_len={model.config.max_len}")
    groups = _caption_groups(texts)
    n_text, n_video, n_joint = config.kind_counts
    n_neg = round(config.negative_fraction * n_joint)
    first_joint = n_text + n_video
    aligned = (torch.arange(n_joint) >= n_neg).float()  # (n_joint,): negatives come first
    M = len(texts)

    model.train()
    optimiser = Optimiser(model, config)
    g = torch.Generator().manual_seed(config.seed)
    history: dict[str, list[float]] = {"loss": [], "mlm": [], "alignment": []}
    bar = tqdm(range(config.steps), desc="VideoBERT", disable=not progress, leave=False, mininterval=0.5)
    for step in bar:
        pick = torch.randint(M, (config.batch_size,), generator=g).tolist()
        joint = pick[first_joint:]
        video_of = torch.tensor(joint)
        if n_neg:
            video_of[:n_neg] = _other_caption(video_of[:n_neg], groups, g)
        seqs = (
            [build_sequence(texts[i], None, vocab) for i in pick[:n_text]]
            + [build_sequence(None, visual_ids[i], vocab) for i in pick[n_text:first_joint]]
            + [build_sequence(texts[i], visual_ids[v], vocab) for i, v in zip(joint, video_of.tolist())]
        )
        ids, segments, mask = pad_batch(seqs)  # (B, L) each
        masked, labels = mask_tokens(ids, vocab, g, config.mask_prob)
        labels[first_joint : first_joint + n_neg] = IGNORE
        hidden = model(masked, segments, mask)  # (B, L, D)
        chosen = labels != IGNORE  # (B, L)
        mlm = F.cross_entropy(model.mlm_logits(hidden[chosen]), labels[chosen])  # logits (N_chosen, V)
        alignment = F.binary_cross_entropy_with_logits(model.alignment_logits(hidden[first_joint:]), aligned)
        loss = mlm + config.alignment_weight * alignment
        optimiser.step(loss)
        for key, value in (("loss", loss), ("mlm", mlm), ("alignment", alignment)):
            history[key].append(value.item())
        if step % 10 == 0:
            bar.set_postfix(mlm=f"{history['mlm'][-1]:.3f}", align=f"{history['alignment'][-1]:.3f}")
    bar.close()
    return history
