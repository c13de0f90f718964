"""Resque's global pause switch, ``resque:pause-all-workers`` (resque-web's
"pause all"): Ruby checks it before every reserve, so a job pushed after the
switch is set is never taken. A resqued worker may already be in its
blocking wait (or take its next job with the last one's outcome) when the
switch is set; the job must still not run, and stays at its queue."""

import pytest

from conftest import stop, wait_until
from helpers import log_entries, no_inflight, queue_tags, title, wait_log, wait_registered
from resqued.process.title import PREFIX

PAUSE_KEY = "resque:pause-all-workers"


@pytest.mark.parametrize("queues", ["default", "high,default"])
def test_a_job_pushed_during_the_blocking_wait_after_the_switch_is_not_run(procs, redis_url, r, resque, queues):
    # INTERVAL 5: the worker sits in its blocking wait (BLMOVE) for 5 s.
    proc = procs.resqued(redis_url, queue=queues, extra_env={"INTERVAL": "5"})
    wait_registered(r, proc, queues)
    # Past its check of the switch, on its way into (or in) the wait.
    wait_until(lambda: title(proc.pid) == f"{PREFIX}: Waiting for {queues}", message="the blocking wait")
    r.set(PAUSE_KEY, "true")
    resque.enqueue("default", "PhpJob", {"tag": "after-pause"})
    wait_until(lambda: title(proc.pid) == f"{PREFIX}: Paused", message="the worker paused")
    assert log_entries(r) == []
    assert queue_tags(r) == ["after-pause"] and no_inflight(r)
    assert r.get("resque:stat:processed") is None
    r.delete(PAUSE_KEY)
    wait_log(r, "perform:after-pause")
    stop(proc)


@pytest.mark.parametrize("fork", ["true", "false"])
def test_a_job_taken_with_an_outcome_after_the_switch_is_not_run(procs, redis_url, r, resque, fork):
    # PausesAll sets the switch at once, well within a second of the worker's
    # last look at it; the next job is taken in the transaction that records
    # PausesAll's outcome, after the switch was set.
    resque.enqueue("default", "PausesAll", {"seconds": 0})
    resque.enqueue("default", "PhpJob", {"tag": "next"})
    proc = procs.resqued(redis_url, extra_env={"FORK_PER_JOB": fork})
    worker = wait_registered(r, proc)
    wait_until(lambda: title(proc.pid) == f"{PREFIX}: Paused", message="the worker paused")
    assert log_entries(r) == ["paused-all"]
    assert queue_tags(r) == ["next"] and no_inflight(r)
    assert not r.exists(f"resque:worker:{worker}")   # its take said it ran "next": no more
    r.delete(PAUSE_KEY)
    wait_log(r, "perform:next")
    stop(proc)


def test_a_switch_that_is_not_true_pauses_nothing(procs, redis_url, r, resque):
    r.set(PAUSE_KEY, "false")
    proc = procs.resqued(redis_url, extra_env={"INTERVAL": "5"})
    wait_registered(r, proc)
    wait_until(lambda: title(proc.pid) == f"{PREFIX}: Waiting for default", message="the blocking wait")
    resque.enqueue("default", "PhpJob", {"tag": "runs"})
    wait_log(r, "perform:runs")
    stop(proc)
