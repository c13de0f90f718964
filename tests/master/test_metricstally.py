"""The master's tally of its metrics (master/metricstally.py), pure."""

import pytest

from resqued.exits import EXIT_BOOT_ERROR, EXIT_OK, EXIT_RECYCLE_JOBS, EXIT_RECYCLE_MEMORY
from resqued.master.metricstally import BUCKETS, EXIT_REASONS, Histogram, Tally, exit_reason
from resqued.supervise.states import Exit


def test_a_histogram_counts_each_value_in_the_first_bucket_that_holds_it():
    h = Histogram()
    for value in (0.001, 0.005, 0.0051, 1, 600, 601, 1e9):
        h.observe(value)
    assert len(h.counts) == len(BUCKETS) + 1
    assert h.counts[0] == 2 and h.counts[1] == 1                  # <= .005, then <= .01
    assert h.counts[BUCKETS.index(1)] == 1 and h.counts[BUCKETS.index(600)] == 1
    assert h.counts[-1] == 2                                       # past every bound: +Inf
    assert h.total == pytest.approx(0.001 + 0.005 + 0.0051 + 1 + 600 + 601 + 1e9)
    h = Histogram()
    h.observe(float("nan"))    # json.loads lets NaN through: past every bound, not the first
    h.observe(float("inf"))
    assert h.counts[-1] == 2 and sum(h.counts) == 2


def test_the_tally_counts_outcomes_times_exits_and_reloads():
    t = Tally()
    t.add(["q", "Echo", "done", 0.02, 1.5])
    t.add(["q", "Echo", "done", 0.03, None])      # no queue_time: no wait
    t.add(["q", "Echo", "requeued", 30.0, 2.0])   # killed by a stop: no time either
    t.add(["r", "(unknown)", "failed", 0.0, 0.1])
    t.lost("q", "Echo")
    t.worker_exited("q", "recycled_jobs")
    t.worker_exited("q", "recycled_jobs")
    t.reloaded(ok=True)
    t.reloaded(ok=False)
    t.reloaded(ok=False)
    data = t.to_json()
    assert sorted(map(tuple, data["jobs"])) == [("q", "Echo", "done", 2), ("q", "Echo", "lost", 1),
                                                ("q", "Echo", "requeued", 1), ("r", "(unknown)", "failed", 1)]
    assert sum(data["durations"]["q"]["counts"]) == 2 and data["durations"]["q"]["sum"] == pytest.approx(0.05)
    assert sum(data["waits"]["q"]["counts"]) == 1 and data["waits"]["q"]["sum"] == 1.5
    assert data["exits"] == [["q", "recycled_jobs", 2]]
    assert data["reloads"] == {"ok": 1, "refused": 2}
    assert data["buckets"] == list(BUCKETS)


def test_every_pool_has_every_exit_reason_from_the_start():
    # A counter born at 1 shows no increase() for its first sample: an
    # alert on the first boot failure or memory recycle would not fire.
    t = Tally()
    t.worker_exited("q", "recycled_jobs")
    exits = {(pool, reason): count for pool, reason, count in t.to_json(["q", "r"])["exits"]}
    assert exits == {**{(pool, reason): 0 for pool in ("q", "r") for reason in EXIT_REASONS},
                     ("q", "recycled_jobs"): 1}


@pytest.mark.parametrize("verdict, code, mid_job, announced, reason", [
    (Exit.STOPPED, EXIT_OK, False, True, "stopped"),
    (Exit.RECYCLED, EXIT_RECYCLE_JOBS, False, True, "recycled_jobs"),
    (Exit.RECYCLED, EXIT_RECYCLE_MEMORY, False, True, "recycled_memory"),
    (Exit.BOOT_FAILURE, EXIT_BOOT_ERROR, False, True, "boot_failure"),
    (Exit.DIED, -9, True, False, "died_mid_job"),
    (Exit.DIED, -9, False, False, "crashed"),
    (Exit.DIED, EXIT_OK, False, True, "exited"),
])
def test_each_verdict_has_one_reason_of_a_fixed_set(verdict, code, mid_job, announced, reason):
    assert exit_reason(verdict, code, mid_job=mid_job, announced=announced) == reason
    assert reason in EXIT_REASONS
