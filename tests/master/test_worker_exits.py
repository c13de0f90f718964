"""How the master reads a worker's exit, run for real: a job running inside a
``fork: false`` worker can end the process with any exit code, which must not
pass for the worker's own (a boot error, a max_jobs recycle); and what
`resquectl status` and `pause` say of a worker that still runs a job."""

import json
import os
import signal
import subprocess
import sys

import pytest

from conftest import ROOT, log_text, wait_until
from helpers import failures, log_entries, wait_log
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


def test_status_shows_the_job_a_paused_or_stopping_worker_runs_and_pause_wait_waits_for_it(master_factory, r,
                                                                                           resque):
    m = master_factory(["queues: [default]\ncount: 1"])
    [worker] = m.wait_workers(1)
    job_id = resque.enqueue("default", "Slow", {"seconds": 60})
    wait_log(r, "started:")
    busy_worker(m)
    paused = m.ctl("pause", "--json")
    assert paused.returncode == 0, paused.stderr
    answer = json.loads(paused.stdout)
    [shown] = answer["workers"]
    assert (shown["state"], shown["paused"], shown["job"]["id"]) == ("busy", True, job_id)
    assert answer["message"] == "1 worker paused; 1 worker still running a job (pause --wait waits for it)"
    # --wait gives the job at most its seconds, then fails; the worker stays paused.
    bad = m.ctl("pause", "--wait", "0")
    assert bad.returncode == 2 and "must be above 0 seconds" in bad.stderr
    late = m.ctl("pause", "--wait", "0.5")
    assert late.returncode == 1 and late.stderr.count("\n") == 1
    assert "1 worker still running a job" in late.stderr
    waiting = subprocess.Popen([sys.executable, "-m", "resqued.ctl", "-c", str(m.config), "pause", "--wait", "30"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                               env={**os.environ, "PYTHONPATH": ROOT})
    try:
        r.rpush("test:release", 1)
        out, err = waiting.communicate(timeout=30)
    finally:
        waiting.kill()
        waiting.wait()
    assert waiting.returncode == 0, err
    assert out == "1 worker paused, no job running\n"
    assert any(e.startswith("finished:") for e in log_entries(r))

    # Told to stop, it still shows the job it finishes first.
    m.ctl("resume")
    job_id = resque.enqueue("default", "Slow", {"seconds": 60})
    wait_log(r, "started:", 2)
    busy_worker(m)
    m.proc.send_signal(signal.SIGQUIT)
    stopping = wait_until(lambda: (w := m.status()["workers"]) and w[0]["state"] == "stopping" and w[0],
                          message="the worker shown stopping")
    assert stopping["pid"] == worker and stopping["job"]["id"] == job_id and stopping["since"]
    assert "Slow" in m.ctl("status").stdout
    r.rpush("test:release", 1)
    assert m.proc.wait(20) == 0
