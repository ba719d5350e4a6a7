"""Trusted code on untrusted data runs in a bounded child: a hard CPU-time, clock and memory limit, a
crash that costs only that job, and several callers at once."""

import threading
import time

from vidlearn import bounded


def test_a_result_comes_back_as_json():
    v = bounded.run("math:factorial", 20, seconds=5)
    assert (v.status, v.value) == ("ok", 2432902008176640000)


def test_c_level_big_integer_work_is_stopped_by_the_cpu_limit():
    t = time.monotonic()
    v = bounded.run("builtins:pow", 3, 10**9, seconds=1)  # hours of exact arithmetic in C
    assert v.status == "timeout" and time.monotonic() - t < bounded.wall_limit(1) + 2, v


def test_memory_is_bounded():
    v = bounded.run("builtins:bytearray", 4 << 30, seconds=5, memory_mb=512)
    assert v.status == "memory", v


def test_a_crash_costs_only_that_job():
    v = bounded.run("os:_exit", 3, seconds=5)
    assert v.status == "crashed"
    assert bounded.run("math:sqrt", 16, seconds=5).value == 4.0


def test_callers_do_not_wait_for_each_other():
    out = {}

    def slow():
        out["slow"] = bounded.run("time:sleep", 3, seconds=5)

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.5)
    start = time.monotonic()
    assert bounded.run("math:sqrt", 4, seconds=5).value == 2.0
    assert time.monotonic() - start < 2.5  # not behind the sleeping job
    t.join()
    assert out["slow"].status == "ok"
