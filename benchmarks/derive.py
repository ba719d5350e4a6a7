"""Time of ``Derivation.check()`` over the course's derivations and over the checker's trap suite.

Each check runs as the chapter's or a student's would, with the default settings (10 s a step, 30
random points): a course derivation in this process (trusted code: ``derivations.get`` turns the
fork off, so sympy's caches stay warm, as in a chapter), a trap in its bounded child (fork, time and
memory limits). The first table lists every course derivation with its steps, how each step was
verified and the time of one check, in registry order after one warm-up check; the second
summarises the trap suite of ``tests/test_derive_traps.py`` by kind (false steps that must be
rejected, true ones that must be accepted, hostile strings that must end within the bound) and
counts any verdict that is not the expected one.

Run::

    python benchmarks/derive.py              # both tables
    python benchmarks/derive.py --course     # the course's derivations only
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from vidlearn import derivations
from vidlearn.derive import Derivation


def timed_check(d: Derivation):
    t = time.perf_counter()
    r = d.check()
    return r, time.perf_counter() - t


def course_table() -> list[float]:
    print(f"{'derivation':42} {'steps':>5} {'verified as':28} {'seconds':>8}")
    times = []
    derivations.get(sorted(derivations.REGISTRY)[0]).check()  # warm-up: sympy's first calls import and cache
    for name in sorted(derivations.REGISTRY):
        r, s = timed_check(derivations.get(name))
        methods = Counter(step.method for step in r.steps)
        how = ", ".join(f"{n} {m}" for m, n in sorted(methods.items()))
        flag = "" if r.ok else "  << FAILS"
        print(f"{name:42} {len(r.steps):>5} {how:28} {s:8.3f}{flag}")
        times.append(s)
    print(f"{len(times)} derivations: median {statistics.median(times):.3f} s, max {max(times):.3f} s, "
          f"total {sum(times):.1f} s\n")
    return times


def suite_table() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests import test_derive_traps as traps

    kinds = {
        "false (must be rejected)": [(Derivation(a, asm).step(b, "false"), False) for a, b, asm in traps.FALSE_STEPS],
        "true (must be accepted)": [(Derivation(a, asm).step(b, "true"), True) for a, b, asm in traps.TRUE_STEPS],
        "hostile (must end in the bound)": [(Derivation("x", step_seconds=3).step(h, "hostile"), None)
                                            for h in traps.HOSTILE],
    }
    print(f"{'trap suite':34} {'cases':>5} {'median s':>9} {'max s':>7} {'wrong verdicts':>15}")
    for kind, cases in kinds.items():
        times, wrong = [], 0
        for d, expected in cases:
            r, s = timed_check(d)
            times.append(s)
            if expected is False and r.ok or expected is True and not r.ok:
                wrong += 1
            if expected is None and r.ok and r.steps[0].method != "symbolic":
                wrong += 1
        print(f"{kind:34} {len(cases):>5} {statistics.median(times):9.3f} {max(times):7.2f} {wrong:>15}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--course", action="store_true", help="only the course's derivations")
    args = parser.parse_args()
    course_table()
    if not args.course:
        suite_table()


if __name__ == "__main__":
    main()
