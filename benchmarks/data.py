"""Clips per second of ``vidlearn.data.generate`` on the CPU.

For each batch size, ``generate(config, n, seed)`` is called twice as warm-up, then
``--repeats`` times with fresh seeds, each call timed with ``time.perf_counter``; the
table shows the median time per call and the clips per second it gives. The config is
the default one (8 frames of 3×32×32, noise std 0.05) unless changed with the options.

Most of the time goes to the pixel noise (torch draws normal variates from one generator
serially, for determinism) and to writing the float32 output: 8·3·32·32·4 bytes = 96 KiB
per clip. ``--noise 0`` shows the cost of rendering alone.

Run::

    python benchmarks/data.py
    python benchmarks/data.py --batch 64 256 1024 4096 --repeats 7
    python benchmarks/data.py --threads 1

On a small or shared machine, compare with ``--threads 1``: at small batches, waking a
second intra-op thread can cost more than the work it takes over. On a small virtual
machine the timings can also depend on what ran before (memory freed by a large batch
can be slow to touch again), so compare rows from the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from vidlearn.data import MovingShapesConfig, generate


def time_generate(config: MovingShapesConfig, n: int, repeats: int, warmup: int = 2) -> float:
    """Median seconds per ``generate(config, n, seed)`` call over ``repeats`` seeds, after ``warmup`` calls."""
    for seed in range(warmup):
        generate(config, n, seed=seed)
    samples = []
    for seed in range(warmup, warmup + repeats):
        start = time.perf_counter()
        generate(config, n, seed=seed)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 256, 1024, 4096], help="clips per call")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per batch size (median reported)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--noise", type=float, default=MovingShapesConfig.noise_std, help="noise std")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (default: leave torch's choice)"
    )
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    config = MovingShapesConfig(n_frames=args.frames, size=args.size, channels=args.channels, noise_std=args.noise)

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; clips of "
        f"T={config.n_frames}, C={config.channels}, H=W={config.size}, noise std {config.noise_std}; "
        f"median of {args.repeats} repeats"
    )
    header = f"{'batch':>6} | {'ms/call':>9} | {'clips/s':>9} | {'MiB/s':>7}"
    print(header)
    print("-" * len(header))
    clip_bytes = 4 * config.n_frames * config.channels * config.size**2
    for n in args.batch:
        seconds = time_generate(config, n, args.repeats)
        print(f"{n:>6} | {seconds * 1e3:>9.1f} | {n / seconds:>9.0f} | {n * clip_bytes / seconds / 2**20:>7.0f}")


if __name__ == "__main__":
    main()
