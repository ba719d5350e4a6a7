"""Exercise 6 — cross-modal attention and VideoBERT's tokens: cross-attention, hierarchical visual
words, BERT's masking, and single-stream attention split into its four blocks."""

from __future__ import annotations

import math

import torch

from vidlearn.attention import attention_weights, scaled_dot_product_attention
from vidlearn.grading.forbidden import LIBRARY
from vidlearn.grading.questions import (Case, DerivationQuestion, FunctionQuestion, Misconception, hidden, pick,
                                        register, seeded)
from vidlearn.videobert import IGNORE, HierarchicalKMeans

DT = torch.float64
# what the student's functions may not call (the grader and check() both catch it)
FORBIDS = (LIBRARY, "torch.nn.functional.scaled_dot_product_attention", "torch.nn.MultiheadAttention")


# ----------------------------------------------------------------------------- cross-attention


def _cross_cases() -> list[Case]:
    g = seeded(601)
    cases = []
    for B, L_x, L_v, D, d_k, d_v, label in [(1, 3, 5, 8, 4, 6, "L_x < L_v, d_k != d_v"),
                                            (2, 4, 4, 6, 3, 5, "a batch of two, L_x == L_v"),
                                            (2, 6, 3, 8, 8, 3, "L_x > L_v, d_k == D"),
                                            (3, 2, 9, 4, 2, 4, "a batch of three, nine video tokens")]:
        text = torch.randn(B, L_x, D, generator=g, dtype=DT)
        video = torch.randn(B, L_v, D, generator=g, dtype=DT)
        w_q, w_k = torch.randn(2, D, d_k, generator=g, dtype=DT)  # each (D, d_k)
        w_v = torch.randn(D, d_v, generator=g, dtype=DT)
        cases.append(Case((text, video, w_q, w_k, w_v), label=label))
    return cases


def _cross_reference(text, video, w_q, w_k, w_v):
    return scaled_dot_product_attention(text @ w_q, video @ w_k, video @ w_v)  # (B, L_x, d_v)


def _cross_keys_from_text(text, video, w_q, w_k, w_v):
    # (B, L_x, L_x) scores times (B, L_v, d_v) values: runs only when L_x == L_v
    weights = attention_weights(text @ w_q, text @ w_k)
    return weights @ (video @ w_v)


def _cross_text_self_attention(text, video, w_q, w_k, w_v):
    return scaled_dot_product_attention(text @ w_q, text @ w_k, text @ w_v)


def _cross_unscaled(text, video, w_q, w_k, w_v):
    return scaled_dot_product_attention(text @ w_q, video @ w_k, video @ w_v, scale=1.0)


def _cross_scaled_by_model_width(text, video, w_q, w_k, w_v):
    return scaled_dot_product_attention(text @ w_q, video @ w_k, video @ w_v, scale=1 / math.sqrt(text.shape[-1]))


def _cross_softmax_over_text(text, video, w_q, w_k, w_v):
    logits = (text @ w_q) @ (video @ w_k).transpose(-2, -1) / math.sqrt(w_q.shape[-1])  # (B, L_x, L_v)
    return torch.softmax(logits, dim=-2) @ (video @ w_v)


def _cross_video_attends_to_text(text, video, w_q, w_k, w_v):
    return scaled_dot_product_attention(video @ w_q, text @ w_k, text @ w_v)  # (B, L_v, d_v)


