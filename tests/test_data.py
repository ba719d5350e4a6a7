"""Tests for vidlearn.data, the moving-shapes clips.

Expected values come from the definition of the data, written out here (motion steps per
direction, caption grammar, the area of a k×k square), not from the module's helpers.

The headline property, that direction needs frame *order*, is checked with classifiers
trained here, all of one tiny architecture (:class:`TinyConvNet`): a 5×5 convolution with
circular padding (the canvas is a torus), read out both by global pooling (what is there,
wherever it is) and by row/column profiles (where it is). A linear model on raw pixels
would be a poor baseline: it cannot even recognise a square at a random position, so its
failing on direction would prove nothing. This model gets shape, colour and speed right,
would find a direction that leaks through position, and gets direction right only when
the frames are in order.
"""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vidlearn.data import DIRECTIONS, MovingShapesConfig, VideoBatch, caption, generate, shape_mask, shuffle_frames

# Written out from the definition: (rows, cols) moved per frame for each direction.
STEP = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}
CAPTION = re.compile(r"^a (\w+) (\w+) moves (\w+)(?: (quickly|very quickly))?$")
CLEAN = MovingShapesConfig(noise_std=0.0)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _expected_positions(batch: VideoBatch) -> torch.Tensor:
    """Top-left corner of the object in every frame, from start + t·speed·step: (B, T, 2)."""
    cfg = batch.config
    out = torch.empty(len(batch), cfg.n_frames, 2, dtype=torch.long)
    for b in range(len(batch)):
        dy, dx = STEP[cfg.directions[batch.direction[b]]]
        s = cfg.speeds[batch.speed[b]]
        for t in range(cfg.n_frames):
            out[b, t, 0] = (batch.start[b, 0] + t * s * dy) % cfg.size
            out[b, t, 1] = (batch.start[b, 1] + t * s * dx) % cfg.size
    return out


# --------------------------------------------------------------------------- basics


def test_shapes_dtypes_ranges():
    cfg = MovingShapesConfig()
    b = generate(cfg, 16, seed=0)
    assert b.video.shape == (16, 8, 3, 32, 32) and b.video.dtype == torch.float32
    assert 0.0 <= b.video.min() and b.video.max() <= 1.0
    assert len(b) == 16 and len(b.captions) == 16 and all(isinstance(c, str) for c in b.captions)
    for name in ("direction", "shape", "colour", "speed", "object_size"):
        t = getattr(b, name)
        assert t.shape == (16,) and t.dtype == torch.int64, name
    assert b.start.shape == (16, 2) and b.start.dtype == torch.int64
    assert ((0 <= b.start) & (b.start < 32)).all()
    assert ((6 <= b.object_size) & (b.object_size <= 10)).all()
    assert b.positions.shape == (16, 8, 2)

    grey = generate(MovingShapesConfig(channels=1, n_frames=5, size=20), 3, seed=0)
    assert grey.video.shape == (3, 5, 1, 20, 20)


