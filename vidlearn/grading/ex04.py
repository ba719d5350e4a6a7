"""Exercise 4 — tubelets: flattening that matches Conv3d, inflation and central-frame initialisation."""

from __future__ import annotations

import torch

from vidlearn.grading.questions import Case, DerivationQuestion, FunctionQuestion, Milestone, Misconception, register, seeded
from vidlearn.tubelets import central_frame_init, inflate_2d_filter, token_grid, tubelet_tokens

DT = torch.float64


def _video_cases() -> list[Case]:
    g = seeded(401)

    def video(*shape):
        return torch.randn(*shape, generator=g, dtype=DT)  # (B, T, C, H, W)

    return [
        Case((video(1, 2, 1, 4, 4), (2, 2, 2)), label="one channel, 2×2×2 tubelets"),
        Case((video(2, 4, 3, 6, 8), (2, 3, 4)), label="3 channels, n_h != n_w"),
        Case((video(1, 5, 2, 7, 9), (2, 3, 4)), label="leftover frames, rows and columns"),
        Case((video(2, 3, 3, 4, 4), (1, 2, 2)), label="t = 1 (frame patches)"),
    ]


def _tokens_time_first(video, tubelet):
    t, h, w = tubelet
    B, T, C, H, W = video.shape
    n_t, n_h, n_w = token_grid(T, H, W, tubelet)
    tubes = video[:, : n_t * t, :, : n_h * h, : n_w * w].reshape(B, n_t, t, C, n_h, h, n_w, w)
    return tubes.permute(0, 1, 4, 6, 2, 3, 5, 7).reshape(B, n_t, n_h, n_w, -1)  # (t, C, h, w) order


def _tokens_hw_swapped(video, tubelet):
    t, h, w = tubelet
    B, T, C, H, W = video.shape
    n_t, n_h, n_w = token_grid(T, H, W, tubelet)
    tubes = video[:, : n_t * t, :, : n_h * h, : n_w * w].reshape(B, n_t, t, C, n_h, h, n_w, w)
    return tubes.permute(0, 1, 4, 6, 3, 2, 7, 5).reshape(B, n_t, n_h, n_w, -1)  # (C, t, w, h) order


register(
    FunctionQuestion(
        id="ex04.tubelet_tokens",
        name="tubelet_tokens",
        points=3,
        reference=tubelet_tokens,
        make_cases=_video_cases,
        misconceptions=(
            Misconception(
                "flattened in (t, C, h, w) order",
                (
                    "Your tubelets hold the right numbers in a different order than the Conv3d weight.",
                    "A Conv3d weight is (D, C, t, h, w): flatten each tubelet channel-first, (C, t, h, w), "
                    "so that tokens = flat @ W.reshape(D, -1).T.",
                ),
                fn=_tokens_time_first,
            ),
            Misconception(
                "rows and columns swapped inside a tubelet",
                (
                    "Inside each tubelet, which pixel comes after (row 0, column 0)?",
                    "Flatten (C, t, h, w): the column index w varies fastest.",
                ),
                fn=_tokens_hw_swapped,
            ),
        ),
        hints=("Reshape to (B, n_t, t, C, n_h, h, n_w, w), permute the grid axes first, then (C, t, h, w).",),
    )
)


def _filter_cases() -> list[Case]:
    g = seeded(402)
    return [
        Case((torch.randn(4, 3, 2, 2, generator=g, dtype=DT), 2), label="t = 2"),
        Case((torch.randn(2, 1, 3, 3, generator=g, dtype=DT), 3), label="t = 3"),
        Case((torch.randn(5, 3, 4, 4, generator=g, dtype=DT), 4), label="t = 4"),
        Case((torch.randn(3, 2, 2, 2, generator=g, dtype=DT), 1), label="t = 1"),
    ]


def _inflate_undivided(w, t):
    return w.unsqueeze(2).repeat(1, 1, t, 1, 1)


def _inflate_wrong_axis(w, t):
    return w.unsqueeze(1).repeat(1, t, 1, 1, 1) / t


register(
    FunctionQuestion(
        id="ex04.inflate_2d_filter",
        name="inflate_2d_filter",
        points=2,
        reference=inflate_2d_filter,
        make_cases=_filter_cases,
        misconceptions=(
            Misconception(
                "inflation without dividing by t",
                (
                    "Feed your 3D filter a video whose t frames are all the same: is the response the 2D one?",
                    "Divide by t: the t copies of the filter add up their responses.",
                ),
                fn=_inflate_undivided,
            ),
            Misconception(
                "time axis in the wrong place",
                ("A Conv3d weight is (D, C, t, h, w).", "Insert the time axis at position 2."),
                fn=_inflate_wrong_axis,
            ),
        ),
        hints=("(D, C, h, w) -> (D, C, t, h, w): the same 2D filter at every time step, divided by t.",),
    )
)


def _filter_at(w, t, index):
    out = w.new_zeros(w.shape[0], w.shape[1], t, *w.shape[2:])  # (D, C, t, h, w)
    out[:, :, index] = w
    return out


def _central_first(w, t):
    return _filter_at(w, t, 0)


def _central_last(w, t):
    return _filter_at(w, t, t - 1)


register(
    FunctionQuestion(
        id="ex04.central_frame_init",
        name="central_frame_init",
        points=2,
        reference=central_frame_init,
        make_cases=_filter_cases,
        misconceptions=(
            Misconception(
                "filter on the first frame",
                ("Which time index holds the 2D filter in yours?", "The central frame is index ⌊t/2⌋, i.e. t // 2."),
                fn=_central_first,
            ),
            Misconception(
                "filter on the last frame",
                ("Which time index holds the 2D filter in yours?", "The central frame is index ⌊t/2⌋, i.e. t // 2."),
                fn=_central_last,
            ),
            Misconception(
                "inflation instead of central frame",
                ("Central-frame initialisation puts the filter on one frame only.", "Zeros everywhere except index t // 2."),
                fn=inflate_2d_filter,
            ),
        ),
        hints=("(D, C, t, h, w): zeros, except the 2D filter at time index t // 2.",),
    )
)


register(
    DerivationQuestion(
        id="ex04.inflation_static",
        name="inflation_static_steps",
        points=2,
        start="Sum(w/t*x, (tau, 1, t))",
        target="w*x",
        assumptions={"t": "positive integer", "tau": "positive integer", "w": "real", "x": "real"},
        prompt="An inflated filter has weight w/t at each of its t time steps. On a static video every frame "
        "is x, so the response is Σ_τ (w/t)·x. Show that it equals the 2D response w·x.",
        misconceptions=(
            Misconception(
                "the t copies were not divided",
                ("Your result is t times the 2D response.", "Each of the t time steps carries w/t, not w."),
                expr="t*w*x",
            ),
            Misconception(
                "divided twice",
                ("Your result is the 2D response divided by t.", "The sum has t equal terms w·x/t."),
                expr="w*x/t",
            ),
        ),
        hints=("The t terms of the sum are all equal.",),
        min_steps=1,  # the t equal terms are the work; "t cancels" is a rewrite, not a step of its own
        milestones=(Milestone("the sum done: t equal terms, no τ and no Σ left, before t cancels", has=("t",),
                              free_of=("tau", "Sum")),),
    )
)
