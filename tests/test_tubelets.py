"""Tests for vidlearn.tubelets.

The reference for every embedding is written here with explicit loops over tubelets and
taps (or with torch's own conv2d on single frames), not with the library's reshapes, so a
wrong flatten order, a wrong permute or a wrong frame index shows up as a mismatch.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vidlearn.tubelets import (
    TokenGrid,
    TubeletEmbedding,
    UniformFrameSampling,
    central_frame_init,
    inflate_2d_filter,
    token_grid,
    tubelet_tokens,
    uniform_frame_indices,
)

DT = torch.float64
ATOL = 1e-10


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _embedding(C: int, D: int, tubelet, seed: int = 0) -> TubeletEmbedding:
    torch.manual_seed(seed)
    return TubeletEmbedding(C, D, tubelet).to(DT)


def _loop_reference(video: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Tubelet embedding by the definition: for each tubelet, Σ over taps (c, τ, i, j) of w·x, plus b."""
    B, T, C, H, W = video.shape
    D, _, t, h, w = weight.shape
    n_t, n_h, n_w = T // t, H // h, W // w
    out = torch.zeros(B, n_t, n_h * n_w, D, dtype=video.dtype)  # (B, n_t, n_h·n_w, D)
    for a in range(n_t):
        for r in range(n_h):
            for s in range(n_w):
                tube = video[:, a * t : (a + 1) * t, :, r * h : (r + 1) * h, s * w : (s + 1) * w]  # (B, t, C, h, w)
                # weight is (D, C, t, h, w): line the tube up as (B, C, t, h, w) and sum over all taps
                out[:, a, r * n_w + s] = torch.einsum("bcthw,dcthw->bd", tube.transpose(1, 2), weight) + bias
    return out


# --------------------------------------------------------------------------- token grid


@pytest.mark.parametrize(
    "T,H,W,tubelet,expected",
    [
        (32, 224, 224, (2, 16, 16), (16, 14, 14)),
        (16, 224, 224, (2, 16, 16), (8, 14, 14)),
        (8, 224, 224, (1, 16, 16), (8, 14, 14)),
        (15, 230, 239, (2, 16, 16), (7, 14, 14)),  # floor: 1 frame, 6 rows, 15 columns dropped
        (3, 16, 31, (3, 16, 16), (1, 1, 1)),
        (2, 5, 7, (1, 1, 1), (2, 5, 7)),
    ],
)
def test_token_grid_is_the_floor(T, H, W, tubelet, expected):
    grid = token_grid(T, H, W, tubelet)
    assert grid == expected and isinstance(grid, TokenGrid)
    assert grid.n_tokens == expected[0] * expected[1] * expected[2]
    assert grid.n_patches == expected[1] * expected[2]


def test_vivit_token_count():
    assert token_grid(32, 224, 224, (2, 16, 16)).n_tokens == 3136


@pytest.mark.parametrize(
    "args,match",
    [
        ((1, 224, 224, (2, 16, 16)), r"T=1 is smaller than the tubelet's t=2"),
        ((8, 15, 224, (2, 16, 16)), r"H=15 is smaller than the tubelet's h=16"),
        ((8, 224, 10, (2, 16, 16)), r"W=10 is smaller than the tubelet's w=16"),
        ((0, 224, 224, (2, 16, 16)), r"video size T must be a positive integer"),
        ((8, 224.0, 224, (2, 16, 16)), r"video size H must be a positive integer"),
        ((8, 224, 224, (2, 16)), r"tubelet must be a tuple of 3"),
        ((8, 224, 224, (2, 0, 16)), r"tubelet size h must be a positive integer"),
        ((8, 224, 224, 16), r"tubelet must be a tuple of 3"),
    ],
)
def test_token_grid_errors(args, match):
    with pytest.raises(ValueError, match=match):
        token_grid(*args)


# --------------------------------------------------------------------------- tubelet embedding


