"""VideoBERT's vocabularies: text words (:class:`WordTokenizer`) and the joint id space of
specials, text words and visual words (:class:`JointVocabulary`, :data:`SPECIAL_TOKENS`)."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch

from vidlearn.validation import check_int

__all__ = ["WordTokenizer", "SPECIAL_TOKENS", "JointVocabulary"]


class WordTokenizer:
    """A word-level tokenizer: ``words`` sorted, lowercase, no whitespace; word ``i`` has id ``i``."""

    def __init__(self, words: Sequence[str]):
        words = tuple(words)
        if not words or not all(isinstance(w, str) and w and w == w.lower() and w.split() == [w] for w in words):
            raise ValueError(f"words must be non-empty lowercase strings without whitespace, got {words!r}")
        if list(words) != sorted(set(words)):
            raise ValueError("words must be sorted and unique (use WordTokenizer.from_texts)")
        self.words = words
        self._index = {w: i for i, w in enumerate(words)}

    @classmethod
    def from_texts(cls, texts: Sequence[str]) -> "WordTokenizer":
        """The sorted set of lowercase whitespace-separated words of ``texts``."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise ValueError("texts must be a sequence of strings (a single string is not one)")
        return cls(sorted({w for t in texts for w in t.lower().split()}))

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise ValueError(f"text must be a string, got {type(text).__name__}")
        unknown = [w for w in text.lower().split() if w not in self._index]
        if unknown:
            raise ValueError(f"unknown word(s) {unknown} in {text!r}: not in the tokenizer's {len(self)} words")
        return [self._index[w] for w in text.lower().split()]

    def decode(self, ids: Sequence[int]) -> str:
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < len(self)]
        if bad:
            raise ValueError(f"ids {bad} are not in [0, {len(self)})")
        return " ".join(self.words[i] for i in ids)


SPECIAL_TOKENS = ("[PAD]", "[CLS]", "[SEP]", "[MASK]", "[>]")


class JointVocabulary:
    """One id space for both modalities: specials, then text words, then visual words.

    ==========================  =============================================
    ``0 .. 4``                  ``[PAD] [CLS] [SEP] [MASK] [>]``
    ``text_offset + w``         text word ``w`` (``text_offset = 5``)
    ``visual_offset + v``       visual word ``v`` (``visual_offset = 5 + W``)
    ==========================  =============================================

    :meth:`text_id` and :meth:`visual_id` are the only places raw ids get their offset:
    indexing the embedding with a raw visual word would silently read a text word's row.
    """

    pad_id, cls_id, sep_id, mask_id, link_id = range(len(SPECIAL_TOKENS))

    def __init__(self, words: Sequence[str], n_visual: int):
        words = tuple(words)
        if not words or not all(isinstance(w, str) and w for w in words) or len(set(words)) != len(words):
            raise ValueError("words must be a non-empty sequence of distinct non-empty strings")
        clash = set(words) & set(SPECIAL_TOKENS)
        if clash:
            raise ValueError(f"words {sorted(clash)} clash with the special tokens")
        self.words, self.n_visual = words, check_int(n_visual, "n_visual")
        self.text_offset = len(SPECIAL_TOKENS)
        self.visual_offset = self.text_offset + len(words)

    @property
    def n_text(self) -> int:
        return len(self.words)

    @property
    def size(self) -> int:
        return self.visual_offset + self.n_visual

    @property
    def special_ids(self) -> tuple[int, ...]:
        return tuple(range(len(SPECIAL_TOKENS)))

    @property
    def text_ids(self) -> range:
        return range(self.text_offset, self.visual_offset)

    @property
    def visual_ids(self) -> range:
        return range(self.visual_offset, self.size)

    @staticmethod
    def _shift(ids, n: int, offset: int, what: str):
        t = torch.as_tensor(ids)
        if t.dtype == torch.bool or t.dtype.is_floating_point or t.dtype.is_complex:
            raise ValueError(f"{what} ids must be integers, got dtype {t.dtype}")
        bad = t[(t < 0) | (t >= n)]
        if len(bad):
            raise ValueError(f"{what} ids must lie in [0, {n}), got {bad.unique()[:8].tolist()}")
        out = t.long() + offset
        return int(out) if isinstance(ids, numbers.Integral) else out

    def text_id(self, w):
        """Joint id of raw text word(s) ``w`` in ``[0, W)``: an int for an int, else an int64 tensor."""
        return self._shift(w, self.n_text, self.text_offset, "text")

    def visual_id(self, v):
        """Joint id of visual word(s) ``v`` in ``[0, n_visual)``: an int for an int, else an int64 tensor."""
        return self._shift(v, self.n_visual, self.visual_offset, "visual")

    def _check_ids(self, ids) -> torch.Tensor:
        t = torch.as_tensor(ids)
        if t.dtype == torch.bool or t.dtype.is_floating_point or t.dtype.is_complex:
            raise ValueError(f"ids must be integers, got dtype {t.dtype}")
        if ((t < 0) | (t >= self.size)).any():
            raise ValueError(f"ids must lie in [0, {self.size}), got values from {int(t.min())} to {int(t.max())}")
        return t

    def is_special(self, ids) -> torch.Tensor:
        """``True`` where an id is a special token (``[PAD]`` included); same shape as ``ids``."""
        return self._check_ids(ids) < self.text_offset

    def modality(self, ids) -> torch.Tensor:
        """``0`` text, ``1`` video, ``-1`` special; int64, same shape as ``ids``."""
        t = self._check_ids(ids)
        return torch.where(t < self.text_offset, -1, (t >= self.visual_offset).long())

    def token(self, i: int) -> str:
        """The token's text: ``"[CLS]"``, a word, or ``"v17"`` for visual word 17."""
        i = int(self._check_ids(int(i)))
        if i < self.text_offset:
            return SPECIAL_TOKENS[i]
        if i < self.visual_offset:
            return self.words[i - self.text_offset]
        return f"v{i - self.visual_offset}"
