"""VideoBERT: one BERT over text tokens and "visual words" (Sun et al., 2019, arXiv 1904.01766).

VideoBERT is *not* a two-stream model. A clip's features are quantised into discrete
**visual words** by hierarchical k-means (the paper: ``k = 12``, depth 4, so
``12⁴ = 20,736`` words), and one transformer reads a single sequence that mixes the two
modalities::

    [CLS] a red square moves left [>] v17 v17 v902 v4 [SEP]
    └──────── segment 0 ────────────┘ └──── segment 1 ────┘

Pieces, in the order a pipeline uses them, one module each (this package re-exports them):

* :mod:`.visual_words` — :func:`segment_features`, :func:`kmeans`, :class:`HierarchicalKMeans`:
  the visual vocabulary. A feature goes down the tree greedily (nearest child at each level)
  and its visual word is the path read as a base-``k`` number. Greedy descent is an
  *approximation* of the nearest leaf: it looks at ``k·depth`` centroids instead of ``k^depth``.
* :mod:`.vocab` — :class:`WordTokenizer` and :class:`JointVocabulary`: the text vocabulary and
  the joint id space: specials, then text words, then visual words at an offset
  (:meth:`JointVocabulary.visual_id` is the only place that offset is added).
* :mod:`.sequences` — :func:`build_sequence`, :func:`pad_batch`, :func:`mask_tokens`: sequences
  and BERT's 15 % / 80-10-10 masking, with random replacements kept inside the token's own modality.
* :mod:`.model` — :class:`VideoBERT`: token and position embeddings, then a
  :class:`~vidlearn.crossmodal.SingleStreamEncoder` (segment embedding, LayerNorm, pre-LN
  blocks), an MLM head tied to the token embedding and a linguistic-visual alignment head on ``[CLS]``.
* :mod:`.pretrain` — :func:`pretrain`: MLM on text-only, video-only and text+video sequences
  plus alignment (does this caption belong to this video?) with true negatives.
* :mod:`.metrics` — :func:`masked_token_accuracy`, :func:`alignment_accuracy`,
  :func:`retrieval_scores`, :func:`recall_at_k`, :func:`chance_recall`: evaluation.

Conventions: *raw* text ids are indices into a :class:`WordTokenizer` (``0 .. W-1``) and
*raw* visual ids are visual words (``0 .. n_visual-1``); :func:`build_sequence` turns both
into *joint* ids. Everything that takes ``text_ids`` / ``visual_ids`` takes raw ids.
"""

from vidlearn.videobert.metrics import (
    alignment_accuracy,
    chance_recall,
    masked_token_accuracy,
    recall_at_k,
    retrieval_scores,
)
from vidlearn.videobert.model import VideoBERT, VideoBERTConfig
from vidlearn.videobert.pretrain import PretrainConfig, pretrain
from vidlearn.videobert.sequences import IGNORE, build_sequence, expected_unchanged_share, mask_tokens, pad_batch
from vidlearn.videobert.visual_words import HierarchicalKMeans, kmeans, segment_features
from vidlearn.videobert.vocab import SPECIAL_TOKENS, JointVocabulary, WordTokenizer

__all__ = [
    "segment_features",
    "kmeans",
    "HierarchicalKMeans",
    "WordTokenizer",
    "SPECIAL_TOKENS",
    "JointVocabulary",
    "IGNORE",
    "build_sequence",
    "pad_batch",
    "mask_tokens",
    "expected_unchanged_share",
    "VideoBERTConfig",
    "VideoBERT",
    "PretrainConfig",
    "pretrain",
    "masked_token_accuracy",
    "alignment_accuracy",
    "retrieval_scores",
    "recall_at_k",
    "chance_recall",
]