@pytest.mark.parametrize(
    "shape,tubelet",
    [((2, 4, 3, 8, 8), (2, 4, 4)), ((1, 5, 2, 9, 7), (2, 3, 2)), ((2, 3, 1, 4, 6), (3, 2, 3)), ((1, 2, 3, 5, 5), (1, 1, 1))],
)
def test_conv3d_equals_the_definition_and_the_flattened_linear_map(shape, tubelet):
    video = torch.randn(*shape, generator=_gen(1), dtype=DT)  # (B, T, C, H, W)
    D = 5
    emb = _embedding(shape[2], D, tubelet)
    tokens = emb(video)  # (B, n_t, n_h·n_w, D)
    weight, bias = emb.proj.weight, emb.proj.bias  # (D, C, t, h, w), (D,)
    torch.testing.assert_close(tokens, _loop_reference(video, weight, bias), atol=ATOL, rtol=0)

    flat = tubelet_tokens(video, tubelet)  # (B, n_t, n_h, n_w, C·t·h·w)
    linear = flat @ weight.reshape(D, -1).T + bias  # (B, n_t, n_h, n_w, D)
    torch.testing.assert_close(linear.flatten(2, 3), tokens, atol=ATOL, rtol=0)


def test_tubelet_tokens_flatten_order_is_c_t_h_w():
    # a video whose value encodes its own (t, c, y, x) index: the flattened tubelet must list
    # channel slowest, then frame, row, column
    B, T, C, H, W = 1, 2, 2, 2, 3
    video = torch.arange(T * C * H * W, dtype=DT).reshape(B, T, C, H, W)
    flat = tubelet_tokens(video, (2, 2, 3))  # (1, 1, 1, 1, 24)
    expected = torch.stack([video[0, tau, c, i, j] for c in range(C) for tau in range(T) for i in range(H) for j in range(W)])
    assert torch.equal(flat[0, 0, 0, 0], expected)


def test_a_wrong_flatten_order_does_not_match_conv3d():
    # (t, C, h, w) is the natural order for a (B, T, C, H, W) video, and it is wrong
    video = torch.randn(1, 2, 3, 4, 4, generator=_gen(2), dtype=DT)
    emb = _embedding(3, 4, (2, 4, 4))
    wrong = video.reshape(1, 1, 2 * 3 * 4 * 4) @ emb.proj.weight.reshape(4, -1).T + emb.proj.bias  # (1, 1, D)
    assert (wrong - emb(video, flatten=True)).abs().max() > 1e-3


def test_flatten_gives_time_major_sequence():
    video = torch.randn(2, 6, 3, 8, 12, generator=_gen(3), dtype=DT)
    emb = _embedding(3, 7, (2, 4, 4))
    grid = emb.grid(6, 8, 12)
    assert grid == (3, 2, 3)
    tokens, seq = emb(video), emb(video, flatten=True)
    assert tokens.shape == (2, 3, 6, 7) and seq.shape == (2, grid.n_tokens, 7)
    assert torch.equal(seq[:, 6:12], tokens[:, 1]), "tokens of time step 1 follow all 6 of time step 0"


def test_leftover_frames_rows_and_columns_are_dropped():
    emb = _embedding(2, 4, (2, 4, 4))
    video = torch.randn(1, 5, 2, 10, 11, generator=_gen(4), dtype=DT)  # leftovers: 1 frame, 2 rows, 3 columns
    tokens = emb(video)
    assert tokens.shape == (1, 2, 2 * 2, 4)
    changed = video.clone()
    changed[:, 4:] = 100.0  # the last frame
    changed[:, :, :, 8:] = -100.0  # the bottom rows
    changed[..., 8:] = 55.0  # the right columns
    torch.testing.assert_close(emb(changed), tokens, atol=ATOL, rtol=0)
    inside = video.clone()
    inside[:, 3, :, 7, 7] += 1.0  # a pixel inside the last whole tubelet does count
    assert (emb(inside) - tokens).abs().max() > 1e-6


