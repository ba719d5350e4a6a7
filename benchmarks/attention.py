"""Time and peak memory of three ways to compute attention on the CPU.

What it compares, for q, k, v of shape ``(B, h, N, d/h)`` in float32:

* ``scratch``: ``vidlearn.attention.scaled_dot_product_attention(..., fast=False)``, the
  from-scratch path that materialises the ``(B, h, N, N)`` logits and weights;
* ``fast``: the same function with ``fast=True``, i.e. the course wrapper (input checks)
  around torch's fused kernel;
* ``torch``: ``torch.nn.functional.scaled_dot_product_attention`` called directly.

Time: each path is run a few times as warm-up, then ``--repeats`` measurements are
taken with ``time.perf_counter``; one measurement times a loop of enough calls to last
at least about a millisecond (so the timer's resolution does not matter at small N) and
is divided by the number of calls. The table shows the median over the repeats.

Peak memory: one extra call per path runs under ``torch.profiler`` with
``profile_memory=True``. The profiler records every allocation and free made by torch's
CPU allocator, with its size and timestamp; the script sorts those records by time and
reports the largest running total. That is the peak of *extra* tensor memory held during
the call (the output included, the inputs excluded, since they were allocated before).
It is exact for tensor memory and deterministic, unlike the process RSS, which also moves
with the allocator's caching and the OS; it does not see memory that is not allocated
through torch's allocator (e.g. a kernel's stack). ``tracemalloc`` would not help: it only
sees Python's own allocator, not torch's.

The last column is the time ratio fast / torch: the cost of the wrapper's checks, which
should be close to 1 except at tiny sizes, where a fixed overhead per call shows.

Run::

    python benchmarks/attention.py
    python benchmarks/attention.py --tokens 16 64 256 1024 --d 64 --heads 8 --batch 4 --repeats 10
    python benchmarks/attention.py --threads 1

On a small or shared machine, compare with ``--threads 1``: waking a second intra-op
thread can cost more than a small attention call itself, and the timings then show a
floor (several ms) that belongs to the thread pool, not to the kernels.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from vidlearn.attention import scaled_dot_product_attention

MIB = 2**20


def time_call(fn: Callable[[], object], repeats: int, warmup: int = 3, min_seconds: float = 1e-3) -> float:
    """Median seconds per call of ``fn`` over ``repeats`` measurements, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    fn()
    one = max(time.perf_counter() - start, 1e-7)
    number = max(1, int(min_seconds / one))  # calls per measurement
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number)
    return statistics.median(samples)


def peak_memory(fn: Callable[[], object]) -> int:
    """Peak bytes held by torch's CPU allocator during one call, above the level before it."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = fn()
        del out  # the output's free is recorded too; the peak still counts it
    # every allocation (+bytes) and free (-bytes), each with a timestamp
    records = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    records.sort(key=lambda e: e.start_ns())
    live = peak = 0
    for e in records:
        live += e.nbytes()
        peak = max(peak, live)
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[16, 64, 256, 1024], help="sequence lengths N")
    parser.add_argument("--d", type=int, default=64, help="model width (split across heads)")
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=10, help="timed measurements per path (median reported)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (default: leave torch's choice)"
    )
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.d % args.heads:
        parser.error(f"--d {args.d} is not divisible by --heads {args.heads}")
    e = args.d // args.heads

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; float32, "
        f"q/k/v shape (B={args.batch}, h={args.heads}, N, d/h={e}); "
        f"median of {args.repeats} repeats"
    )
    header = (
        f"{'N':>6} | {'scratch ms':>10} {'fast ms':>9} {'torch ms':>9} | "
        f"{'scratch MiB':>11} {'fast MiB':>9} {'torch MiB':>9} | {'fast/torch':>10}"
    )
    print(header)
    print("-" * len(header))

    g = torch.Generator().manual_seed(args.seed)
    for n in args.tokens:
        q, k, v = (torch.randn(args.batch, args.heads, n, e, generator=g) for _ in range(3))
        paths = {
            "scratch": lambda: scaled_dot_product_attention(q, k, v, fast=False),
            "fast": lambda: scaled_dot_product_attention(q, k, v, fast=True),
            "torch": lambda: F.scaled_dot_product_attention(q, k, v),
        }
        # the three must agree, or the timings compare different things
        ref = paths["torch"]()
        for name in ("scratch", "fast"):
            err = (paths[name]() - ref).abs().max().item()
            if err > 1e-4:
                raise RuntimeError(f"{name} differs from torch by {err:.2e} at N={n}")

        with torch.inference_mode():
            times = {name: time_call(fn, args.repeats) for name, fn in paths.items()}
            mem = {name: peak_memory(fn) for name, fn in paths.items()}
        print(
            f"{n:>6} | {times['scratch'] * 1e3:>10.3f} {times['fast'] * 1e3:>9.3f} {times['torch'] * 1e3:>9.3f} | "
            f"{mem['scratch'] / MIB:>11.2f} {mem['fast'] / MIB:>9.2f} {mem['torch'] / MIB:>9.2f} | "
            f"{times['fast'] / times['torch']:>10.2f}"
        )


if __name__ == "__main__":
    main()
