"""Exercise 7 — contrastive dual encoders: CLIP's symmetric InfoNCE loss, its gradient with respect
to the logits, and the loss of a batch whose embeddings are all equal (log B)."""

from __future__ import annotations

import torch

from vidlearn.contrastive import symmetric_info_nce
from vidlearn.derive.milestone import Milestone
from vidlearn.grading.forbidden import LIBRARY
from vidlearn.grading.questions import (Case, DerivationQuestion, FunctionQuestion, Misconception, pick, register,
                                        seeded)

DT = torch.float64
# what the student's functions may not call (the grader and check() both catch it)
FORBIDS = (LIBRARY,)


# ----------------------------------------------------------------------------- the loss


def _pairs(g: torch.Generator, B: int, D: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``B`` pairs of embeddings ``(B, D)`` whose norms vary from row to row (so normalising matters) and
    whose captions lean towards their own clip (so the diagonal is special)."""
    video = torch.randn(B, D, generator=g, dtype=DT)
    text = video + 1.5 * torch.randn(B, D, generator=g, dtype=DT)
    video = video * (0.3 + 3 * torch.rand(B, 1, generator=g, dtype=DT))
    text = text * (0.3 + 3 * torch.rand(B, 1, generator=g, dtype=DT))
    return video, text


def _loss_cases() -> list[Case]:
    g = seeded(701)
    cases = []
    for k, (B, D, tau, label) in enumerate([(4, 6, 0.5, "four pairs, τ = 0.5"),
                                            (3, 16, 0.07, "three pairs, CLIP's initial τ = 0.07"),
                                            (8, 5, 2.0, "eight pairs, τ = 2"),
                                            (5, 32, 0.2, "five pairs, wide embeddings")]):
        video, text = _pairs(g, B, D)
        tau = pick(710 + k, tau, (0.05, 0.1, 0.25, 0.3, 0.7, 1.5, 3.0))
        cases.append(Case((video, text, tau), label=label))
    return cases


def _loss_reference(video, text, temperature):
    return symmetric_info_nce(video, text, temperature)


def _ce_diag(logits: torch.Tensor, reduce: str = "mean") -> torch.Tensor:
    """Cross-entropy of each row of ``logits (B, B)`` against its diagonal entry."""
    nll = -torch.log_softmax(logits, dim=1).diagonal()  # (B,)
    return nll.sum() if reduce == "sum" else nll.mean()


def _unit(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    return x / x.norm(dim=dim, keepdim=True)


def _logits(video, text, temperature) -> torch.Tensor:
    return _unit(video) @ _unit(text).T / temperature  # (B, B)


def _loss_no_temperature(video, text, temperature):
    s = _unit(video) @ _unit(text).T
    return (_ce_diag(s) + _ce_diag(s.T)) / 2


def _loss_times_temperature(video, text, temperature):
    s = _unit(video) @ _unit(text).T * temperature
    return (_ce_diag(s) + _ce_diag(s.T)) / 2


def _loss_video_to_text_only(video, text, temperature):
    return _ce_diag(_logits(video, text, temperature))  # = ½[CE(S) + CE(S)]: the same softmax twice


def _loss_text_to_video_only(video, text, temperature):
    return _ce_diag(_logits(video, text, temperature).T)


def _loss_not_normalised(video, text, temperature):
    s = video @ text.T / temperature
    return (_ce_diag(s) + _ce_diag(s.T)) / 2


def _loss_only_video_normalised(video, text, temperature):
    s = _unit(video) @ text.T / temperature
    return (_ce_diag(s) + _ce_diag(s.T)) / 2


def _loss_only_text_normalised(video, text, temperature):
    s = video @ _unit(text).T / temperature
    return (_ce_diag(s) + _ce_diag(s.T)) / 2


def _loss_fixed_temperature(video, text, temperature):
    # CLIP's initial value typed in: the function ignores the temperature it is given
    return _loss_reference(video, text, 0.07)


def _loss_no_half(video, text, temperature):
    s = _logits(video, text, temperature)
    return _ce_diag(s) + _ce_diag(s.T)


def _loss_normalised_over_batch(video, text, temperature):
    s = _unit(video, dim=0) @ _unit(text, dim=0).T / temperature
    return (_ce_diag(s) + _ce_diag(s.T)) / 2


def _loss_positive_in_column_zero(video, text, temperature):
    s = _logits(video, text, temperature)
    # MoCo's labels: there the positive is concatenated in front, at index 0 of every row
    return (-torch.log_softmax(s, dim=1)[:, 0].mean() - torch.log_softmax(s.T, dim=1)[:, 0].mean()) / 2


def _loss_summed(video, text, temperature):
    s = _logits(video, text, temperature)
    return (_ce_diag(s, "sum") + _ce_diag(s.T, "sum")) / 2


def _loss_every_pair(video, text, temperature):
    s = _logits(video, text, temperature)
    return (-torch.log_softmax(s, dim=1).mean() - torch.log_softmax(s.T, dim=1).mean()) / 2


def _loss_one_softmax_over_all_pairs(video, text, temperature):
    s = _logits(video, text, temperature)
    return -torch.log_softmax(s.flatten(), dim=0).view_as(s).diagonal().mean()


_SAME_AXIS = ("(Computing both terms on S with the same softmax axis gives exactly this too: "
              "½[CE(S) + CE(S)] = CE(S).)")

register(
    FunctionQuestion(
        id="ex07.symmetric_info_nce",
        name="symmetric_info_nce",
        points=4,
        forbids=FORBIDS,
        reference=_loss_reference,
        make_cases=_loss_cases,
        # a loss is trained on: its gradient with respect to the embeddings must be the reference's (a loss cut
        # from the graph by .item(), .detach() or torch.tensor(...), or inputs normalised in place, fail)
        differentiable=True,
        misconceptions=(
            Misconception(
                "no temperature",
                (
                    "Does your loss change when the temperature changes?",
                    "Divide the cosine similarities by τ before the softmax: S = v̂ t̂ᵀ / τ. Cosines lie in [-1, 1], "
                    "so without τ two logits differ by at most 2 and no alignment, however good, takes the loss below "
                    "log(1 + (B-1)e^-2) (1.65 for B = 32, against log B = 3.47); a small τ (CLIP starts at 0.07) "
                    "lets the softmax sharpen.",
                ),
                fn=_loss_no_temperature,
            ),
            Misconception(
                "multiplied by the temperature",
                (
                    "A smaller temperature should make the softmax sharper. Does it, in yours?",
                    "τ divides the logits, S = v̂ t̂ᵀ / τ: like the 1/√d_k of attention, it sets how peaked the "
                    "softmax is, and τ < 1 makes it more peaked.",
                ),
                fn=_loss_times_temperature,
            ),
            Misconception(
                "temperature hard-coded to 0.07",
                (
                    "Does your loss use the temperature it is given?",
                    "τ is an argument (in a dual encoder it is learned: τ = exp(log τ), updated by the optimiser), so "
                    "divide by `temperature`, not by CLIP's starting value 0.07 typed in: with a constant the "
                    "learned τ would get no gradient and never move.",
                ),
                fn=_loss_fixed_temperature,
            ),
            Misconception(
                "both directions summed, not averaged",
                (
                    "Your loss is exactly twice the right one: what multiplies the two cross-entropies?",
                    "L = ½[CE(S) + CE(Sᵀ)]: the mean of the two directions, not their sum. (Twice the loss is "
                    "twice every gradient, which changes the learning rate's meaning, and an all-equal batch "
                    "would cost 2 log B instead of log B.)",
                ),
                fn=_loss_no_half,
            ),
            Misconception(
                "only the video embeddings normalised",
                (
                    "Does your loss change when you scale one caption's embedding by 10?",
                    "Both sides are L2-normalised: t̂ = text / text.norm(dim=1, keepdim=True) as well as v̂. With one "
                    "side raw, a caption's length scales its logits, so S is no longer cosines over τ.",
                ),
                fn=_loss_only_video_normalised,
            ),
            Misconception(
                "only the text embeddings normalised",
                (
                    "Does your loss change when you scale one video's embedding by 10?",
                    "Both sides are L2-normalised: v̂ = video / video.norm(dim=1, keepdim=True) as well as t̂. With "
                    "one side raw, a video's length scales its logits, so S is no longer cosines over τ.",
                ),
                fn=_loss_only_text_normalised,
            ),
            Misconception(
                "video→text only",
                (
                    "Your loss asks each video to find its caption. What does it ask of each caption?",
                    "The loss is symmetric: ½[CE(S, diag) + CE(Sᵀ, diag)]. The rows of S (a softmax over the "
                    "captions) are video→text; the rows of Sᵀ, the columns of S (a softmax over the videos), are "
                    "text→video. " + _SAME_AXIS,
                ),
                fn=_loss_video_to_text_only,
            ),
            Misconception(
                "text→video only",
                (
                    "Your loss asks each caption to find its video. What does it ask of each video?",
                    "The loss is symmetric: ½[CE(S, diag) + CE(Sᵀ, diag)]. Your term normalises over the videos "
                    "(the columns of S); the other normalises each row of S over the captions. (Two terms that "
                    "both normalise over the videos give exactly this too.)",
                ),
                fn=_loss_text_to_video_only,
            ),
            Misconception(
                "embeddings not normalised",
                (
                    "Does your loss change when you scale one video's embedding by 10?",
                    "The logits are cosine similarities: divide each row of video and of text by its L2 norm "
                    "(x / x.norm(dim=1, keepdim=True)) before v̂ t̂ᵀ. Without that, an embedding's length scales "
                    "its logits, and τ no longer sets the sharpness.",
                ),
                fn=_loss_not_normalised,
            ),
            Misconception(
                "normalised over the batch",
                (
                    "Which axis do you take the norms over?",
                    "Each embedding, a row of (B, D), gets unit length: the norm over dim=1, the D features. "
                    "The norm over dim=0 normalises each feature across the batch instead, so every pair's "
                    "logit depends on the other pairs in the batch.",
                ),
                fn=_loss_normalised_over_batch,
            ),
            Misconception(
                "positive in column 0",
                (
                    "Where in row i of S is video i's own caption?",
                    "Pair i is video i with caption i: the right answer of row i is column i, so the targets "
                    "are torch.arange(B), the diagonal. (Labels of zeros come from MoCo, which puts the "
                    "positive in front of its queue of negatives, at index 0.)",
                ),
                fn=_loss_positive_in_column_zero,
            ),
            Misconception(
                "sum over the batch instead of the mean",
                (
                    "Compare your loss for a batch of 8 with one of 4 equally hard pairs: should it double?",
                    "Each direction's cross-entropy is the mean over the B pairs, -(1/B) Σ_i log softmax(S[i])[i] "
                    "(F.cross_entropy's default reduction): for B pairs that all look alike the loss is log B, "
                    "not B log B.",
                ),
                fn=_loss_summed,
            ),
            Misconception(
                "mean over every pair, not the matching ones",
                (
                    "Which entries of the log-softmax does your loss average?",
                    "Only the matching pairs count as targets: take log softmax(S[i])[i], the diagonal, and "
                    "average those B values. The mean over all B² entries also rewards the negatives.",
                ),
                fn=_loss_every_pair,
            ),
            Misconception(
                "one softmax over all B² pairs",
                (
                    "Over which set of logits does each of your softmaxes run?",
                    "Each video chooses among the B captions (a softmax over one row of S) and each caption among "
                    "the B videos (one column), not among all B² pairs at once: two softmaxes, over dim=1 of S "
                    "and of Sᵀ.",
                ),
                fn=_loss_one_softmax_over_all_pairs,
            ),
        ),
        hints=(
            "v̂ = video / its row norms, t̂ likewise; S = v̂ @ t̂.T / temperature (B, B); "
            "loss = (cross-entropy of S's rows against arange(B) + the same for S.T) / 2.",
        ),
    )
)


# ----------------------------------------------------------------------------- its gradient


def _grad_cases() -> list[Case]:
    g = seeded(702)
    cases = []
    for k, (B, scale, label) in enumerate([(3, 2.0, "three pairs"), (4, 5.0, "four pairs, sharp logits"),
                                           (6, 1.0, "six pairs"), (2, 10.0, "two pairs, very sharp")]):
        s = scale * torch.randn(B, B, generator=g, dtype=DT)  # not symmetric: rows and columns differ
        s = s + pick(720 + k, 0.0, (0.5, 1.0, 2.0)) * torch.eye(B, dtype=DT)
        cases.append(Case((s,), label=label))
    return cases


def _grad_reference(logits):
    s = logits.detach().clone().requires_grad_(True)
    target = torch.arange(s.shape[0])
    loss = (torch.nn.functional.cross_entropy(s, target) + torch.nn.functional.cross_entropy(s.T, target)) / 2
    (grad,) = torch.autograd.grad(loss, s)
    return grad


def _p_rows(s):
    return torch.softmax(s, dim=1)


def _p_cols(s):
    return torch.softmax(s, dim=0)


def _eye(s):
    return torch.eye(s.shape[0], dtype=s.dtype)


def _grad_rows_only(logits):
    return (_p_rows(logits) - _eye(logits)) / logits.shape[0]


def _grad_cols_only(logits):
    return (_p_cols(logits) - _eye(logits)) / logits.shape[0]


def _grad_no_batch_mean(logits):
    return (_p_rows(logits) + _p_cols(logits) - 2 * _eye(logits)) / 2


def _grad_no_half(logits):
    return (_p_rows(logits) + _p_cols(logits) - 2 * _eye(logits)) / logits.shape[0]


def _grad_no_one_hot(logits):
    return (_p_rows(logits) + _p_cols(logits)) / (2 * logits.shape[0])


def _grad_sign_flipped(logits):
    return (2 * _eye(logits) - _p_rows(logits) - _p_cols(logits)) / (2 * logits.shape[0])


def _grad_transpose_not_undone(logits):
    # the text→video term's gradient is taken with respect to Sᵀ and added without transposing it back
    return (_p_rows(logits) + _p_rows(logits.T) - 2 * _eye(logits)) / (2 * logits.shape[0])


register(
    FunctionQuestion(
        id="ex07.info_nce_logit_gradient",
        name="info_nce_logit_gradient",
        points=3,
        forbids=FORBIDS,
        reference=_grad_reference,
        make_cases=_grad_cases,
        misconceptions=(
            Misconception(
                "video→text term only",
                (
                    "Your gradient is that of one of the loss's two terms.",
                    "L = ½[CE(S, diag) + CE(Sᵀ, diag)]: the rows' term gives (softmax(S, dim=1) - I)/B, the "
                    "columns' term (softmax(S, dim=0) - I)/B, and the loss takes half of each.",
                ),
                fn=_grad_rows_only,
            ),
            Misconception(
                "text→video term only",
                (
                    "Your gradient is that of one of the loss's two terms: the one whose softmax runs down the "
                    "columns.",
                    "L = ½[CE(S, diag) + CE(Sᵀ, diag)]: the columns' term gives (softmax(S, dim=0) - I)/B, and the "
                    "rows' term, video→text, (softmax(S, dim=1) - I)/B too; the loss takes half of each.",
                ),
                fn=_grad_cols_only,
            ),
            Misconception(
                "no 1/B",
                (
                    "The loss is a mean over the batch. Where is that mean in your gradient?",
                    "Each direction's cross-entropy is (1/B) Σ_i of one row's term, so every entry of its "
                    "gradient carries a factor 1/B: (softmax - one-hot)/B.",
                ),
                fn=_grad_no_batch_mean,
            ),
            Misconception(
                "both directions without the ½",
                (
                    "Compare your gradient with the loss's definition: what multiplies the two cross-entropies?",
                    "L = ½[CE(S, diag) + CE(Sᵀ, diag)]: each direction's gradient, (softmax - I)/B, enters with "
                    "the factor ½.",
                ),
                fn=_grad_no_half,
            ),
            Misconception(
                "one-hot forgotten",
                (
                    "Does each row of your gradient sum to zero?",
                    "The derivative of -log softmax(z)[i] with respect to z_j is softmax(z)_j - [i = j]: the "
                    "target's one-hot is subtracted, so the diagonal gets softmax - 1 (pushed up) and the other "
                    "entries softmax (pushed down).",
                ),
                fn=_grad_no_one_hot,
            ),
            Misconception(
                "sign flipped",
                (
                    "Gradient descent subtracts the gradient. Would subtracting yours raise the matching logits?",
                    "d(-log softmax(z)[i])/dz_j = softmax(z)_j - [i = j]: negative on the diagonal (descent raises "
                    "the matching pair's logit), positive elsewhere.",
                ),
                fn=_grad_sign_flipped,
            ),
            Misconception(
                "Sᵀ's gradient not transposed back",
                (
                    "Your text→video term: is it a gradient with respect to S or with respect to Sᵀ?",
                    "softmax(S.T, dim=1) - I is the gradient with respect to Sᵀ; with respect to S it is its "
                    "transpose, softmax(S, dim=0) - I: a softmax down each column of S.",
                ),
                fn=_grad_transpose_not_undone,
            ),
        ),
        hints=(
            "With I = torch.eye(B): (softmax(S, dim=1) - I)/B + (softmax(S, dim=0) - I)/B, all halved.",
        ),
    )
)


# ----------------------------------------------------------------------------- derivation: log B

register(
    DerivationQuestion(
        id="ex07.all_equal_loss",
        name="all_equal_loss_steps",
        points=2,
        # every logit equals c = cos/τ: the two directions' mean cross-entropies, halved
        start="(-Sum(log(exp(c)/Sum(exp(c), (j, 1, B))), (i, 1, B))/B"
              " - Sum(log(exp(c)/Sum(exp(c), (i, 1, B))), (j, 1, B))/B)/2",
        target="log(B)",
        assumptions={"B": "positive integer", "c": "real", "i": "positive integer", "j": "positive integer"},
        prompt="The symmetric InfoNCE loss of B pairs whose embeddings are all equal, so that every logit is the "
        "same number c: show that it is log B, whatever c (and so whatever τ).",
        misconceptions=(
            Misconception(
                "sign flipped",
                ("A cross-entropy is never negative.",
                 "-log softmax = -log(1/B) = +log B: the minus in front of the log turns the log of a probability, "
                 "at most 0, into a loss of at least 0."),
                expr="-log(B)",
            ),
            Misconception(
                "sum over the batch instead of the mean",
                ("Which factor in front of the sums over i and j did your result lose?",
                 "Each direction is a mean over the B pairs, (1/B) Σ_i: B equal terms log B, divided by B, leave "
                 "log B."),
                expr="B*log(B)",
            ),
            Misconception(
                "one direction halved",
                ("Your result is half of the right one: what happened to the second direction?",
                 "Both directions give log B (the columns are as uniform as the rows), and ½(log B + log B) = "
                 "log B."),
                expr="log(B)/2",
            ),
            Misconception(
                "equal embeddings match perfectly",
                ("Every cosine is 1 here, the matching pairs' and the negatives' alike: can a video tell its "
                 "caption from the others?",
                 "The loss does not ask for a high similarity but for a higher one than the negatives: with every "
                 "logit equal each softmax is uniform, 1/B for the right caption, and -log(1/B) = log B, chance."),
                expr="0",
            ),
        ),
        hints=(
            "Every term of Σ_j exp(c) is the same: what is the sum?",
            "Σ_j exp(c) = B·exp(c), so each softmax is exp(c)/(B·exp(c)) = 1/B; the B equal terms of each mean "
            "give -log(1/B), for both directions.",
        ),
        # the step that matters is the softmax of equal logits, exp(c)/(B·exp(c)) = 1/B; whether the sums are done
        # before or after it, a chain that shows it passes through a form whose every log is log(1/B), no exp
        # left. Counting names alone ("a log, no exp") was met by the target in disguise (log(B**2)/2,
        # log(2*B) - log(2)): every correct step equals log B, so the argument of the log is what is pinned
        milestones=(Milestone("each softmax worked out to 1/B: a step whose every log is log(1/B) (exp(c) cancelled, "
                              "no exp left)", has=("log",), free_of=("exp",), only_args=(("log", "1/B"),)),),
    )
)