register(
    FunctionQuestion(
        id="ex06.cross_attention",
        name="cross_attention",
        points=3,
        forbids=FORBIDS,
        reference=_cross_reference,
        make_cases=_cross_cases,
        misconceptions=(
            Misconception(
                "keys from the text, values from the video",
                (
                    "Which modality do your keys come from? Your scores compare text tokens with text tokens.",
                    "A key and its value describe the same token: both come from the modality being attended "
                    "to, k = video @ w_k and v = video @ w_v, so the scores are (B, L_x, L_v), one column per "
                    "video token. (With keys from the text the shapes only fit when L_x == L_v.)",
                ),
                fn=_cross_keys_from_text,
            ),
            Misconception(
                "text attends to itself",
                (
                    "Does your output change when the video changes?",
                    "That is text self-attention. In cross-attention the text asks (queries) and the video "
                    "answers (keys and values): k = video @ w_k, v = video @ w_v.",
                ),
                fn=_cross_text_self_attention,
            ),
            Misconception(
                "no 1/√d_k scaling",
                (
                    "Are your scores divided by anything before the softmax?",
                    "Divide q kᵀ by √d_k, the width of the queries and keys (w_q.shape[1]), so that the scores' "
                    "variance stays near 1 whatever d_k is and the softmax does not saturate.",
                ),
                fn=_cross_unscaled,
            ),
            Misconception(
                "scaled by √D instead of √d_k",
                (
                    "Which width do you divide by?",
                    "The dot products are between vectors of width d_k = w_q.shape[1], after the projection; "
                    "D, the tokens' width before it, does not set their variance.",
                ),
                fn=_cross_scaled_by_model_width,
            ),
            Misconception(
                "softmax over the text axis",
                (
                    "Do your attention weights sum to one for each text token?",
                    "Each text token distributes its attention over the L_v video tokens: softmax over the last "
                    "axis (dim=-1) of the (B, L_x, L_v) scores; dim=-2 normalises over the text tokens instead.",
                ),
                fn=_cross_softmax_over_text,
            ),
            Misconception(
                "video attends to text",
                (
                    "Which modality asks the questions in yours? Your output has one row per video token.",
                    "Here the text tokens are the queries, q = text @ w_q, and the video supplies keys and values: "
                    "the output has one row per text token, (B, L_x, d_v).",
                ),
                fn=_cross_video_attends_to_text,
            ),
        ),
        hints=(
            "q = text @ w_q (B, L_x, d_k); k = video @ w_k (B, L_v, d_k); v = video @ w_v (B, L_v, d_v); "
            "softmax(q kᵀ/√d_k, dim=-1) @ v.",
        ),
    )
)


# ----------------------------------------------------------------------------- visual words


def _farther_parent_case() -> Case:
    """Two of these five points have their nearest leaf, (0.2, 0), under the farther parent, (1, 0)."""
    centroids_1 = torch.tensor([[-1.0, 0.0], [1.0, 0.0]], dtype=DT)  # (k, F) = (2, 2)
    centroids_2 = torch.tensor([[[-1.0, 1.0], [-1.0, -1.0]],  # children of (-1, 0)
                                [[0.2, 0.0], [3.0, 0.0]]], dtype=DT)  # children of (1, 0): (k, k, F)
    features = torch.tensor([[-0.1, 0.05], [2.5, 0.3], [-1.2, -0.8], [0.6, -0.2], [-0.3, -0.6]], dtype=DT)  # (M, F)
    offset = 9
    if hidden():  # the grader's copy: the same picture scaled, rotated and moved (distances keep their order)
        g = seeded(604)
        angle, scale = float(torch.rand((), generator=g, dtype=DT)) * 6.28, 0.5 + float(torch.rand((), generator=g))
        c, s_ = math.cos(angle), math.sin(angle)
        rot = scale * torch.tensor([[c, -s_], [s_, c]], dtype=DT)  # (F, F)
        shift = 3 * torch.randn(2, generator=g, dtype=DT)  # (F,)
        features, centroids_1, centroids_2 = (x @ rot.T + shift for x in (features, centroids_1, centroids_2))
        offset = pick(605, 9, range(5, 2000))
    return Case((features, centroids_1, centroids_2, offset), label="a nearest leaf under the farther parent")


def _tree_case(g: torch.Generator, k: int, F: int, M: int, offset: int, label: str) -> Case:
    """Children scattered around their parent widely enough that sibling cells overlap other parents'."""
    centroids_1 = 2 * torch.randn(k, F, generator=g, dtype=DT)  # (k, F)
    centroids_2 = centroids_1[:, None, :] + torch.randn(k, k, F, generator=g, dtype=DT)  # (k, k, F)
    leaf = torch.randint(k * k, (M,), generator=g)  # (M,)
    features = centroids_2.reshape(k * k, F)[leaf] + torch.randn(M, F, generator=g, dtype=DT)  # (M, F)
    return Case((features, centroids_1, centroids_2, offset), label=label)


def _words_cases() -> list[Case]:
    g = seeded(602)
    return [
        _farther_parent_case(),
        _tree_case(g, 3, 4, 24, 12, "k = 3, overlapping clusters"),
        _tree_case(g, 4, 8, 40, 1005, "k = 4, five specials and 1000 words first"),
        _tree_case(g, 5, 3, 6, 5, "k = 5, no text words"),
    ]


def _words_reference(features, centroids_1, centroids_2, offset):
    k, F = centroids_1.shape
    tree = HierarchicalKMeans.from_levels([centroids_1, centroids_2.reshape(k * k, F)])
    return tree.assign(features) + offset


