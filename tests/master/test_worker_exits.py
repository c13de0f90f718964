"""How the master reads a worker's exit, run for real: a job running inside a
``fork: false`` worker can end the process with any exit code, which must not
pass for the worker's own (a boot error, a max_jobs recycle)."""

import pytest

from conftest import log_text, wait_until
from helpers import failures, wait_log
from resqued.exits import EXIT_BOOT_ERROR, EXIT_RECYCLE_JOBS

INLINE = "queues: [default]\ncount: 1\nfork: false"


def inflight_jobs(r):
    return sum(r.llen(key) for key in r.keys("resque:resqued:inflight:*"))


def busy_worker(m):
    """The master's status once its one worker reports a job."""
    return wait_until(lambda: [w for w in m.status()["workers"] if w["job"]], message="a worker shown busy")[0]


@pytest.mark.parametrize("code", [EXIT_BOOT_ERROR, EXIT_RECYCLE_JOBS])
def test_an_inline_job_that_exits_its_worker_is_settled_at_once_as_the_jobs_dirty_exit(master_factory, r, resque,
                                                                                       code):
    m = master_factory([INLINE], on_lost="fail")
    [worker] = m.wait_workers(1)
    job_id = resque.enqueue("default", "HardExit", {"code": code})
    # The master's recovery run settles it at once (here: failed as lost),
    # not a prune of the worker minutes later.
    [failure] = wait_until(lambda: failures(r), timeout=15, message="the job settled as lost")
    assert failure["exception"] == "resqued.LostJob" and failure["payload"]["id"] == job_id
    assert inflight_jobs(r) == 0
    wait_until(lambda: (ws := m.workers()) and ws[0] != worker, message="the worker replaced")
    [pool] = m.status()["pools"]
    # A job's dirty exit: neither a boot failure (no backoff, never FAILED) nor a recycle.
    assert (pool["restarts"], pool["recycles"], pool["failed"]) == (1, 0, False)
    log = log_text(m.proc)
    assert f"worker {worker} (default) died (exit code {code}) running job {job_id} (HardExit)" in log
    assert "died at boot" not in log and "recycled" not in log
    # The worker reports the job it runs (as a forking one does), the job
    # the master names if it dies.
    resque.enqueue("default", "Slow")
    wait_log(r, "started:")
    assert busy_worker(m)["job"]["class"] == "Slow"
    r.rpush("test:release", 1)