def test_same_seed_same_bits_different_seed_differs():
    cfg = MovingShapesConfig()
    state = torch.get_rng_state()
    a, b, c = generate(cfg, 64, seed=7), generate(cfg, 64, seed=7), generate(cfg, 64, seed=8)
    assert torch.equal(torch.get_rng_state(), state), "generate must not touch the global RNG"
    for name in ("video", "direction", "shape", "colour", "speed", "start", "object_size"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert a.captions == b.captions
    assert not torch.equal(a.video, c.video)
    assert not torch.equal(a.start, c.start)


@pytest.fixture(scope="module")
def train() -> VideoBatch:
    return generate(MovingShapesConfig(), 2000, seed=1)


@pytest.fixture(scope="module")
def heldout() -> VideoBatch:
    return generate(MovingShapesConfig(), 1000, seed=2)


def test_generates_2000_clips(train):
    assert train.video.shape == (2000, 8, 3, 32, 32)
    assert torch.isfinite(train.video).all()
    # objects are drawn, not just noise: every clip has bright pixels in every frame
    assert (train.video.amax(dim=(2, 3, 4)) > 0.9).all()


def test_labels_in_range_and_balanced(train):
    cfg, n = train.config, len(train)
    for name, options in (
        ("direction", cfg.directions),
        ("shape", cfg.shapes),
        ("colour", cfg.colours),
        ("speed", cfg.speeds),
    ):
        labels = getattr(train, name)
        assert labels.min() >= 0 and labels.max() < len(options), name
        counts = torch.bincount(labels, minlength=len(options)).float()
        # each count is within 10% of n/k (about 3 to 4.5 standard deviations here)
        assert ((counts - n / len(options)).abs() < 0.1 * n / len(options)).all(), (name, counts)
    # start positions cover the whole canvas in both coordinates
    for axis in (0, 1):
        counts = torch.bincount(train.start[:, axis], minlength=cfg.size)
        assert counts.shape == (cfg.size,) and counts.min() > 30, counts


def test_captions_match_labels(train):
    cfg = train.config
    adverb = {0: None, 1: "quickly"}
    for i, text in enumerate(train.captions[:500]):
        m = CAPTION.match(text)
        assert m, text
        colour, shape, direction, speed_word = m.groups()
        assert colour == cfg.colours[train.colour[i]], text
        assert shape == cfg.shapes[train.shape[i]], text
        assert direction == cfg.directions[train.direction[i]], text
        assert speed_word == adverb[int(train.speed[i])], text


def test_caption_helper():
    cfg = MovingShapesConfig()
    assert caption(0, 0, 0, 0, cfg) == "a red square moves left"
    assert caption(1, 2, 1, 1, cfg) == "a green triangle moves right quickly"
    three = MovingShapesConfig(speeds=(1, 2, 3), size=32)
    assert caption(1, 1, 2, 2, three) == "a blue circle moves right very quickly"
    with pytest.raises(ValueError, match="direction index 2"):
        caption(2, 0, 0, 0, cfg)
    with pytest.raises(ValueError, match="speed index 5"):
        caption(0, 0, 0, 5, cfg)


# --------------------------------------------------------------------------- geometry


@pytest.mark.parametrize("k", [4, 6, 7, 10])
def test_shape_masks(k):
    S = 16
    square, circle, triangle = (shape_mask(kind, k, S) for kind in ("square", "circle", "triangle"))
    box = torch.zeros(S, S, dtype=torch.bool)
    box[:k, :k] = True
    assert torch.equal(square, box) and square.sum() == k * k
    for m in (circle, triangle):
        assert not (m & ~box).any(), "a shape must stay inside its bounding box"
        assert torch.equal(m[:k, :k], m[:k, :k].flip(1)), "shapes are symmetric left-right"
    assert torch.equal(circle[:k, :k], circle[:k, :k].flip(0))
    assert not torch.equal(square, circle) and not torch.equal(square, triangle)
    assert not torch.equal(circle, triangle)
    assert circle.sum() < square.sum() and triangle.sum() < square.sum()
    assert triangle[k - 1, :k].all(), "the triangle's base is the box's bottom row"


@pytest.mark.parametrize("directions", [("left", "right"), ("left", "right", "up", "down")])
def test_object_moves_by_speed_in_labelled_direction(directions):
    cfg = MovingShapesConfig(noise_std=0.0, directions=directions)
    b = generate(cfg, 300, seed=3)
    S = cfg.size
    assert torch.equal(b.positions, _expected_positions(b))
    mask = b.video.sum(2) > 0  # (B, T, H, W)

    # centre of mass on the circle: the angle of Σ m·exp(2πi·x/S) per axis
    angle = 2 * math.pi * torch.arange(S, dtype=torch.float64) / S

    def com(m_axis):  # (B, T, S) mass per coordinate -> (B, T) position in pixels
        z = torch.complex(m_axis @ torch.cos(angle), m_axis @ torch.sin(angle))
        return torch.angle(z) * S / (2 * math.pi)

    rows, cols = com(mask.sum(3).double()), com(mask.sum(2).double())  # (B, T)
    for axis, centre in ((0, rows), (1, cols)):
        shift = centre[:, 1:] - centre[:, :-1]  # (B, T-1)
        for i in range(len(b)):
            step = STEP[directions[b.direction[i]]][axis] * cfg.speeds[b.speed[i]]
            # equal modulo S, to float precision
            err = (shift[i] - step + S / 2) % S - S / 2
            assert err.abs().max() < 1e-6, (i, directions[b.direction[i]], shift[i])

    # exactly: each frame is the previous one rolled by speed·step
    for i in range(len(b)):
        dy, dx = STEP[directions[b.direction[i]]]
        s = cfg.speeds[b.speed[i]]
        rolled = torch.roll(b.video[i, :-1], shifts=(s * dy, s * dx), dims=(-2, -1))
        assert torch.equal(rolled, b.video[i, 1:]), i


def test_wrap_around_keeps_pixel_count_and_shape():
    b = generate(CLEAN, 400, seed=4)
    S = CLEAN.size
    pos = _expected_positions(b)  # (B, T, 2)
    k = b.object_size[:, None, None]
    crosses = ((pos + k) > S).any(-1)  # (B, T): the bounding box runs over the border
    wrapping = crosses.any(1) & ~crosses.all(1)  # crosses in some frames but not in others
    assert wrapping.sum() > 50
    counts = (b.video.sum(2) > 0).sum((2, 3))  # (B, T) object pixels per frame
    assert (counts == counts[:, :1]).all(), "an object must not lose or gain pixels at the border"
    square = b.shape == CLEAN.shapes.index("square")
    assert torch.equal(counts[square, 0], b.object_size[square] ** 2)
    for i in wrapping.nonzero().squeeze(1).tolist():
        # moved back to the origin, every frame is the same picture: the shape is intact
        back = torch.stack(
            [torch.roll(b.video[i, t], (-int(pos[i, t, 0]), -int(pos[i, t, 1])), (-2, -1)) for t in range(CLEAN.n_frames)]
        )
        assert torch.equal(back, back[:1].expand_as(back)), i
        assert not back[0, :, k[i, 0, 0]:, :].any() and not back[0, :, :, k[i, 0, 0]:].any()


def test_grey_levels_distinct_per_colour():
    cfg = MovingShapesConfig(channels=1, noise_std=0.0, colours=("red", "green", "blue", "white"))
    b = generate(cfg, 200, seed=5)
    level = b.video.amax(dim=(1, 2, 3, 4))  # (B,): the object's grey level
    per_colour = {c: set(level[b.colour == c].tolist()) for c in range(len(cfg.colours))}
    assert all(len(v) == 1 for v in per_colour.values()), per_colour
    assert len({v.pop() for v in per_colour.values()}) == len(cfg.colours)


def test_rgb_colours():
    b = generate(CLEAN, 100, seed=6)
    rgb = b.video.amax(dim=(1, 3, 4))  # (B, C)
    expected = torch.eye(3)[b.colour]  # red, green, blue are the unit channels
    assert torch.equal(rgb, expected)


# --------------------------------------------------------------------------- shuffle


def test_shuffle_frames():
    v = generate(MovingShapesConfig(), 64, seed=9).video
    orig = v.clone()
    s = shuffle_frames(v, _gen(0))
    assert torch.equal(v, orig), "the input must not be modified"
    assert torch.equal(s, shuffle_frames(v, _gen(0))), "the same generator state gives the same order"
    # match[b, i, j]: output frame i of clip b is input frame j (noisy frames are all distinct)
    match = (s[:, :, None] == v[:, None, :]).flatten(3).all(-1)  # (B, T, T)
    assert (match.sum(-1) == 1).all() and (match.sum(-2) == 1).all(), "each clip keeps its frames, once each"
    perms = match.float().argmax(-1)  # (B, T)
    assert len({tuple(p) for p in perms.tolist()}) > 32, "each clip gets its own order"
    assert not torch.equal(perms, torch.arange(8).expand(64, 8))
    with pytest.raises(ValueError, match="generator"):
        shuffle_frames(v, 0)
    with pytest.raises(ValueError, match=r"\(B, T, \.\.\.\)"):
        shuffle_frames(torch.zeros(5), _gen(0))


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"channels": 2}, "channels must be 1"),
        ({"colours": ("red", "purple")}, r"unknown colours \['purple'\]"),
        ({"shapes": ("square", "hexagon")}, r"unknown shapes \['hexagon'\]"),
        ({"directions": ("left", "sideways")}, r"unknown directions \['sideways'\]"),
        ({"size": 10}, "size=10 is too small for objects of up to 10 px"),
        ({"size": 12, "object_size": (4, 6), "speeds": (1, 6)}, "size=12 is too small for speed 6"),
        ({"object_size": (2, 5)}, "object_size must satisfy 4 <= lo <= hi"),
        ({"object_size": (8, 6)}, "object_size must satisfy 4 <= lo <= hi"),
        ({"speeds": (2, 1)}, "strictly increasing"),
        ({"speeds": (0, 1)}, "positive integers"),
        ({"n_frames": 1}, "n_frames must be an integer >= 2"),
        ({"noise_std": -0.1}, "noise_std must be >= 0"),
        ({"colours": ("red", "red")}, "duplicates"),
        ({"shapes": ()}, "must not be empty"),
    ],
)
def test_bad_config_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MovingShapesConfig(**kwargs)