def test_tubelet_embedding_errors():
    emb = _embedding(3, 4, (2, 4, 4))
    with pytest.raises(ValueError, match=r"\(B, T, C, H, W\)"):
        emb(torch.randn(3, 2, 8, 8, dtype=DT))
    with pytest.raises(ValueError, match=r"expected 3 channels.*\(B, C, T, H, W\)\?"):
        emb(torch.randn(1, 3, 6, 8, 8, dtype=DT))  # channels-first layout
    with pytest.raises(ValueError, match=r"T=1 is smaller than the tubelet's t=2"):
        emb(torch.randn(1, 1, 3, 8, 8, dtype=DT))
    with pytest.raises(ValueError, match="d_model must be a positive integer"):
        TubeletEmbedding(3, 0, (2, 4, 4))
    with pytest.raises(ValueError, match="in_channels must be a positive integer"):
        TubeletEmbedding(True, 8, (2, 4, 4))
    with pytest.raises(ValueError, match="tubelet must be a tuple of 3"):
        TubeletEmbedding(3, 8, (4, 4))
    with pytest.raises(ValueError, match="expected a video tensor"):
        tubelet_tokens([[1.0]], (1, 1, 1))


# --------------------------------------------------------------------------- uniform frame sampling


@pytest.mark.parametrize(
    "T,n,expected",
    [(16, 4, [0, 5, 10, 15]), (9, 4, [0, 3, 5, 8]), (32, 8, [0, 4, 9, 13, 18, 22, 27, 31]), (5, 5, [0, 1, 2, 3, 4]), (7, 1, [0]), (2, 2, [0, 1])],
)
def test_uniform_frame_indices(T, n, expected):
    assert uniform_frame_indices(T, n).tolist() == expected


def test_uniform_frame_indices_errors():
    with pytest.raises(ValueError, match="cannot sample n_frames=5 distinct frames from a clip of T=4"):
        uniform_frame_indices(4, 5)
    with pytest.raises(ValueError, match="n_frames must be a positive integer"):
        uniform_frame_indices(4, 0)


def test_uniform_frame_sampling_embeds_the_sampled_frames():
    torch.manual_seed(0)
    ufs = UniformFrameSampling(4, 6, patch=(4, 4), in_channels=2).to(DT)
    video = torch.randn(2, 10, 2, 9, 8, generator=_gen(5), dtype=DT)  # H = 9: one row dropped
    tokens = ufs(video)
    assert tokens.shape == (2, 4, 2 * 2, 6)
    assert ufs.grid(10, 9, 8) == (4, 2, 2) and ufs.grid(10, 9, 8).n_tokens == 16
    idx = ufs.indices(10)
    assert idx.tolist() == [0, 3, 6, 9]
    for k, f in enumerate(idx.tolist()):
        ref = F.conv2d(video[:, f], ufs.proj.weight, ufs.proj.bias, stride=4)  # (B, D, 2, 2)
        torch.testing.assert_close(tokens[:, k], ref.flatten(2).transpose(1, 2), atol=ATOL, rtol=0)
    assert ufs(video, flatten=True).shape == (2, 16, 6)
    unseen = video.clone()
    unseen[:, [1, 2, 4, 5, 7, 8]] = 0.0  # frames between the samples do not matter
    torch.testing.assert_close(ufs(unseen), tokens, atol=ATOL, rtol=0)


def test_uniform_frame_sampling_errors():
    ufs = UniformFrameSampling(8, 4, patch=(4, 4), in_channels=3)
    with pytest.raises(ValueError, match="cannot sample n_frames=8"):
        ufs(torch.randn(1, 6, 3, 8, 8))
    with pytest.raises(ValueError, match="expected 3 channels"):
        ufs(torch.randn(1, 8, 1, 8, 8))
    with pytest.raises(ValueError, match=r"patch must be a tuple of 2 positive integers \(h, w\)"):
        UniformFrameSampling(8, 4, patch=(4, 4, 4))


