"""Moving shapes: synthetic video clips generated in code from a seed.

Each clip shows one object (a square, circle or triangle, in one colour) sliding across a
dark canvas at a constant integer speed, plus a little Gaussian pixel noise. Every clip
comes with its labels (direction, shape, colour, speed) and a caption such as
``"a red square moves left quickly"``, so the same data serves classification and
captioning / cross-modal exercises. Nothing is downloaded: ``generate(config, n, seed)``
renders the clips on the CPU, thousands per second, and the same arguments always give
bitwise-identical tensors.

Why the direction task needs temporal order
-------------------------------------------
A video model that ignores frame order (e.g. attention without positional encodings, or
mean-pooled per-frame features) must not be able to solve the direction task. Two design
choices make that exact, not just approximately true:

* **The canvas is a torus.** Positions are taken modulo ``size``, so an object leaving at
  the right edge re-enters at the left one. The frame at time ``t`` shows the object at
  ``x_t = x_0 + d·s·t (mod size)`` with direction sign ``d = ±1`` and speed ``s``.
* **Start positions are uniform over the canvas**, independent of every label. Then
  ``x_t`` is uniform for every ``t`` and either sign, so **one frame carries no
  information about the direction**.

More strongly, the *unordered set* of frames carries none either. Moving right from
``x_0`` visits ``{x_0, x_0 + s, ..., x_0 + (T-1)s}``; moving left from
``x_0' = x_0 + (T-1)s`` visits exactly the same positions. Because ``x_0`` is uniform,
``x_0'`` is too, so a frame-shuffled clip (noise included: it is i.i.d. per frame) has the
same distribution under "left" and "right". The best possible accuracy on shuffled clips
is 1/2; only the order of the frames tells the two apart. Shape, colour, object size and
speed are all visible in a single frame (speed from the set of frames), which makes them
useful controls: a model that gets those right but direction at chance is ignoring time.

Motion is horizontal by default. With ``"up"``/``"down"`` in ``directions`` the set of
frames would reveal the *axis* (a vertical mover stays in its columns, a horizontal one
in its rows), so only the *sign* within an axis needs time. Such configs are allowed,
but an order-blind model then reaches 1/2 on the four directions (axis seen, sign
guessed), not 1/4.

Without the torus (objects bouncing off or stopping at the walls), an object near the
left edge at ``t = 0`` would mostly be moving right, and single frames would leak the
label: the canvas edges would be a shortcut around time.

Usage::

    cfg = MovingShapesConfig()                 # 8 frames, 3×32×32, noise std 0.05
    batch = generate(cfg, 256, seed=0)
    batch.video.shape                          # (256, 8, 3, 32, 32), float32 in [0, 1]
    batch.captions[1]                          # 'a blue square moves right quickly'
    cfg.directions[batch.direction[1]]         # 'right'
    shuffle_frames(batch.video, torch.Generator().manual_seed(0))  # same frames, any order

Rendering
---------
Positions are integers, and shapes are drawn by coordinate tests on the pixel grid: with
``(row, col)`` the top-left corner of the object's ``k×k`` bounding box, pixel ``(y, x)``
is inside the object if its wrapped offset ``((y - row) mod H, (x - col) mod W)`` passes
the shape's test (:func:`shape_mask`). Taking the offset modulo the size is what wraps an
object cleanly across the border. The test depends only on the shape, ``k`` and the
offset, so it is evaluated once per (shape, ``k``) on the offset grid and every pixel of
every frame looks its offset up: two gathers for the whole batch, no loop over clips or
pixels. Because positions are integers, frame ``t+1`` of a noise-free clip is exactly
frame ``t`` rolled by ``d·s`` pixels.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import torch

__all__ = [
    "RGB",
    "GREY",
    "DIRECTIONS",
    "SHAPES",
    "SPEED_ADVERBS",
    "MovingShapesConfig",
    "VideoBatch",
    "generate",
    "caption",
    "shuffle_frames",
    "shape_mask",
    "trajectories",
]

# Colour of the object on a black background, per channel in [0, 1].
RGB: dict[str, tuple[float, float, float]] = {
    "red": (1.0, 0.0, 0.0),
    "green": (0.0, 1.0, 0.0),
    "blue": (0.0, 0.0, 1.0),
    "yellow": (1.0, 1.0, 0.0),
    "cyan": (0.0, 1.0, 1.0),
    "magenta": (1.0, 0.0, 1.0),
    "white": (1.0, 1.0, 1.0),
}
# With channels=1 a colour is a grey level. Every level is distinct, so colour stays
# learnable in grey; the default three (red, green, blue) are 0.25 apart.
GREY: dict[str, float] = {
    "red": 0.5,
    "green": 0.75,
    "blue": 1.0,
    "yellow": 0.625,
    "cyan": 0.875,
    "magenta": 0.375,
    "white": 0.25,
}
# Unit step (d_row, d_col) per frame; rows grow downwards, as in an image.
DIRECTIONS: dict[str, tuple[int, int]] = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}
SHAPES = ("square", "circle", "triangle")
# Caption words for the slowest, middle and fastest speed in the config.
SPEED_ADVERBS = ("", "quickly", "very quickly")


def _check_names(what: str, names, known) -> tuple[str, ...]:
    if isinstance(names, str) or not hasattr(names, "__iter__"):
        raise ValueError(f"{what} must be a tuple of names, got {names!r}")
    names = tuple(names)
    if not names:
        raise ValueError(f"{what} must not be empty")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; choose from {list(known)}")
    if len(set(names)) != len(names):
        raise ValueError(f"{what} contains duplicates: {names}")
    return names


@dataclass(frozen=True)
class MovingShapesConfig:
    """What ``generate`` draws: clips of ``n_frames`` frames, ``channels × size × size``.

    ``shapes``, ``colours``, ``directions`` and ``speeds`` are the label sets (labels are
    indices into these tuples); each is drawn uniformly and independently per clip.
    ``speeds`` are pixels per frame, strictly increasing, at most three (one caption
    adverb each). ``object_size = (lo, hi)`` is the inclusive range of the bounding-box
    side in pixels, drawn uniformly. ``noise_std`` is the std of Gaussian noise added to
    every pixel before clipping to ``[0, 1]``; 0 gives clean frames.
    """

    n_frames: int = 8
    size: int = 32
    channels: int = 3
    shapes: tuple[str, ...] = SHAPES
    colours: tuple[str, ...] = ("red", "green", "blue")
    directions: tuple[str, ...] = ("left", "right")
    speeds: tuple[int, ...] = (1, 2)
    object_size: tuple[int, int] = (6, 10)
    noise_std: float = 0.05

    def __post_init__(self):
        # Lists are accepted and stored as tuples so the config stays hashable.
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        set_("shapes", _check_names("shapes", self.shapes, SHAPES))
        set_("colours", _check_names("colours", self.colours, RGB))
        set_("directions", _check_names("directions", self.directions, DIRECTIONS))
        if not isinstance(self.n_frames, int) or self.n_frames < 2:
            raise ValueError(
                f"n_frames must be an integer >= 2 (direction needs two frames), got {self.n_frames!r}"
            )
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {self.channels!r}")

        speeds = tuple(self.speeds) if hasattr(self.speeds, "__iter__") else (self.speeds,)
        if not speeds or not all(isinstance(s, int) and s >= 1 for s in speeds):
            raise ValueError(f"speeds must be positive integers (pixels per frame), got {self.speeds!r}")
        if len(speeds) > len(SPEED_ADVERBS) or any(a >= b for a, b in zip(speeds, speeds[1:])):
            raise ValueError(
                f"speeds must be strictly increasing and at most {len(SPEED_ADVERBS)} "
                f"(one caption adverb each), got {speeds}"
            )
        set_("speeds", speeds)

        lo_hi = tuple(self.object_size) if hasattr(self.object_size, "__iter__") else ()
        if len(lo_hi) != 2 or not all(isinstance(k, int) for k in lo_hi):
            raise ValueError(f"object_size must be a pair of integers (lo, hi), got {self.object_size!r}")
        lo, hi = lo_hi
        # below 4 px a circle is the same pixels as a square
        if not 4 <= lo <= hi:
            raise ValueError(f"object_size must satisfy 4 <= lo <= hi, got {lo_hi}")
        set_("object_size", lo_hi)

        if not isinstance(self.size, int):
            raise ValueError(f"size must be an integer, got {self.size!r}")
        # An object as wide as the canvas fills whole rows, so horizontal motion is invisible.
        if self.size <= hi:
            raise ValueError(
                f"size={self.size} is too small for objects of up to {hi} px: the canvas must be "
                "larger than the largest object"
            )
        # On a torus a shift of +s is a shift of -(size - s): only s < size/2 has one direction.
        if 2 * speeds[-1] >= self.size:
            raise ValueError(
                f"size={self.size} is too small for speed {speeds[-1]}: on a wrapping canvas a step of "
                f"s px right looks like size - s px left, so size must exceed 2 * max(speeds)"
            )
        if not isinstance(self.noise_std, (int, float)) or not self.noise_std >= 0:
            raise ValueError(f"noise_std must be >= 0, got {self.noise_std!r}")

    @property
    def n_captions(self) -> int:
        """How many different captions (label combinations) clips can have."""
        return math.prod(_caption_radix(self))


def _caption_radix(config: "MovingShapesConfig") -> tuple[int, int, int, int]:
    return len(config.directions), len(config.shapes), len(config.colours), len(config.speeds)


@dataclass(frozen=True)
class VideoBatch:
    """``n`` clips and their labels.

    ``video``: float32 ``(B, T, C, H, W)`` in ``[0, 1]``. ``direction``, ``shape``,
    ``colour``, ``speed``: int64 ``(B,)``, indices into the config's tuples (``speed`` is
    the index, ``config.speeds[speed]`` the pixels per frame). ``start``: int64 ``(B, 2)``,
    the ``(row, col)`` of the bounding box's top-left corner in frame 0.
    ``object_size``: int64 ``(B,)``, the bounding-box side in pixels.
    """

    video: torch.Tensor
    direction: torch.Tensor
    shape: torch.Tensor
    colour: torch.Tensor
    speed: torch.Tensor
    captions: list[str]
    start: torch.Tensor
    object_size: torch.Tensor
    config: MovingShapesConfig = field(repr=False)

    def __len__(self) -> int:
        return self.video.shape[0]

    @property
    def caption_id(self) -> torch.Tensor:
        """Which of the config's ``n_captions`` captions each clip has: ``(B,)`` int64, the labels
        (direction, shape, colour, speed) read as one mixed-radix number."""
        _, n_shape, n_colour, n_speed = _caption_radix(self.config)
        return ((self.direction * n_shape + self.shape) * n_colour + self.colour) * n_speed + self.speed

    @property
    def positions(self) -> torch.Tensor:
        """``(row, col)`` of the bounding box in every frame, modulo the size: ``(B, T, 2)``."""
        return trajectories(self.config, self.start, self.direction, self.speed)


def caption(direction: int, shape: int, colour: int, speed: int, config: MovingShapesConfig) -> str:
    """``"a {colour} {shape} moves {direction}[ {adverb}]"`` from label indices.

    The slowest speed gets no adverb, the next ``"quickly"``, the next ``"very quickly"``.
    """
    direction, shape, colour, speed = int(direction), int(shape), int(colour), int(speed)
    for what, i, options in (
        ("direction", direction, config.directions),
        ("shape", shape, config.shapes),
        ("colour", colour, config.colours),
        ("speed", speed, config.speeds),
    ):
        if not 0 <= i < len(options):
            raise ValueError(f"{what} index {i} is out of range for {options}")
    words = ["a", config.colours[colour], config.shapes[shape], "moves", config.directions[direction]]
    adverb = SPEED_ADVERBS[speed]
    return " ".join(words + [adverb] if adverb else words)


def trajectories(config: MovingShapesConfig, start, direction, speed) -> torch.Tensor:
    """Where the generator puts each object: ``(start + t · speed · step) mod size`` for
    ``t = 0 .. T-1``, ``(B, T, 2)`` (row, col of the bounding box's corner).

    ``start`` ``(B, 2)`` integer positions, ``direction`` and ``speed`` ``(B,)`` indices into
    ``config.directions`` and ``config.speeds``.
    """
    if not isinstance(config, MovingShapesConfig):
        raise ValueError(f"expected a MovingShapesConfig, got {type(config).__name__}")
    start, direction, speed = (torch.as_tensor(v) for v in (start, direction, speed))
    if start.ndim != 2 or start.shape[1] != 2 or start.dtype.is_floating_point:
        raise ValueError(f"start must be integer positions (B, 2), got {start.dtype} {tuple(start.shape)}")
    B = start.shape[0]
    for name, v, n in (("direction", direction, len(config.directions)), ("speed", speed, len(config.speeds))):
        if v.shape != (B,) or v.dtype.is_floating_point or ((v < 0) | (v >= n)).any():
            raise ValueError(f"{name} must be {B} integer indices in [0, {n}), got {v.dtype} {tuple(v.shape)}")
    step = torch.tensor([DIRECTIONS[d] for d in config.directions])[direction]  # (B, 2)
    pixels = torch.tensor(config.speeds)[speed]  # (B,)
    t = torch.arange(config.n_frames)
    return (start[:, None, :] + t[None, :, None] * (pixels[:, None, None] * step[:, None, :])) % config.size


def shape_mask(kind: str, k: int, size: int) -> torch.Tensor:
    """Pixels covered by a ``k×k`` shape whose bounding box has its top-left corner at
    ``(0, 0)`` on a ``size × size`` canvas: ``(size, size)`` bool.

    Row ``v`` and column ``u`` are offsets from the box corner; pixel ``(v, u)`` is tested
    at its centre ``(v + ½, u + ½)``.
    """
    v = torch.arange(size, dtype=torch.float32)[:, None]  # (H, 1)
    u = torch.arange(size, dtype=torch.float32)[None, :]  # (1, W)
    in_box = (v < k) & (u < k)  # (H, W)
    cv, cu = v + 0.5 - k / 2, u + 0.5 - k / 2  # pixel centres relative to the box centre
    if kind == "square":
        return in_box
    if kind == "circle":
        return in_box & (cv**2 + cu**2 <= (k / 2) ** 2)
    if kind == "triangle":
        # apex up, base on the box's bottom row; the half-width grows by 1/2 px per row
        return in_box & (cu.abs() <= (v + 1) / 2)
    raise ValueError(f"unknown shape {kind!r}; choose from {list(SHAPES)}")


def generate(config: MovingShapesConfig, n: int, seed: int) -> VideoBatch:
    """Render ``n`` clips; the same ``(config, n, seed)`` gives bitwise-identical output.

    All randomness comes from one ``torch.Generator`` seeded with ``seed`` (the global
    RNG is neither used nor advanced). A batch of ``n`` clips is not a prefix of a batch
    of ``2n`` with the same seed: take train and test sets from different seeds.
    """
    if not isinstance(config, MovingShapesConfig):
        raise ValueError(f"config must be a MovingShapesConfig, got {type(config).__name__}")
    if not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be a positive integer (number of clips), got {n!r}")
    if not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    n = int(n)
    g = torch.Generator().manual_seed(int(seed))
    T, S, C = config.n_frames, config.size, config.channels

    # Labels, size and start are drawn independently of each other: a dependence between
    # start and direction would let one frame give the direction away.
    direction = torch.randint(len(config.directions), (n,), generator=g)
    shape = torch.randint(len(config.shapes), (n,), generator=g)
    colour = torch.randint(len(config.colours), (n,), generator=g)
    speed = torch.randint(len(config.speeds), (n,), generator=g)
    lo, hi = config.object_size
    object_size = torch.randint(lo, hi + 1, (n,), generator=g)
    start = torch.randint(S, (n, 2), generator=g)  # uniform over the whole torus

    pos = trajectories(config, start, direction, speed)  # (B, T, 2)
    # The shape test depends only on (kind, box side, offset from the box corner), so it is
    # evaluated once per kind and side on the whole offset grid, and each pixel of each
    # frame looks up its own offset. Taking the offset modulo S is the wrap-around.
    sides = range(lo, hi + 1)
    templates = torch.stack([shape_mask(kind, k, S) for kind in config.shapes for k in sides])  # (K, S, S)
    template = shape * len(sides) + (object_size - lo)  # (B,): which template each clip uses
    grid = torch.arange(S)
    v = (grid - pos[..., 0:1]) % S  # (B, T, H): each row's offset from the box, wrapped
    u = (grid - pos[..., 1:2]) % S  # (B, T, W)
    rows = templates[template[:, None, None], v]  # (B, T, H, S): template row for each frame row
    mask = rows.gather(-1, u[:, :, None, :].expand(n, T, S, S))  # (B, T, H, W)

    table = RGB if C == 3 else {name: (level,) for name, level in GREY.items()}
    palette = torch.tensor([table[name] for name in config.colours], dtype=torch.float32)  # (n_colours, C)
    video = torch.empty(n, T, C, S, S)  # (B, T, C, H, W)
    if config.noise_std > 0:
        video.normal_(0.0, config.noise_std, generator=g)
    else:
        video.zero_()
    # in place, so no second full-size temporary: video += mask · colour
    video.addcmul_(mask[:, :, None], palette[colour][:, None, :, None, None])
    if config.noise_std > 0:
        video.clamp_(0.0, 1.0)

    labels = zip(direction.tolist(), shape.tolist(), colour.tolist(), speed.tolist())
    captions = [caption(d, sh, c, sp, config) for d, sh, c, sp in labels]
    return VideoBatch(video, direction, shape, colour, speed, captions, start, object_size, config)


def shuffle_frames(video: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A copy of ``video (B, T, ...)`` with the time axis permuted independently per clip.

    Each clip keeps the same frames, in a uniformly random order drawn from ``generator``.
    """
    if not isinstance(video, torch.Tensor) or video.ndim < 2:
        raise ValueError(f"video must be a tensor of shape (B, T, ...), got {getattr(video, 'shape', video)!r}")
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    B, T = video.shape[:2]
    perm = torch.rand(B, T, generator=generator).argsort(dim=1)  # (B, T): a random permutation per row
    return video[torch.arange(B)[:, None], perm]  # (B, T, ...)