@pytest.mark.parametrize("n", [0, -3, 2.5])
def test_bad_n_raises(n):
    with pytest.raises(ValueError, match="n must be a positive integer"):
        generate(MovingShapesConfig(), n, seed=0)


def test_config_accepts_lists_and_stays_hashable():
    cfg = MovingShapesConfig(colours=["red", "blue"], speeds=[1, 3])
    assert cfg.colours == ("red", "blue") and cfg.speeds == (1, 3)
    hash(cfg)


# --------------------------------------------------------------------------- direction needs time


class TinyConvNet(nn.Module):
    """One 5×5 conv layer read out two ways: *what* is in the image and *where*.

    ``h = relu(conv(x))`` (circular padding) for input ``x (B, C_in, H, W)``;
    ``logits = what([mean(h), max(h)]) + where([mean of h per column, per row])``. The
    global pooling recognises a shape at any position; the profiles would find a label
    that leaks through absolute position (e.g. right-movers starting on the left half:
    with that bug this model scores about 0.63 on direction from one frame, where the
    best possible is 0.67).
    """

    def __init__(self, in_shape: tuple[int, int, int], n_classes: int, width: int = 8):
        super().__init__()
        c_in, h, w = in_shape
        self.conv = nn.Conv2d(c_in, width, 5, padding=2, padding_mode="circular")
        self.what = nn.Linear(2 * width, n_classes)
        self.where = nn.Linear(width * (h + w), n_classes)

    def forward(self, x):
        h = F.relu(self.conv(x))  # (B, width, H, W)
        anywhere = torch.cat([h.mean((2, 3)), h.amax((2, 3))], dim=1)  # (B, 2·width)
        profiles = torch.cat([h.mean(2).flatten(1), h.mean(3).flatten(1)], dim=1)  # (B, width·(W + H))
        return self.what(anywhere) + self.where(profiles)