def _nearest(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Index of the nearest row of ``c (..., n, F)`` for each row of ``x (..., M, F)``: ``(..., M)``."""
    return torch.cdist(x, c, compute_mode="donot_use_mm_for_euclid_dist").argmin(dim=-1)


def _greedy_path(features, centroids_1, centroids_2):
    """``(i, j)``, each ``(M,)``: the nearest top-level centroid, then the nearest of its children."""
    i = _nearest(features, centroids_1)  # (M,)
    j = _nearest(features[:, None, :], centroids_2[i])[:, 0]  # (M, 1, F) against (M, k, F)
    return i, j


def _words_nearest_leaf(features, centroids_1, centroids_2, offset):
    k, F = centroids_1.shape
    return _nearest(features, centroids_2.reshape(k * k, F)) + offset


def _words_path_reversed(features, centroids_1, centroids_2, offset):
    i, j = _greedy_path(features, centroids_1, centroids_2)
    return j * centroids_1.shape[0] + i + offset


def _words_without_offset(features, centroids_1, centroids_2, offset):
    i, j = _greedy_path(features, centroids_1, centroids_2)
    return i * centroids_1.shape[0] + j


def _words_child_index_only(features, centroids_1, centroids_2, offset):
    _, j = _greedy_path(features, centroids_1, centroids_2)
    return j + offset


register(
    FunctionQuestion(
        id="ex06.assign_visual_words",
        name="assign_visual_words",
        points=3,
        forbids=FORBIDS,
        reference=_words_reference,
        make_cases=_words_cases,
        misconceptions=(
            Misconception(
                "nearest leaf instead of greedy descent",
                (
                    "Your ids are the nearest of all k² leaves; the tokenizer descends the tree instead.",
                    "Choose i among the k top-level centroids first, then j among centroids_2[i] only. The greedy "
                    "descent misses the nearest leaf when it sits under a farther parent, and VideoBERT accepts "
                    "that: with k = 12 and depth 4 it measures k·depth = 48 distances per feature instead of "
                    "k^depth = 20,736.",
                ),
                fn=_words_nearest_leaf,
            ),
            Misconception(
                "path read least-significant first",
                (
                    "Which level is the most significant digit of your word?",
                    "The path (i, j) is a base-k number with the first level most significant: word i*k + j, so "
                    "the k children of top-level centroid i get the consecutive words i*k .. i*k + k - 1.",
                ),
                fn=_words_path_reversed,
            ),
            Misconception(
                "visual word without the offset",
                (
                    "Your ids start at 0, but in the joint vocabulary the low ids are special tokens and text words.",
                    "i*k + j is the visual word, a raw id; the joint vocabulary puts the specials and the text "
                    "words first, so the token id is offset + i*k + j.",
                ),
                fn=_words_without_offset,
            ),
            Misconception(
                "child index only",
                (
                    "How many different ids can your function return?",
                    "j numbers the children of one parent: every top-level cluster has a child j. The visual word "
                    "is the whole path, i*k + j, k² words in all.",
                ),
                fn=_words_child_index_only,
            ),
        ),
        hints=(
            "i = nearest of the k rows of centroids_1; j = nearest of the k rows of centroids_2[i]; "
            "return offset + i*k + j as int64.",
            "The descent is greedy, so it can miss the nearest leaf when that leaf sits under a farther parent. "
            "VideoBERT uses it anyway: k^depth leaves (12⁴ = 20,736), but only k·depth distances per feature.",
        ),
    )
)


# ----------------------------------------------------------------------------- masking

PAD, CLS, SEP, MASK, NEXT = range(5)  # the special tokens' ids, as in vidlearn.videobert.SPECIAL_TOKENS


def _every_band_case() -> Case:
    """One sequence that meets every rule: specials drawn below p, u_select == p, u_action == 0.8."""
    #                        [CLS] w   w   w  [>]  v   v  [SEP] [PAD] [PAD]
    ids = torch.tensor([[CLS, 10, 11, 12, NEXT, 30, 31, SEP, PAD, PAD]])  # (1, 10)
    special = ids < 5
    u_select = torch.tensor([[0.05, 0.10, 0.15, 0.01, 0.02, 0.14, 0.9, 0.03, 0.0, 0.5]], dtype=DT)
    u_action = torch.tensor([[0.5, 0.8, 0.3, 0.95, 0.85, 0.2, 0.1, 0.05, 0.7, 0.0]], dtype=DT)
    random_ids = torch.tensor([[13, 14, 10, 11, 12, 32, 30, 14, 13, 12]])  # (1, 10)
    if hidden():  # the grader's copy: the same rules met by other word and visual-word ids
        text_shift, video_shift = pick(606, 0, range(1, 200)), pick(607, 0, range(200, 900))

        def renumber(t):
            return torch.where(t >= 30, t + video_shift, torch.where(t >= 5, t + text_shift, t))

        ids, random_ids = renumber(ids), renumber(random_ids)
    return Case((ids, special, u_select, u_action, random_ids, MASK, 0.15), label="one of each rule, and its edges")


def _batch_case(g: torch.Generator, B: int, L: int, n_words: int, n_visual: int, p: float, label: str) -> Case:
    """Random [CLS] text [>] video [SEP] [PAD]... rows; replacements drawn from each position's modality."""
    text_lo, visual_lo = 5, 5 + n_words
    ids = torch.full((B, L), PAD)  # (B, L)
    is_video = torch.zeros(B, L, dtype=torch.bool)  # (B, L)
    for b in range(B):
        n_text, n_video = torch.randint(1, (L - 3) // 2 + 1, (2,), generator=g).tolist()  # 3 specials fit too
        row = ([CLS] + torch.randint(text_lo, visual_lo, (n_text,), generator=g).tolist() + [NEXT]
               + torch.randint(visual_lo, visual_lo + n_visual, (n_video,), generator=g).tolist() + [SEP])
        ids[b, : len(row)] = torch.tensor(row)
        is_video[b, n_text + 2 : n_text + 2 + n_video] = True
    special = ids < text_lo
    u_select, u_action = torch.rand(2, B, L, generator=g, dtype=DT)  # each (B, L)
    random_text = torch.randint(text_lo, visual_lo, (B, L), generator=g)
    random_visual = torch.randint(visual_lo, visual_lo + n_visual, (B, L), generator=g)
    random_ids = torch.where(is_video, random_visual, random_text)  # (B, L)
    return Case((ids, special, u_select, u_action, random_ids, MASK, p), label=label)


def _mask_cases() -> list[Case]:
    g = seeded(603)
    return [
        _every_band_case(),
        _batch_case(g, 4, 32, 20, 16, 0.15, "a padded batch of four, p = 0.15"),
        _batch_case(g, 8, 24, 50, 64, 0.15, "a batch of eight, p = 0.15"),
        _batch_case(g, 2, 16, 10, 9, 0.5, "p = 0.5"),
    ]


def _mask(ids, special, u_select, u_action, random_ids, mask_id, p, *, bands=(0.8, 0.9), swapped=False,
          specials_too=False, label_all=False, label_masked=False):
    """The reference with one switch per mistake. ``bands``: u_action below the first -> [MASK],
    below the second -> random, else unchanged; ``swapped``: random, unchanged, then [MASK]."""
    chosen = u_select < p if specials_too else ~special & (u_select < p)  # (B, L)
    if swapped:
        to_random, to_mask = u_action < 0.1, u_action >= 0.2
    else:
        to_mask, to_random = u_action < bands[0], (u_action >= bands[0]) & (u_action < bands[1])
    masked = torch.where(chosen & to_random, random_ids, torch.where(chosen & to_mask, mask_id, ids))
    source = masked if label_masked else ids
    labels = ids.clone() if label_all else torch.where(chosen, source, IGNORE)
    return masked, labels


def _mask_reference(ids, special, u_select, u_action, random_ids, mask_id, p):
    return _mask(ids, special, u_select, u_action, random_ids, mask_id, p)


def _mask_specials_too(ids, special, u_select, u_action, random_ids, mask_id, p):
    return _mask(ids, special, u_select, u_action, random_ids, mask_id, p, specials_too=True)


def _mask_always(ids, special, u_select, u_action, random_ids, mask_id, p):
    return _mask(ids, special, u_select, u_action, random_ids, mask_id, p, bands=(1.0, 1.0))


def _mask_labels_everywhere(ids, special, u_select, u_action, random_ids, mask_id, p):
    return _mask(ids, special, u_select, u_action, random_ids, mask_id, p, label_all=True)


def _mask_labels_from_input(ids, special, u_select, u_action, random_ids, mask_id, p):
    return _mask(ids, special, u_select, u_action, random_ids, mask_id, p, label_masked=True)


def _mask_bands_swapped(ids, special, u_select, u_action, random_ids, mask_id, p):
    return _mask(ids, special, u_select, u_action, random_ids, mask_id, p, swapped=True)


_WHY_NOT_ONLY_MASK = ("[MASK] never appears once the model is used; if every target were a [MASK], the model would "
                      "learn that only [MASK] positions need a prediction and that every other token is the truth. "
                      "The random 10 % make it doubt every token, the unchanged 10 % keep it predicting from real "
                      "tokens too.")

register(
    FunctionQuestion(
        id="ex06.mlm_mask",
        name="mlm_mask",
        points=3,
        forbids=FORBIDS,
        reference=_mask_reference,
        make_cases=_mask_cases,
        misconceptions=(
            Misconception(
                "special tokens chosen",
                (
                    "Can [CLS], [SEP], [>] or [PAD] be chosen in yours?",
                    "A position is chosen only where special is False and u_select < p: the special tokens stand "
                    "where the sequence's layout puts them, so predicting them teaches nothing, and a replaced "
                    "[SEP] or [>] would move a boundary between the modalities.",
                ),
                fn=_mask_specials_too,
            ),
            Misconception(
                "every chosen token becomes [MASK]",
                (
                    "Only some of the chosen tokens should become [MASK].",
                    "Of the chosen positions, u_action < 0.8 become [MASK], 0.8 <= u_action < 0.9 the random "
                    "token, the rest stay unchanged (but keep their label). " + _WHY_NOT_ONLY_MASK,
                ),
                fn=_mask_always,
            ),
            Misconception(
                "labels at every position",
                (
                    "Which positions does your loss count?",
                    "Only chosen positions get a label, the original id; the others get -100, which "
                    "cross_entropy ignores: predicting a token the model can see is copying, not learning.",
                ),
                fn=_mask_labels_everywhere,
            ),
            Misconception(
                "labels from the masked input",
                (
                    "At a masked position, is your label [MASK]?",
                    "The label is what the model must recover: the original id from ids, not the token it was given "
                    "in masked_ids.",
                ),
                fn=_mask_labels_from_input,
            ),
            Misconception(
                "80/10/10 bands in the wrong order",
                (
                    "Which band of u_action gives [MASK] in yours?",
                    "u_action < 0.8: [MASK]; 0.8 <= u_action < 0.9: the random token; u_action >= 0.9: unchanged. "
                    + _WHY_NOT_ONLY_MASK,
                ),
                fn=_mask_bands_swapped,
            ),
        ),
        hints=(
            "chosen = ~special & (u_select < p); among the chosen, u_action < 0.8 -> mask_id, "
            "0.8 <= u_action < 0.9 -> random_ids, otherwise unchanged; labels = ids where chosen, -100 elsewhere.",
        ),
    )
)


# ----------------------------------------------------------------------------- derivation

register(
    DerivationQuestion(
        id="ex06.fusion_attention_cost",
        name="fusion_attention_cost_steps",
        points=2,
        start="2*(n_x + n_v)**2*d",
        target="2*n_x**2*d + 2*n_v**2*d + 2*n_x*n_v*d + 2*n_v*n_x*d",
        assumptions={"n_x": "positive integer", "n_v": "positive integer", "d": "positive integer"},
        prompt="The MACs of the score and weighted-sum products (QKᵀ and AV) of single-stream attention over n_x "
        "text and n_v video tokens of width d. Split them into text self-attention, video self-attention and the "
        "two cross-attentions (attention of n_q queries over n_k keys costs 2·n_q·n_k·d).",
        misconceptions=(
            Misconception(
                "cross terms forgotten",
                ("That is what two separate self-attentions cost, text on its own and video on its own.",
                 "(n_x + n_v)² is not n_x² + n_v²: the 2·n_x·n_v left over are the text→video and video→text "
                 "blocks of the score matrix, the cross-attentions."),
                expr="2*n_x**2*d + 2*n_v**2*d",
            ),
            Misconception(
                "one direction only",
                ("Text attends to video; what else does a single stream do?",
                 "The (n_x + n_v)² score matrix has two off-diagonal blocks, text→video (n_x·n_v) and video→text "
                 "(n_v·n_x): each costs 2·n_x·n_v·d."),
                expr="2*n_x**2*d + 2*n_v**2*d + 2*n_x*n_v*d",
            ),
            Misconception(
                "weighted sum forgotten",
                ("Your total is half the right one.",
                 "QKᵀ and AV cost n_q·n_k·d MACs each: the factor 2 multiplies every block, self and cross."),
                expr="n_x**2*d + n_v**2*d + 2*n_x*n_v*d",
            ),
        ),
        hints=(
            "Expand the square: which term is text self-attention, which video self-attention?",
            "2·(n_x + n_v)²·d = 2·n_x²·d + 2·n_v²·d + 4·n_x·n_v·d, and 4·n_x·n_v·d = 2·n_x·n_v·d (text→video) "
            "+ 2·n_v·n_x·d (video→text).",
        ),
    )
)