# --------------------------------------------------------------------------- initialisation from 2D


def _static_video(frame: torch.Tensor, T: int) -> torch.Tensor:
    return frame.unsqueeze(1).expand(-1, T, -1, -1, -1).contiguous()  # (B, T, C, H, W)


@pytest.mark.parametrize("t", [1, 2, 3, 4])
def test_inflate_and_central_shapes_and_values(t):
    w2 = torch.randn(5, 3, 4, 2, generator=_gen(6), dtype=DT)  # (D, C, h, w)
    inflated, central = inflate_2d_filter(w2, t), central_frame_init(w2, t)
    assert inflated.shape == central.shape == (5, 3, t, 4, 2)
    for tau in range(t):
        torch.testing.assert_close(inflated[:, :, tau], w2 / t, atol=1e-15, rtol=0)
        expected = w2 if tau == t // 2 else torch.zeros_like(w2)
        assert torch.equal(central[:, :, tau], expected)
    torch.testing.assert_close(inflated.sum(2), w2, atol=ATOL, rtol=0)


@pytest.mark.parametrize("init", ["inflate", "central"])
@pytest.mark.parametrize("t", [1, 2, 3, 4])
def test_static_video_gives_the_2d_response(init, t):
    D, C, h, w = 4, 3, 4, 4
    w2 = torch.randn(D, C, h, w, generator=_gen(7), dtype=DT)
    b = torch.randn(D, generator=_gen(8), dtype=DT)
    frame = torch.randn(2, C, 8, 12, generator=_gen(9), dtype=DT)  # (B, C, H, W)
    emb = TubeletEmbedding.from_patch_embedding(w2, b, t, init=init)
    assert emb.tubelet == (t, h, w) and emb.proj.weight.dtype == DT
    tokens = emb(_static_video(frame, 2 * t))  # (B, 2, 6, D)
    ref = F.conv2d(frame, w2, b, stride=(h, w)).flatten(2).transpose(1, 2)  # (B, 6, D)
    for a in range(2):
        torch.testing.assert_close(tokens[:, a], ref, atol=ATOL, rtol=0)


def test_inflate_and_central_differ_on_a_moving_video():
    # inflation: mean of the t per-frame 2D responses; central: the middle frame's response alone
    t, D, C, h, w = 3, 4, 2, 4, 4
    w2 = torch.randn(D, C, h, w, generator=_gen(10), dtype=DT)
    video = torch.randn(1, t, C, h, w, generator=_gen(11), dtype=DT)  # one tubelet, frames differ
    per_frame = torch.stack([F.conv2d(video[:, f], w2).flatten() for f in range(t)])  # (t, D)
    infl = TubeletEmbedding.from_patch_embedding(w2, None, t, init="inflate")(video).flatten()
    cent = TubeletEmbedding.from_patch_embedding(w2, None, t, init="central")(video).flatten()
    torch.testing.assert_close(infl, per_frame.mean(0), atol=ATOL, rtol=0)
    torch.testing.assert_close(cent, per_frame[t // 2], atol=ATOL, rtol=0)
    assert (infl - cent).abs().max() > 1e-3


def test_init_errors():
    with pytest.raises(ValueError, match=r"shape \(D, C, h, w\), got \(3, 4, 4\)"):
        inflate_2d_filter(torch.randn(3, 4, 4), 2)
    with pytest.raises(ValueError, match="tubelet length t must be a positive integer"):
        central_frame_init(torch.randn(2, 3, 4, 4), 0)
    with pytest.raises(ValueError, match="init must be one of"):
        TubeletEmbedding.from_patch_embedding(torch.randn(2, 3, 4, 4), None, 2, init="average")
    with pytest.raises(ValueError, match=r"bias must have shape \(2,\)"):
        TubeletEmbedding.from_patch_embedding(torch.randn(2, 3, 4, 4), torch.randn(3), 2)
