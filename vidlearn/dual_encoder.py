"""A contrastive dual encoder for clips and captions (CLIP; CLIP4Clip, Luo et al. 2021).

Two separate towers whose outputs meet only in a dot product::

    video (B, T, C, H, W) -> tubelet tokens + time and space positions -> blocks -> mean -> W_v -> v̂ (B, E)
    ids (B, L), mask (B, L) -> word + position embeddings -> blocks (padding never a key)
                            -> mean over real tokens -> W_t -> t̂ (B, E)
    loss = symmetric_info_nce(v̂, t̂, τ),  τ = exp(log τ) learnable, clamped to [min, max]

The video tower is CLIP4Clip's "mean pooling" variant built from the course's pieces
(:class:`~vidlearn.tubelets.TubeletEmbedding`, :class:`~vidlearn.blocks.ResidualAttentionBlock`),
with joint space-time attention; a learned embedding per tubelet *time step* is what lets it
tell a clip from the same clip reversed (mean pooling and self-attention alone are
permutation-invariant). Retrieval over a gallery of ``M`` videos encodes each video once, then
answers a text query with ``M`` dot products: see :func:`vidlearn.flops.dual_encoder_retrieval_macs`
against VideoBERT's ``Q·M`` joint passes.

Training (:func:`train_dual_encoder`) runs on the captioned moving-shapes clips of
:mod:`vidlearn.data`, as chapter 6's VideoBERT does, and :func:`retrieval_recall` measures
text→video and video→text recall with :func:`vidlearn.videobert.recall_at_k` and its exact chance
level :func:`vidlearn.videobert.chance_recall` (relevance: the same caption; captions repeat).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm  # text bars, as vidlearn.videobert: tqdm.auto warns in notebooks without ipywidgets

from vidlearn.blocks import ResidualAttentionBlock, run_blocks
from vidlearn.contrastive import similarity_logits, symmetric_info_nce
from vidlearn.data import VideoBatch
from vidlearn.train import Optimiser
from vidlearn.tubelets import TubeletEmbedding, token_grid
from vidlearn.validation import check_int
from vidlearn.videobert import WordTokenizer, chance_recall, pad_batch, recall_at_k

__all__ = [
    "DualEncoderConfig",
    "DualEncoder",
    "DualTrainConfig",
    "encode_captions",
    "train_dual_encoder",
    "dual_scores",
    "retrieval_recall",
]


@dataclass(frozen=True)
class DualEncoderConfig:
    """Sizes of a :class:`DualEncoder`.

    Video: clips of ``frames × channels × size × size`` cut into ``tubelet = (t, h, w)`` tubelets,
    ``video_depth`` blocks. Text: ``vocab_size`` word ids (a :class:`~vidlearn.videobert.WordTokenizer`'s),
    at most ``max_text_len`` words, ``text_depth`` blocks. Both towers have width ``width``,
    ``heads`` heads and an ``mlp_width`` MLP, and project to the shared ``embed_dim``. The
    temperature starts at ``init_temperature`` (CLIP's 0.07) and is clamped to
    ``[min_temperature, max_temperature]`` (CLIP caps the logit scale 1/τ at 100: τ >= 0.01).
    """

    vocab_size: int
    max_text_len: int = 8
    frames: int = 8
    channels: int = 3
    size: int = 32
    tubelet: tuple[int, int, int] = (2, 8, 8)
    width: int = 64
    video_depth: int = 2
    text_depth: int = 1
    heads: int = 4
    mlp_width: int = 128
    embed_dim: int = 32
    init_temperature: float = 0.07
    min_temperature: float = 0.01
    max_temperature: float = 1.0

    def __post_init__(self):
        for name in ("vocab_size", "max_text_len", "frames", "channels", "size", "width", "video_depth",
                     "text_depth", "heads", "mlp_width", "embed_dim"):
            check_int(getattr(self, name), name)
        tubelet = tuple(self.tubelet) if hasattr(self.tubelet, "__iter__") else ()
        if len(tubelet) != 3:
            raise ValueError(f"tubelet must be three sizes (t, h, w), got {self.tubelet!r}")
        for s in tubelet:
            check_int(s, "tubelet size")
        object.__setattr__(self, "tubelet", tubelet)
        token_grid(self.frames, self.size, self.size, tubelet)  # a clear error if no tubelet fits
        if self.width % self.heads:
            raise ValueError(f"heads={self.heads} must divide width={self.width}")
        temps = (self.min_temperature, self.init_temperature, self.max_temperature)
        if not all(isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) for t in temps):
            raise ValueError(f"temperatures must be finite numbers, got {temps}")
        if not 0 < self.min_temperature <= self.init_temperature <= self.max_temperature:
            raise ValueError(f"need 0 < min_temperature <= init_temperature <= max_temperature, got {temps}")

    @property
    def grid(self):
        """The video tower's token grid: ``n_t`` time steps × ``n_h·n_w`` patches."""
        return token_grid(self.frames, self.size, self.size, self.tubelet)


class DualEncoder(nn.Module):
    """Video tower + text tower + learnable temperature; ``forward(video, ids, mask)`` is the
    symmetric InfoNCE loss of the ``B`` pairs (row ``i`` of each input is one pair)."""

    def __init__(self, config: DualEncoderConfig):
        super().__init__()
        if not isinstance(config, DualEncoderConfig):
            raise ValueError(f"expected a DualEncoderConfig, got {type(config).__name__}")
        c = self.config = config
        d, grid = c.width, c.grid

        def blocks(n: int) -> nn.ModuleList:
            return nn.ModuleList(ResidualAttentionBlock(d, c.heads, mlp_width=c.mlp_width) for _ in range(n))

        # video tower
        self.tubelets = TubeletEmbedding(c.channels, d, c.tubelet)
        self.time_embed = nn.Parameter(torch.randn(grid.n_t, 1, d) * 0.02)  # (n_t, 1, D): one per time step
        self.space_embed = nn.Parameter(torch.randn(1, grid.n_h * grid.n_w, d) * 0.02)  # (1, n_h·n_w, D)
        self.video_blocks = blocks(c.video_depth)
        self.video_norm = nn.LayerNorm(d)
        self.video_proj = nn.Linear(d, c.embed_dim, bias=False)
        # text tower
        self.word_embed = nn.Embedding(c.vocab_size, d)
        self.text_position = nn.Parameter(torch.randn(c.max_text_len, d) * 0.02)  # (L_max, D)
        nn.init.normal_(self.word_embed.weight, std=0.02)
        self.text_blocks = blocks(c.text_depth)
        self.text_norm = nn.LayerNorm(d)
        self.text_proj = nn.Linear(d, c.embed_dim, bias=False)
        # the temperature, learned in log space as CLIP's logit scale
        self.log_temperature = nn.Parameter(torch.tensor(math.log(c.init_temperature)))

    @property
    def temperature(self) -> torch.Tensor:
        """``τ = exp(clamp(log τ, log τ_min, log τ_max))``: a 0-d tensor that carries gradient inside the range."""
        c = self.config
        return self.log_temperature.clamp(math.log(c.min_temperature), math.log(c.max_temperature)).exp()

    def _check_video(self, video) -> None:
        c = self.config
        want = (c.frames, c.channels, c.size, c.size)
        if not isinstance(video, torch.Tensor) or video.ndim != 5 or not video.dtype.is_floating_point:
            got = f"{video.dtype} {tuple(video.shape)}" if isinstance(video, torch.Tensor) else type(video).__name__
            raise ValueError(f"video must be a float tensor (B, T, C, H, W), got {got}")
        if tuple(video.shape[1:]) != want or video.shape[0] < 1:
            raise ValueError(f"video must be (B, T, C, H, W) with (T, C, H, W) = {want} and B >= 1, "
                             f"got {tuple(video.shape)}")
        dtype = self.log_temperature.dtype
        if video.dtype != dtype:
            raise ValueError(f"video is {video.dtype} but the model's weights are {dtype}: convert one (e.g. video.to({dtype}))")

    def _check_text(self, ids, mask) -> None:
        c = self.config
        if not isinstance(ids, torch.Tensor) or ids.ndim != 2 or ids.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"ids must be an integer tensor (B, L), got {getattr(ids, 'shape', type(ids).__name__)!r}")
        B, L = ids.shape
        if B < 1 or not 1 <= L <= c.max_text_len:
            raise ValueError(f"ids must be (B, L) with B >= 1 and 1 <= L <= max_text_len={c.max_text_len}, got {(B, L)}")
        if ((ids < 0) | (ids >= c.vocab_size)).any():
            raise ValueError(f"ids must lie in [0, {c.vocab_size}), got values from {int(ids.min())} to {int(ids.max())}")
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != (B, L):
            got = f"{mask.dtype} {tuple(mask.shape)}" if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(f"mask must be bool (B, L) = {(B, L)}, True = real word; got {got}")
        if not mask.any(dim=1).all():
            raise ValueError("every caption needs at least one real word (mask all False in some row)")

    def video_features(self, video: torch.Tensor) -> torch.Tensor:
        """``video (B, T, C, H, W)`` -> pooled, unprojected features ``(B, D)``."""
        self._check_video(video)
        x = self.tubelets(video)  # (B, n_t, n_h·n_w, D)
        x = (x + self.time_embed + self.space_embed).flatten(1, 2)  # (B, N, D): time-major tokens
        x = run_blocks(self.video_blocks, x)  # (B, N, D): joint space-time attention
        return self.video_norm(x.mean(dim=1))  # (B, D): CLIP4Clip's mean pooling

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """``video (B, T, C, H, W)`` -> L2-normalised embeddings ``(B, E)``."""
        return F.normalize(self.video_proj(self.video_features(video)), dim=-1)  # (B, E)

    def text_features(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``ids (B, L)``, ``mask (B, L)`` (True = real word) -> mean over real tokens ``(B, D)``."""
        self._check_text(ids, mask)
        x = self.word_embed(ids) + self.text_position[: ids.shape[1]]  # (B, L, D)
        x = run_blocks(self.text_blocks, x, mask[:, None, :])  # (B, L, D): padding is never a key
        w = mask.to(x.dtype)[..., None]  # (B, L, 1)
        return self.text_norm((x * w).sum(dim=1) / w.sum(dim=1))  # (B, D): padded positions excluded

    def encode_text(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``ids (B, L)``, ``mask (B, L)`` -> L2-normalised embeddings ``(B, E)``."""
        return F.normalize(self.text_proj(self.text_features(ids, mask)), dim=-1)  # (B, E)

    def forward(self, video: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Symmetric InfoNCE of ``B`` (clip, caption) pairs: a scalar."""
        v, t = self.encode_video(video), self.encode_text(ids, mask)  # (B, E) each
        if v.shape[0] != t.shape[0]:
            raise ValueError(f"{v.shape[0]} clips but {t.shape[0]} captions: pairs must match")
        return symmetric_info_nce(v, t, self.temperature)


def encode_captions(tokenizer: WordTokenizer, captions: Sequence[str], max_len: int | None = None):
    """Captions -> ``ids (B, L)`` int64 padded with id 0, ``mask (B, L)`` bool (True = real word).

    ``L`` is the longest caption's length; ``max_len`` (the model's ``max_text_len``) bounds it.
    """
    if not isinstance(tokenizer, WordTokenizer):
        raise ValueError(f"tokenizer must be a WordTokenizer, got {type(tokenizer).__name__}")
    if isinstance(captions, (str, bytes)) or not isinstance(captions, Sequence) or len(captions) == 0:
        raise ValueError(f"captions must be a non-empty sequence (list, tuple) of strings, got "
                         f"{type(captions).__name__}" + (" (a single string is not one)" if isinstance(captions, str) else ""))
    if max_len is not None:
        check_int(max_len, "max_len")
    bad = next((c for c in captions if not isinstance(c, str)), None)
    if bad is not None:
        raise ValueError(f"every caption must be a string, got {type(bad).__name__}")
    words = [tokenizer.encode(c) for c in captions]
    if any(len(w) == 0 for w in words):
        raise ValueError("every caption needs at least one word")
    L = max(len(w) for w in words)
    if max_len is not None and L > max_len:
        raise ValueError(f"a caption has {L} words > max_len={max_len}")
    # one segment throughout: VideoBERT's padding serves a single stream of words as well
    ids, _, mask = pad_batch([(torch.tensor(w), torch.zeros(len(w), dtype=torch.long)) for w in words])  # (B, L) each
    return ids, mask


@dataclass(frozen=True)
class DualTrainConfig:
    """``steps`` AdamW steps (warm-up then cosine decay, the course's :class:`~vidlearn.train.Optimiser`)
    of ``batch_size`` pairs drawn without replacement from the training clips; ``seed`` fixes the draws."""

    steps: int = 300
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: int = 20
    seed: int = 0

    def __post_init__(self):
        check_int(self.steps, "steps")
        check_int(self.batch_size, "batch_size", minimum=2)  # one pair has no negative
        check_int(self.warmup, "warmup", minimum=0)
        for name in ("lr", "weight_decay"):
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or value < 0 or (name == "lr" and value == 0):
                raise ValueError(f"{name} must be a finite number {'> 0' if name == 'lr' else '>= 0'}, got {value!r}")
        check_int(self.seed, "seed", minimum=-(2**63))


class _DualOptimiser(Optimiser):
    """The course's recipe (:class:`~vidlearn.train.Optimiser`: AdamW, warm-up and cosine decay, clipping),
    with the temperature left out of weight decay: decay would pull ``log τ`` towards 0, i.e. ``τ``
    towards 1, a pull that has nothing to do with the loss (CLIP decays no such scalar either)."""

    def __init__(self, model: DualEncoder, config: DualTrainConfig):
        super().__init__(model, config)
        decayed = [p for name, p in model.named_parameters() if name != "log_temperature"]
        self.opt = torch.optim.AdamW([{"params": decayed}, {"params": [model.log_temperature], "weight_decay": 0.0}],
                                     lr=config.lr, weight_decay=config.weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, self.sched.lr_lambdas[0])


def train_dual_encoder(
    model: DualEncoder,
    clips: VideoBatch,
    tokenizer: WordTokenizer,
    config: DualTrainConfig = DualTrainConfig(),
    *,
    progress: bool = True,
) -> dict[str, list[float]]:
    """Train ``model`` contrastively on ``clips`` and their captions; returns ``{"loss", "temperature"}`` per step.

    Each step draws ``batch_size`` clips without replacement (a generator seeded with
    ``config.seed``); the other clips of the batch are the negatives. Captions repeat, so a batch
    can hold two clips with the same caption: CLIP's loss then counts the twin as a negative
    (a false one), which caps how low the loss can go but not what the ranking learns.
    Same model initialisation and ``config.seed`` give the same run.
    """
    if not isinstance(model, DualEncoder):
        raise ValueError(f"model must be a DualEncoder, got {type(model).__name__}")
    if not isinstance(clips, VideoBatch):
        raise ValueError(f"clips must be a VideoBatch (vidlearn.data.generate), got {type(clips).__name__}")
    if not isinstance(config, DualTrainConfig):
        raise ValueError(f"config must be a DualTrainConfig, got {type(config).__name__}")
    if config.batch_size > len(clips):
        raise ValueError(f"batch_size={config.batch_size} is larger than the {len(clips)} training clips")
    ids, mask = encode_captions(tokenizer, clips.captions, model.config.max_text_len)  # (M, L) each
    model._check_video(clips.video[:1])

    model.train()
    optimiser = _DualOptimiser(model, config)
    g = torch.Generator().manual_seed(config.seed)
    history: dict[str, list[float]] = {"loss": [], "temperature": []}
    bar = tqdm(range(config.steps), desc="dual encoder", disable=not progress, leave=False, mininterval=0.5)
    for step in bar:
        pick = torch.randperm(len(clips), generator=g)[: config.batch_size]  # (b,)
        loss = model(clips.video[pick], ids[pick], mask[pick])
        optimiser.step(loss)
        history["loss"].append(loss.item())
        history["temperature"].append(model.temperature.item())
        if step % 10 == 0:
            bar.set_postfix(loss=f"{history['loss'][-1]:.3f}", tau=f"{history['temperature'][-1]:.3f}")
    bar.close()
    model.eval()
    return history


@torch.no_grad()
def dual_scores(model: DualEncoder, ids: torch.Tensor, mask: torch.Tensor, video: torch.Tensor,
                *, batch_size: int = 256) -> torch.Tensor:
    """Cosine similarity over τ of every caption with every clip: ``(Q, M)`` for ``ids, mask (Q, L)``
    and ``video (M, T, C, H, W)``. Each clip and each caption is encoded once (``M + Q`` tower passes),
    then ``Q·M`` dot products."""
    if not isinstance(model, DualEncoder):
        raise ValueError(f"model must be a DualEncoder, got {type(model).__name__}")
    check_int(batch_size, "batch_size")
    model._check_text(ids, mask)
    model._check_video(video)  # M >= 1 clips: an empty gallery is refused here
    was_training = model.training
    model.eval()
    try:
        t = model.encode_text(ids, mask)  # (Q, E)
        v = torch.cat([model.encode_video(video[lo : lo + batch_size]) for lo in range(0, len(video), batch_size)])
        return similarity_logits(t, v, model.temperature)  # (Q, M)
    finally:
        model.train(was_training)


def retrieval_recall(model: DualEncoder, clips: VideoBatch, tokenizer: WordTokenizer,
                     ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Held-out retrieval of ``model`` on ``clips``, with the exact chance level of each figure.

    Text→video: every distinct caption of ``clips`` is a query over all ``M`` clips. Video→text:
    every clip is a query over the distinct captions. Relevant = the same caption. Keys
    ``"t2v@k"``, ``"v2t@k"`` and ``"chance t2v@k"``, ``"chance v2t@k"`` for each ``k``.
    """
    if not isinstance(model, DualEncoder):
        raise ValueError(f"model must be a DualEncoder, got {type(model).__name__}")
    if not isinstance(clips, VideoBatch):
        raise ValueError(f"clips must be a VideoBatch, got {type(clips).__name__}")
    if len(clips) == 0:
        raise ValueError("clips is empty: retrieval needs at least one clip")
    if isinstance(ks, (str, bytes)) or not isinstance(ks, Sequence) or len(ks) == 0:
        raise ValueError(f"ks must be a non-empty sequence of positive integers such as (1, 5), got {ks!r}")
    for k in ks:
        check_int(k, "each k in ks")
    ids_of = clips.caption_id.tolist()
    queries = sorted(set(ids_of))  # caption ids present, one query each
    text = [clips.captions[ids_of.index(q)] for q in queries]
    ids, mask = encode_captions(tokenizer, text, model.config.max_text_len)  # (Q, L) each
    relevant = torch.tensor(queries)[:, None] == clips.caption_id[None, :]  # (Q, M)
    scores = dual_scores(model, ids, mask, clips.video)  # (Q, M)
    t2v, v2t = recall_at_k(scores, relevant, ks), recall_at_k(scores.T, relevant.T, ks)
    out: dict[str, float] = {}
    for k in ks:
        out[f"t2v@{k}"], out[f"chance t2v@{k}"] = t2v[k], chance_recall(relevant, k)
        out[f"v2t@{k}"], out[f"chance v2t@{k}"] = v2t[k], chance_recall(relevant.T, k)
    return out
