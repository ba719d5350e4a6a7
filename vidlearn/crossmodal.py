"""Cross-modal attention: how text tokens and video tokens attend to each other.

Text tokens ``(B, n_text, D)`` and video tokens ``(B, n_video, D)`` share a width ``D``.
Two ways to fuse them:

* **two streams** (ViLBERT's co-TRM, Lu et al. 2019, arXiv 1908.02265; LXMERT's
  cross-modality layer): each modality keeps its own tokens and weights; in each
  :class:`CoAttentionBlock` the text queries attend to the video keys/values and the video
  queries to the text keys/values (:class:`CrossAttention`), then each stream runs its own
  self-attention and MLP. :class:`TwoStreamEncoder` stacks such blocks;
  :class:`LXMERTEncoder` is LXMERT's whole layout (:data:`LXMERT_LAYERS`): single-modality
  encoders with self-attention only, then cross-modality layers.
* **one stream** (VisualBERT, UNITER): concatenate ``[text; video]``, add a learned
  *segment* embedding that says which modality a token comes from, and run ordinary
  self-attention blocks over the joint sequence (:class:`SingleStreamEncoder`).

How they relate: the joint self-attention's ``(n_text + n_video)²`` score matrix holds four
blocks, text→text, text→video, video→text, video→video. The two off-diagonal blocks *are*
cross-attention scores (:func:`attention_logits`): under :func:`cross_modal_block_mask`,
which keeps only them, joint self-attention equals the two cross-attentions computed apart
with the same weights (:func:`split_cross_attention`). Unmasked, the softmax of a text row
runs over text and video keys together, so its video part is the cross-attention weights
rescaled by the mass the row puts on video.

Masks follow :mod:`vidlearn.masks` (boolean, ``True`` = may attend). The encoders take
*key-padding* masks ``(B, L)`` per modality, ``True`` for a real token.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vidlearn.attention import MultiHeadAttention, split_heads
from vidlearn.masks import combine_masks, validate_mask
from vidlearn.blocks import ResidualAttentionBlock, run_blocks
from vidlearn.validation import check_int

__all__ = [
    "modality_block_mask",
    "cross_modal_block_mask",
    "attention_logits",
    "split_cross_attention",
    "CrossAttention",
    "CoAttentionBlock",
    "TwoStreamEncoder",
    "LXMERT_LAYERS",
    "LXMERTEncoder",
    "SingleStreamEncoder",
]

#: LXMERT's layer counts (Tan & Bansal, EMNLP 2019, arXiv 1908.07490, §2.2 and its implementation details):
#: a language encoder of 9 layers and an object-relationship (vision) encoder of 5, each a
#: single-modality encoder (self-attention and a feed-forward sub-layer, no cross-attention),
#: then 5 cross-modality layers (bidirectional cross-attention, then self-attention, then a
#: feed-forward sub-layer, per modality). The released code names them ``l_layers``,
#: ``r_layers`` and ``x_layers``.
LXMERT_LAYERS = {"language": 9, "object_relationship": 5, "cross_modality": 5}


# --------------------------------------------------------------------------- checks


def _check_streams(d_model: int, **streams: torch.Tensor) -> int:
    """Every stream must be a floating ``(B, L, d_model)`` tensor with the same ``B``; returns ``B``."""
    batches = {}
    for name, t in streams.items():
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim != 3 or t.shape[-1] != d_model:
            raise ValueError(f"{name} must have shape (B, L, {d_model}), got {tuple(t.shape)}")
        if not t.dtype.is_floating_point:
            raise ValueError(f"{name} must be a floating tensor, got dtype {t.dtype}")
        batches[name] = t.shape[0]
    if len(set(batches.values())) > 1:
        # a batch of 1 would broadcast silently inside attention and pair the wrong clips
        raise ValueError(f"the streams must share a batch size, got {batches}")
    return next(iter(batches.values()))


def _key_mask(valid: torch.Tensor | None, tokens: torch.Tensor, name: str) -> torch.Tensor | None:
    """A key-padding mask ``(B, L)`` (``True`` = real token) as ``(B, 1, L)``, which broadcasts over queries."""
    if valid is None:
        return None
    B, L = tokens.shape[:2]
    if not isinstance(valid, torch.Tensor) or valid.dtype != torch.bool or tuple(valid.shape) != (B, L):
        is_tensor = isinstance(valid, torch.Tensor)
        got = f"dtype {valid.dtype}, shape {tuple(valid.shape)}" if is_tensor else type(valid).__name__
        raise ValueError(f"{name} must be a bool tensor (B, L) = ({B}, {L}), True for a real token; got {got}")
    return valid[:, None, :]  # (B, 1, L)


def _gelu_block(d_model: int, n_heads: int, mlp_width: int) -> ResidualAttentionBlock:
    return ResidualAttentionBlock(d_model, n_heads, mlp_width=mlp_width, activation=nn.GELU)


# --------------------------------------------------------------------------- masks


def modality_block_mask(n_text: int, n_video: int, allow, *, device=None) -> torch.Tensor:
    """Boolean ``(L, L)``, ``L = n_text + n_video``, over the joint order ``[text; video]``.

    ``allow[a][b]`` says whether a query of modality ``a`` may attend to keys of modality
    ``b`` (0 = text, 1 = video): ``[[True, True], [True, True]]`` is full joint attention,
    ``[[True, False], [False, True]]`` two separate self-attentions.
    """
    check_int(n_text, "n_text")
    check_int(n_video, "n_video")
    allow = torch.as_tensor(allow, device=device)
    if allow.shape != (2, 2) or allow.dtype != torch.bool:
        raise ValueError(
            f"allow must be a 2×2 table of bools (query modality, key modality), got {allow.tolist()!r}"
        )
    modality = torch.cat([torch.zeros(n_text, dtype=torch.long), torch.ones(n_video, dtype=torch.long)])
    modality = modality.to(allow.device)  # (L,)
    return allow[modality[:, None], modality[None, :]]  # (L, L)


def cross_modal_block_mask(n_text: int, n_video: int, *, device=None) -> torch.Tensor:
    """Boolean ``(L, L)``: ``True`` exactly on the text→video and video→text blocks.

    Joint self-attention under it is two cross-attentions (:func:`split_cross_attention`).
    """
    return modality_block_mask(n_text, n_video, [[False, True], [True, False]], device=device)


# --------------------------------------------------------------------------- cross-attention, exposed


def attention_logits(mha: MultiHeadAttention, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
    """The scores ``Q Kᵀ/√e`` of ``mha`` before masking and softmax: ``(B, h, L_q, L_k)``.

    ``Q`` comes from ``x (B, L_q, D)``, ``K`` from ``context (B, L_k, D)`` (``x`` when omitted).
    """
    context = x if context is None else context
    _check_streams(mha.d_model, x=x, context=context)
    q = split_heads(mha.w_q(x), mha.n_heads)  # (B, h, L_q, e)
    k = split_heads(mha.w_k(context), mha.n_heads)  # (B, h, L_k, e)
    return q @ k.transpose(-2, -1) / math.sqrt(mha.d_head)  # (B, h, L_q, L_k)


def split_cross_attention(
    mha: MultiHeadAttention,
    text: torch.Tensor,
    video: torch.Tensor,
    text_mask: torch.Tensor | None = None,
    video_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """``[MHA(text, video); MHA(video, text)]``: ``(B, n_text + n_video, D)``, one set of weights.

    Text queries attend to video keys, video queries to text keys, each on its own; the
    results are concatenated in the joint order. It equals
    ``mha([text; video], mask=cross_modal_block_mask(n_text, n_video))`` (with the padding
    masks ``(B, L)`` AND-ed in), which is the point: a single stream under that mask is
    cross-attention.
    """
    if not isinstance(mha, MultiHeadAttention):
        raise ValueError(f"mha must be a vidlearn MultiHeadAttention, got {type(mha).__name__}")
    _check_streams(mha.d_model, text=text, video=video)
    text_keys, video_keys = _key_mask(text_mask, text, "text_mask"), _key_mask(video_mask, video, "video_mask")
    text_to_video = mha(text, video, mask=video_keys)  # (B, n_text, D)
    video_to_text = mha(video, text, mask=text_keys)  # (B, n_video, D)
    return torch.cat([text_to_video, video_to_text], dim=1)  # (B, n_text + n_video, D)


# --------------------------------------------------------------------------- two streams


class CrossAttention(nn.Module):
    """Pre-LN residual cross-attention: ``x + MHA(LN_q(x), LN_kv(context), mask)``.

    ``x (B, L_q, D)`` asks, ``context (B, L_k, D)`` answers; the two are normalised
    separately because they come from different modalities. ``mask`` is ``(L_q, L_k)``,
    ``(B, L_q, L_k)`` or a key-padding ``(B, 1, L_k)`` (``True`` = may attend). Returns
    ``(B, L_q, D)``, and the weights ``(B, h, L_q, L_k)`` if ``return_weights``.
    """

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.d_model = d_model
        self.ln_q = nn.LayerNorm(d_model)
        self.ln_kv = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, n_heads)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor,
        mask: torch.Tensor | None = None,
        return_weights: bool = False,
    ):
        B = _check_streams(self.d_model, x=x, context=context)
        if mask is not None:
            validate_mask(mask, (B, x.shape[1], context.shape[1]))
        res = self.attn(self.ln_q(x), self.ln_kv(context), mask=mask, return_weights=return_weights)
        out, w = res if return_weights else (res, None)
        return (x + out, w) if return_weights else x + out


class CoAttentionBlock(nn.Module):
    """Two-stream block (LXMERT's cross-modality layer; ViLBERT's co-TRM is the cross step plus an MLP)::

        text'  = text  + MHA_tv(LN(text),  LN(video))     text asks video
        video' = video + MHA_vt(LN(video), LN(text))      video asks text   (both from the inputs)
        text'' = SelfBlock_t(text'),  video'' = SelfBlock_v(video')         (self-attention + MLP)

    ``text (B, n_text, D)``, ``video (B, n_video, D)``; ``text_mask (B, n_text)`` and
    ``video_mask (B, n_video)`` are key-padding masks (``True`` = real token). Returns
    ``(text'', video'')``, plus the cross-attention weights ``(text→video (B, h, n_text,
    n_video), video→text (B, h, n_video, n_text))`` as a third value if ``return_weights``.

    ``share_cross_attention=True`` uses one :class:`CrossAttention` for both directions, as
    LXMERT's released code does (its ``visual_attention`` serves text→vision and vision→text);
    the MACs are the same either way, only the parameter count changes.
    """

    def __init__(self, d_model: int, n_heads: int, mlp_width: int, *, share_cross_attention: bool = False):
        super().__init__()
        self.d_model = d_model
        self.text_from_video = CrossAttention(d_model, n_heads)
        self.video_from_text = self.text_from_video if share_cross_attention else CrossAttention(d_model, n_heads)
        self.text_block = _gelu_block(d_model, n_heads, mlp_width)
        self.video_block = _gelu_block(d_model, n_heads, mlp_width)

    def forward(
        self,
        text: torch.Tensor,
        video: torch.Tensor,
        text_mask: torch.Tensor | None = None,
        video_mask: torch.Tensor | None = None,
        return_weights: bool = False,
    ):
        _check_streams(self.d_model, text=text, video=video)
        text_keys = _key_mask(text_mask, text, "text_mask")  # (B, 1, n_text) or None
        video_keys = _key_mask(video_mask, video, "video_mask")  # (B, 1, n_video) or None
        # both cross-attentions read the block's inputs: neither stream sees the other's update
        t, w_tv = self.text_from_video(text, video, video_keys, return_weights=True)  # (B, n_text, D)
        v, w_vt = self.video_from_text(video, text, text_keys, return_weights=True)  # (B, n_video, D)
        t = self.text_block(t, mask=text_keys)
        v = self.video_block(v, mask=video_keys)
        return (t, v, (w_tv, w_vt)) if return_weights else (t, v)


class TwoStreamEncoder(nn.Module):
    """``depth`` :class:`CoAttentionBlock` s: ``(text, video) -> (text, video)``, shapes kept.

    Masks as in :class:`CoAttentionBlock`; :meth:`attention_weights` gives the last block's
    cross-attention weights for visualisation.
    """

    def __init__(self, d_model: int, n_heads: int, mlp_width: int, depth: int):
        super().__init__()
        check_int(depth, "depth")
        self.blocks = nn.ModuleList(CoAttentionBlock(d_model, n_heads, mlp_width) for _ in range(depth))

    def forward(self, text, video, text_mask=None, video_mask=None, return_weights: bool = False):
        """``text (B, n_text, D)``, ``video (B, n_video, D)`` -> the same shapes
        (and the last block's cross weights as a third value if ``return_weights``)."""
        # a CoAttentionBlock computes its cross weights whether or not it returns them:
        # asking every block for them costs nothing, and the last block's are what is left
        for blk in self.blocks:
            text, video, weights = blk(text, video, text_mask, video_mask, return_weights=True)
        return (text, video, weights) if return_weights else (text, video)

    def attention_weights(self, text, video, text_mask=None, video_mask=None):
        """The last block's ``(text→video (B, h, n_text, n_video), video→text (B, h, n_video, n_text))``."""
        return self(text, video, text_mask, video_mask, return_weights=True)[2]


class LXMERTEncoder(nn.Module):
    """LXMERT's encoder layout with the course's blocks: ``(text, video) -> (text, video)``.

    ``language`` self-attention blocks on the text and ``object_relationship`` self-attention
    blocks on the video (the *single-modality encoders*: neither sees the other modality),
    then ``cross_modality`` :class:`CoAttentionBlock` s (cross-attention both ways from the
    same inputs, then self-attention and MLP per stream; cross-attention weights shared
    between the directions, as in LXMERT). The paper's counts are :data:`LXMERT_LAYERS`
    (9, 5, 5). Ours are pre-LN blocks with GELU; LXMERT's are BERT's post-LN layers, and its
    inputs are WordPiece embeddings and Faster R-CNN region features with box positions.

    :meth:`single_modality` returns what the two single-modality encoders output, before any
    fusion: its text part is a function of the text alone (the chapter checks this with a
    gradient). Masks are key-padding masks ``(B, L)``, ``True`` = real token.
    """

    def __init__(self, d_model: int, n_heads: int, mlp_width: int, *, language: int = LXMERT_LAYERS["language"],
                 object_relationship: int = LXMERT_LAYERS["object_relationship"],
                 cross_modality: int = LXMERT_LAYERS["cross_modality"]):
        super().__init__()
        for name, n in (("language", language), ("object_relationship", object_relationship),
                        ("cross_modality", cross_modality)):
            check_int(n, name, minimum=0)
        self.d_model = d_model
        self.language = nn.ModuleList(_gelu_block(d_model, n_heads, mlp_width) for _ in range(language))
        self.object_relationship = nn.ModuleList(
            _gelu_block(d_model, n_heads, mlp_width) for _ in range(object_relationship))
        self.cross_modality = nn.ModuleList(
            CoAttentionBlock(d_model, n_heads, mlp_width, share_cross_attention=True) for _ in range(cross_modality))

    @property
    def layer_counts(self) -> dict[str, int]:
        """``{"language": ..., "object_relationship": ..., "cross_modality": ...}``, as :data:`LXMERT_LAYERS`."""
        return {name: len(getattr(self, name)) for name in LXMERT_LAYERS}

    def single_modality(self, text, video, text_mask=None, video_mask=None):
        """The two single-modality encoders: ``text (B, n_text, D)`` through the language blocks,
        ``video (B, n_video, D)`` through the object-relationship blocks, each on its own."""
        _check_streams(self.d_model, text=text, video=video)
        text = run_blocks(self.language, text, _key_mask(text_mask, text, "text_mask"))
        video = run_blocks(self.object_relationship, video, _key_mask(video_mask, video, "video_mask"))
        return text, video

    def forward(self, text, video, text_mask=None, video_mask=None):
        """``text (B, n_text, D)``, ``video (B, n_video, D)`` -> the same shapes, after all three encoders."""
        text, video = self.single_modality(text, video, text_mask, video_mask)
        for blk in self.cross_modality:
            text, video = blk(text, video, text_mask, video_mask)
        return text, video


# --------------------------------------------------------------------------- one stream


class SingleStreamEncoder(nn.Module):
    """Joint self-attention over ``[text; video]`` with learned segment (modality) embeddings.

    ``z = [text + s_0; video + s_1]``, ``(B, n_text + n_video, D)``, through ``depth`` pre-LN
    GELU blocks, then split back into ``(text (B, n_text, D), video (B, n_video, D))``.
    ``n_segments=0`` leaves the segment embedding out (the model then cannot tell the
    modalities apart, short of their content); ``n_segments > 2`` keeps spare rows.

    Masks: key-padding ``text_mask (B, n_text)``, ``video_mask (B, n_video)``, AND-ed with an
    optional joint ``mask`` ``(L, L)`` or ``(B, L, L)`` (e.g. :func:`cross_modal_block_mask`).

    :meth:`encode_joined` is the same encoder over a sequence the caller has already joined,
    with a segment id per token ``(B, L)`` and key padding ``(B, L)``: for inputs whose
    modalities do not split at one column for the whole batch (VideoBERT's ``[CLS] text [>]
    video [SEP]``, captions of different lengths, padding at the end). :meth:`forward` goes
    through it too, so there is one joint stream. ``embed_norm=True`` and ``dropout`` make the
    blocks' input BERT's embedding output, ``Dropout(LN(x + E_seg[segments]))``, for callers
    that pass token + position embeddings as ``x``. ``segment_embed`` ``(n_segments, D)``
    replaces the fresh ``N(0, 0.02²)`` table, for a caller that draws its own initial values.
    """

    def __init__(self, d_model: int, n_heads: int, mlp_width: int, depth: int, n_segments: int = 2, *,
                 embed_norm: bool = False, dropout: float = 0.0, segment_embed: torch.Tensor | None = None):
        super().__init__()
        check_int(depth, "depth")
        check_int(n_segments, "n_segments", minimum=0)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
        if segment_embed is None and n_segments:
            # N(0, 0.02²) as BERT's token-type embedding; torch.randn follows the ambient device
            segment_embed = torch.randn(n_segments, d_model) * 0.02
        elif segment_embed is not None:
            if not n_segments:
                raise ValueError("segment_embed was given but n_segments=0 (no segment embedding): drop one of them")
            if (not isinstance(segment_embed, torch.Tensor) or tuple(segment_embed.shape) != (n_segments, d_model)
                    or not segment_embed.dtype.is_floating_point):
                is_tensor = isinstance(segment_embed, torch.Tensor)
                got = f"{segment_embed.dtype} {tuple(segment_embed.shape)}" if is_tensor else type(segment_embed).__name__
                raise ValueError(f"segment_embed must be a floating-point tensor (n_segments, d_model) = "
                                 f"({n_segments}, {d_model}); got {got}")
            # a copy in the dtype of the other weights (the default, as for nn.Embedding): training the
            # encoder must not write into the caller's tensor, and LayerNorm refuses mixed dtypes
            segment_embed = segment_embed.detach().to(torch.get_default_dtype(), copy=True)
        self.d_model = d_model
        self.segment_embed = nn.Parameter(segment_embed) if segment_embed is not None else None
        # registered between the segment table and the blocks: a model that held these three
        # itself (VideoBERT) keeps its parameter order, hence its optimiser's and clipping's sums
        self.embed_norm = nn.LayerNorm(d_model) if embed_norm else None
        self.dropout = nn.Dropout(dropout)  # p = 0 returns its input and draws nothing
        self.blocks = nn.ModuleList(_gelu_block(d_model, n_heads, mlp_width) for _ in range(depth))

    # ---------------------------------------------------------------- one joined sequence

    def _check_segments(self, segments, B: int, L: int) -> torch.Tensor | None:
        if self.segment_embed is None:
            return None  # no table: the segment ids carry nothing the encoder could add
        if segments is None:
            raise ValueError(f"segments (B, L) = ({B}, {L}) are needed: this encoder has a segment embedding")
        if (not isinstance(segments, torch.Tensor) or tuple(segments.shape) != (B, L)
                or segments.dtype.is_floating_point or segments.dtype == torch.bool):
            got = tuple(segments.shape) if isinstance(segments, torch.Tensor) else type(segments).__name__
            raise ValueError(f"segments must be an integer tensor (B, L) = ({B}, {L}), got {got}")
        n = self.segment_embed.shape[0]
        if ((segments < 0) | (segments >= n)).any():
            raise ValueError(f"segments must lie in [0, {n})")
        return segments

    def embed(self, x: torch.Tensor, segments: torch.Tensor | None) -> torch.Tensor:
        """The blocks' input: ``x (B, L, D) + E_seg[segments (B, L)]``, then LN and dropout if configured."""
        if self.segment_embed is not None:
            # F.embedding, as nn.Embedding: its backward accumulates the table's gradient row by row
            x = x + F.embedding(segments, self.segment_embed)  # (B, L, D)
        if self.embed_norm is not None:
            x = self.embed_norm(x)
        return self.dropout(x)

    def encode_joined(self, x: torch.Tensor, segments: torch.Tensor | None = None,
                      padding: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                      return_weights: bool = False):
        """The encoder over an already-joined sequence ``x (B, L, D)``: ``(B, L, D)``, and the last
        block's weights ``(B, h, L, L)`` if ``return_weights``.

        ``segments (B, L)`` int is each token's segment id (ignored when ``n_segments=0``),
        ``padding (B, L)`` bool is ``True`` for a real token (padding is never a key; padded
        queries are the caller's to ignore), AND-ed with ``mask`` ``(L, L)`` or ``(B, L, L)``.
        """
        B = _check_streams(self.d_model, x=x)
        L = x.shape[1]
        segments = self._check_segments(segments, B, L)
        if mask is not None:
            # a per-head (B, h, L, L) mask would misalign with the (B, 1, L) padding when combined
            validate_mask(mask, (B, L, L))
        keys = _key_mask(padding, x, "padding")  # (B, 1, L) or None
        if keys is not None and not keys.any(dim=-1).all():
            # softmax over no key at all is 0/0: NaN, or, with a finite fill, an average of padding
            raise ValueError("every sequence needs at least one real token (padding all False in some row)")
        m = combine_masks(keys, mask)
        return run_blocks(self.blocks, self.embed(x, segments), m, return_weights)

    # ---------------------------------------------------------------- two streams joined here

    def _stream_segments(self, text: torch.Tensor, video: torch.Tensor) -> torch.Tensor | None:
        """``(B, L)``: 0 on the text columns, 1 on the video columns; None without a segment table."""
        if self.segment_embed is None:
            return None
        if self.segment_embed.shape[0] < 2:
            raise ValueError("a [text; video] input needs n_segments=0 or >= 2 (text is 0, video is 1), got 1; "
                             "encode_joined takes one segment")
        B, n_text, n_video = text.shape[0], text.shape[1], video.shape[1]
        seg = torch.cat([torch.zeros(n_text, dtype=torch.long), torch.ones(n_video, dtype=torch.long)])
        return seg.to(text.device).expand(B, n_text + n_video)  # (B, L)

    def _padding(self, text, video, text_mask=None, video_mask=None) -> torch.Tensor | None:
        """Key padding ``(B, L)`` of the joint sequence, True = real token; None when neither stream has one."""
        B = _check_streams(self.d_model, text=text, video=video)
        keys = [_key_mask(text_mask, text, "text_mask"), _key_mask(video_mask, video, "video_mask")]
        if all(k is None for k in keys):
            return None
        # a modality without a padding mask is all real tokens
        keys = [torch.ones(B, 1, t.shape[1], dtype=torch.bool, device=t.device) if k is None else k
                for t, k in zip((text, video), keys)]
        return torch.cat(keys, dim=-1)[:, 0]  # (B, L)

    def joint(self, text: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        """The blocks' input for ``[text; video]``: ``[text + s_0; video + s_1]`` ``(B, n_text + n_video, D)``
        (then LN and dropout if configured)."""
        _check_streams(self.d_model, text=text, video=video)
        return self.embed(torch.cat([text, video], dim=1), self._stream_segments(text, video))

    def joint_mask(self, text, video, text_mask=None, video_mask=None, mask=None) -> torch.Tensor | None:
        """The mask the blocks use: padding ``(B, 1, L)`` AND ``mask``; None when there is none."""
        padding = self._padding(text, video, text_mask, video_mask)
        B, L = text.shape[0], text.shape[1] + video.shape[1]
        if mask is not None:
            validate_mask(mask, (B, L, L))
        return combine_masks(None if padding is None else padding[:, None, :], mask)

    def _encode(self, text, video, text_mask, video_mask, mask, return_weights=False):
        padding = self._padding(text, video, text_mask, video_mask)  # checks both streams first
        x = torch.cat([text, video], dim=1)  # (B, L, D)
        return self.encode_joined(x, self._stream_segments(text, video), padding, mask, return_weights)

    def forward(self, text, video, text_mask=None, video_mask=None, mask=None):
        """``text (B, n_text, D)``, ``video (B, n_video, D)`` -> ``(text, video)``, same shapes."""
        x = self._encode(text, video, text_mask, video_mask, mask)
        return x[:, : text.shape[1]], x[:, text.shape[1] :]

    def attention_weights(self, text, video, text_mask=None, video_mask=None, mask=None) -> torch.Tensor:
        """The last block's joint attention weights ``(B, h, L, L)``, ``L = n_text + n_video``.

        Rows and columns are in the order ``[text; video]``: ``w[..., :n_text, n_text:]`` is how
        much each text token looks at each video token.
        """
        return self._encode(text, video, text_mask, video_mask, mask, return_weights=True)[1]