def fit_and_score(x_train, y_train, x_test, y_test, n_classes, *, steps=200, batch=32, seed=0) -> float:
    """Train a TinyConvNet with Adam on (x_train, y_train); return accuracy on the held-out set."""
    with torch.random.fork_rng():  # a fixed initialisation without touching the caller's RNG
        torch.manual_seed(seed)
        net = TinyConvNet(tuple(x_train.shape[1:]), n_classes)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    g = _gen(seed)
    for _ in range(steps):
        idx = torch.randint(len(x_train), (batch,), generator=g)
        loss = F.cross_entropy(net(x_train[idx]), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return (net(x_test).argmax(1) == y_test).float().mean().item()


def one_frame(batch: VideoBatch, seed: int) -> torch.Tensor:
    """A random frame of each clip, in colour: (B, C, H, W)."""
    t = torch.randint(batch.config.n_frames, (len(batch),), generator=_gen(seed))
    return batch.video[torch.arange(len(batch)), t]


def grey_clip(video: torch.Tensor) -> torch.Tensor:
    """Frames stacked as channels, colour averaged out: (B, T, H, W).

    Colour carries nothing about motion; averaging it makes the clip models 3× cheaper.
    """
    return video.mean(2)


CHANCE_TOLERANCE = 0.06  # about 3.8 standard deviations of a coin's accuracy on 1000 clips


@pytest.mark.parametrize("label, n_classes", [("shape", 3), ("colour", 3)])
def test_one_frame_classifier_is_capable(train, heldout, label, n_classes):
    x_train, x_test = one_frame(train, 10), one_frame(heldout, 11)
    acc = fit_and_score(x_train, getattr(train, label), x_test, getattr(heldout, label), n_classes)
    assert acc > 0.9, f"{label} from one frame: accuracy {acc:.3f}"


def test_one_frame_classifier_cannot_tell_direction(train, heldout):
    x_train, x_test = one_frame(train, 10), one_frame(heldout, 11)
    acc = fit_and_score(x_train, train.direction, x_test, heldout.direction, 2)
    assert abs(acc - 0.5) < CHANCE_TOLERANCE, f"direction from one frame: accuracy {acc:.3f}, expected chance"


def test_shuffled_clip_classifier_cannot_tell_direction_but_sees_speed(train, heldout):
    x_train = grey_clip(shuffle_frames(train.video, _gen(20)))
    x_test = grey_clip(shuffle_frames(heldout.video, _gen(21)))
    acc = fit_and_score(x_train, train.direction, x_test, heldout.direction, 2)
    assert abs(acc - 0.5) < CHANCE_TOLERANCE, f"direction from shuffled frames: accuracy {acc:.3f}, not chance"
    # the same model on the same input does use all the frames: their spread gives the speed
    acc_speed = fit_and_score(x_train, train.speed, x_test, heldout.speed, 2)
    assert acc_speed > 0.9, f"speed from shuffled frames: accuracy {acc_speed:.3f}"


def test_ordered_clip_classifier_tells_direction(train, heldout):
    x_train, x_test = grey_clip(train.video), grey_clip(heldout.video)
    acc = fit_and_score(x_train, train.direction, x_test, heldout.direction, 2)
    assert acc > 0.9, f"direction from ordered frames: accuracy {acc:.3f}"


def test_caption_id_is_one_to_one_with_the_caption():
    cfg = MovingShapesConfig(speeds=(1, 2, 3))
    batch = generate(cfg, 600, seed=5)
    assert cfg.n_captions == 2 * 3 * 3 * 3
    ids = batch.caption_id.tolist()
    assert all(0 <= i < cfg.n_captions for i in ids)
    by_id = {}
    for i, text in zip(ids, batch.captions):
        assert by_id.setdefault(i, text) == text  # one caption per id ...
    assert len(set(by_id.values())) == len(by_id)  # ... and one id per caption


def test_trajectories_are_what_generate_draws_and_check_their_input():
    from vidlearn.data import trajectories

    config = MovingShapesConfig()
    batch = generate(config, 16, seed=2)
    pos = trajectories(config, batch.start, batch.direction, batch.speed)  # (B, T, 2)
    torch.testing.assert_close(pos, batch.positions)
    step = torch.tensor([DIRECTIONS[config.directions[int(d)]] for d in batch.direction])  # (B, 2)
    pixels = torch.tensor([config.speeds[int(s)] for s in batch.speed])  # (B,)
    assert torch.equal((pos[:, 1] - pos[:, 0]) % config.size, (pixels[:, None] * step) % config.size)
    with pytest.raises(ValueError, match="start must be"):
        trajectories(config, batch.start[:, 0], batch.direction, batch.speed)
    with pytest.raises(ValueError, match="direction must be"):
        trajectories(config, batch.start, batch.direction + len(config.directions), batch.speed)
    with pytest.raises(ValueError, match="speed must be"):
        trajectories(config, batch.start, batch.direction, batch.speed[:3])
