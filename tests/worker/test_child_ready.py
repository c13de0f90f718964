"""childReady listeners (worker/execution/childready.py): the app's warm-up
of each job child, run in the standby before its job is known; with the job
forker, without it, on demand and inline; what a failing one does; and
resqued's own client, connected in the standby (jobs/ownclient.py)."""

import os
import time

import pytest

from conftest import HERE, JOBS_FILE, log_text, stop, wait_until
from helpers import log_entries, title, wait_log, wait_registered
from resqued.jobs import events
from resqued.worker.execution import childready

READY_JOBS = os.path.join(HERE, "readyjobs.py")
MODES = {"job forker": {},
         "worker forks": {"JOB_FORKER": "false"},
         "inline": {"FORK_PER_JOB": "false"}}


def entries(r, prefix):
    return [e.split(":") for e in log_entries(r) if e.startswith(prefix + ":")]


@pytest.mark.parametrize("mode", MODES)
def test_the_listener_runs_before_the_job_is_pushed_and_the_job_uses_what_it_opened(procs, redis_url, r,
                                                                                    resque, mode):
    proc = procs.resqued(redis_url, extra_env={"APP_INCLUDE": f"{JOBS_FILE},{READY_JOBS}", **MODES[mode]})
    wait_registered(r, proc)
    [(_, ready_pid, ready_at)] = wait_log(r, "ready:") and entries(r, "ready")
    pushed_at = time.time()
    resque.enqueue_call("default", "uses_warm")
    resque.enqueue_call("default", "uses_warm")
    wait_log(r, "job:", 2)
    jobs = entries(r, "job")
    assert float(ready_at) < pushed_at
    assert jobs[0][1] == ready_pid   # the process that ran the listener ran the job, with its client
    readies = [pid for _, pid, _ in entries(r, "ready")]
    if mode == "inline":
        assert readies == [str(proc.pid)] and jobs[1][1] == ready_pid   # once per worker
    else:
        assert jobs[1][1] in readies[1:] and jobs[1][1] != ready_pid   # each child its own
    assert stop(proc) == 0


def test_a_child_forked_on_demand_runs_it_before_its_job(procs, redis_url, r, resque):
    hooks = os.path.join(HERE, "hookjobs.py")   # a beforeFork listener: children forked on demand
    proc = procs.resqued(redis_url, extra_env={"APP_INCLUDE": f"{JOBS_FILE},{READY_JOBS},{hooks}"})
    wait_registered(r, proc)
    resque.enqueue_call("default", "uses_warm")
    [(_, job_pid, _)] = wait_log(r, "job:") and entries(r, "job")
    assert [pid for _, pid, _ in entries(r, "ready")] == [job_pid]
    assert stop(proc) == 0


@pytest.mark.parametrize("mode", ["job forker", "inline"])
def test_a_failing_listener_is_logged_once_and_no_job_is_taken(procs, redis_url, r, resque, mode):
    proc = procs.resqued(redis_url, extra_env={"APP_INCLUDE": f"{JOBS_FILE},{READY_JOBS}", "READY_FAIL": "1",
                                               **MODES[mode]})
    wait_registered(r, proc)
    resque.enqueue_call("default", "uses_warm")
    line = "ConnectionRefusedError: database at db.invalid:5432 refused the connection (at "
    wait_until(lambda: line in log_text(proc), message="the failure logged")
    wait_until(lambda: "Waiting: childReady listeners failed 3 time" in title(proc.pid), timeout=10,
               message="three attempts")
    assert log_text(proc).count(line) == 1   # once a minute, not once per attempt
    assert "readyjobs.py" in log_text(proc)   # where it was raised
    assert proc.poll() is None and r.llen("resque:queue:default") == 1   # the job waits in its queue
    assert r.get("resque:stat:failed") is None
    assert stop(proc) == 0


def test_jobs_taken_while_it_starts_failing_go_back_to_their_queue_and_run_once_it_succeeds(procs, redis_url, r,
                                                                                            resque, tmp_path):
    fail = tmp_path / "fail"
    proc = procs.resqued(redis_url, extra_env={"APP_INCLUDE": f"{JOBS_FILE},{READY_JOBS}",
                                               "READY_FAIL_FILE": str(fail)})
    wait_registered(r, proc)
    wait_log(r, "ready:")   # this standby is ready; the next ones fail
    fail.touch()
    for _ in range(4):
        resque.enqueue_call("default", "uses_warm")
    wait_until(lambda: "listeners failed 2 time" in title(proc.pid), message="two failures")
    assert r.get("resque:stat:processed") == b"1" and r.llen("resque:queue:default") == 3   # the taken one went back
    fail.unlink()
    wait_until(lambda: r.get("resque:stat:processed") == b"4", message="the jobs, once it succeeds")
    assert r.get("resque:stat:failed") is None
    assert "childReady listeners succeeded after" in log_text(proc)
    assert stop(proc) == 0


def test_a_jobs_enqueue_uses_the_connection_opened_in_its_standby(procs, redis_url, r, resque):
    proc = procs.resqued(redis_url, extra_env={"APP_INCLUDE": f"{JOBS_FILE},{READY_JOBS}"})
    wait_registered(r, proc)
    resque.enqueue_call("default", "fan_out", 3)
    [(_, _, opened)] = wait_log(r, "fanned:") and entries(r, "fanned")
    assert opened == "opened=0"
    assert r.llen("resque:queue:fanned") == 3
    assert stop(proc) == 0


def test_failures_are_logged_once_a_minute_with_a_growing_delay(caplog):
    failures = childready.Failures("w1")
    delays = [failures.failed(f"job child {10 + i}", "ValueError: boom") for i in range(8)]
    assert delays == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert [r.getMessage() for r in caplog.records].count(
        "worker w1: childReady listener failed in job child 10: ValueError: boom; no job is taken until they "
        "succeed (next try in 0.25s)") == 1
    assert len(caplog.records) == 1
    failures.logged_at -= childready.LOG_EVERY
    failures.failed("job child 20", "ValueError: boom")
    assert "7 more failure(s) since the last line" in caplog.records[-1].getMessage()
    failures.succeeded()
    assert "succeeded after 9 failure(s)" in caplog.records[-1].getMessage()
    assert failures.failed("the worker", "x") == 0.25


def test_listen_is_a_decorator_too():
    try:
        @events.listen("child_ready")
        def warm():
            pass
        assert events.has_listeners("childReady") and warm.__name__ == "warm"
    finally:
        events.clear_listeners()
