"""Fair under load: an honest submission scores the same, in about the same time, alone and beside a
neighbour that forks sixty busy processes, each in a session of its own, with ``--jobs 2`` on this
machine's cores: with a cgroup per sandbox (as root), and with the throttle that stands in for one
where cgroups cannot be made (a teacher's own account)."""

from __future__ import annotations

import pytest

from conftest import FULL, KEY, install, require_bwrap, scores
from vidlearn.grading.gradebook import grade_submissions
from vidlearn.grading.sandbox import Limits

LIMITS = Limits(timeout=30, memory_mb=1024)


@pytest.mark.parametrize("share", ["cgroup", "throttle"])
def test_an_honest_submission_does_not_notice_a_cpu_starver(teacher_dir, monkeypatch, share):
    require_bwrap()
    if share == "throttle":
        monkeypatch.setenv("VIDLEARN_NO_CGROUPS", "1")
    else:
        from vidlearn.grading.resources import make_cgroup

        probe = make_cgroup(1.0, 256, 8)
        if probe is None:
            pytest.fail("this test runs as root, where cgroups can be made; here they cannot")
        probe.remove()
    honest = install("ex01_honest.py", teacher_dir)
    starver = install("ex01_cpu_starver.py", teacher_dir)
    alone = grade_submissions([honest], limits=LIMITS, key=KEY)[0]
    beside = grade_submissions([starver, honest], limits=LIMITS, jobs=2, key=KEY)
    assert scores(alone) == FULL
    assert scores(beside[1]) == FULL, [o.feedback for o in beside[1].outcomes]
    assert scores(beside[0]) == FULL, [o.feedback for o in beside[0].outcomes]  # the starver's own honest answers
    # the neighbour's sixty processes share one CPU: the honest one keeps the other
    assert beside[1].seconds < 1.5 * alone.seconds + 1.5, (alone.seconds, beside[1].seconds)
