"""The memory figure the recycler, resquectl status and the logs share: the
PSS of a worker and its job forker, standby and job child. It measures what
grows, not the pages the four share: a no-op job never trips max_memory set
at 1.5x an idle worker's figure; a job that holds 100 MiB raises it by that,
and recycles its worker."""

import statistics

from conftest import log_text, stop, wait_until
from helpers import failures, wait_log
from masters import write_config

HOG = 100 * 1024 * 1024     # what the Hog job holds (tests/jobs.py), in bytes


def worker_memory(m, pid):
    [entry] = [w for w in m.status()["workers"] if w["pid"] == pid]
    return entry["memory"]


def test_max_memory_measures_what_grows(master_factory, r, resque, redis_url):
    m = master_factory(["queues: [default]\ncount: 1"])
    [worker] = m.wait_workers(1)
    resque.enqueue("default", "Sleeper", {"seconds": 0})   # forker and standby up, job path warm
    wait_log(r, "slept")
    idle = statistics.median(worker_memory(m, worker) for _ in range(3))
    assert 5e6 < idle < 100e6, idle

    limit = int(idle * 1.5)
    write_config(m.config, redis_url, [f"queues: [default]\ncount: 1\nmax_memory: {limit}"])
    result = m.ctl("reload")
    assert result.returncode == 0, result.stderr
    [worker] = wait_until(lambda: (ws := m.workers()) and worker not in ws and ws, message="the new pool's worker")

    # No-op jobs that outlast a mid-job memory check (every second): no recycle.
    for n in range(3):
        resque.enqueue("default", "Sleeper", {"seconds": 1.5})
    wait_log(r, "slept", 4, timeout=30)
    assert m.workers() == [worker] and "over max_memory" not in log_text(m.proc)

    resque.enqueue("default", "Hog", {"mb": 100, "seconds": 30})
    wait_log(r, "hogging")
    grown = wait_until(lambda: (mem := worker_memory(m, worker)) - idle > 0.85 * HOG and mem - idle,
                       message="the figure to take in the job's 100 MiB")
    assert grown < 1.15 * HOG, (grown, HOG)
    # The worker's own check (every second during a job) sees the same figure.
    wait_until(lambda: "over max_memory" in log_text(m.proc), message="the worker's memory check")
    r.rpush("test:release", 1)
    wait_log(r, "hog-done")
    wait_until(lambda: (ws := m.workers()) and worker not in ws, message="the worker recycled after the job")
    log = log_text(m.proc)
    assert "over max_memory" in log and "recycled over max_memory" in log
    assert failures(r) == []
    assert stop(m.proc) == 0
