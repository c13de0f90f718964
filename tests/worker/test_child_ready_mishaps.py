"""childReady listeners (worker/execution/childready.py) that misbehave
after the worker started: a job forker killed while they start failing,
listeners that hang, write much, exit, or fail now and then; and a worker
whose table of listeners is not its standbys'."""

import os
import signal
import time

import psutil
import pytest

from conftest import HERE, JOBS_FILE, log_text, stop, wait_until
from helpers import pid_gone, title, wait_log, wait_registered
from resqued.worker.execution import childready
from test_child_ready import READY_JOBS
from test_forking import forkers

APP = f"{JOBS_FILE},{READY_JOBS}"


def kill_forker_and_standby(proc):
    """SIGKILL the worker's job forker; its ready standby dies with it."""
    [forker] = forkers(proc.pid)
    [standby] = psutil.Process(forker).children()
    os.kill(forker, signal.SIGKILL)
    wait_until(lambda: pid_gone(standby.pid), message="the standby gone with its forker")


def test_a_job_goes_back_to_its_queue_not_to_a_standby_that_has_not_said_ready(procs, redis_url, r, resque,
                                                                               tmp_path):
    fail = tmp_path / "fail"
    proc = procs.resqued(redis_url, extra_env={"APP_INCLUDE": APP, "READY_FAIL_FILE": str(fail)})
    wait_registered(r, proc)
    wait_log(r, "ready:")   # a ready standby, which dies with its forker
    fail.touch()
    kill_forker_and_standby(proc)
    resque.enqueue_call("default", "uses_warm")
    wait_until(lambda: "listeners failed 2 time" in title(proc.pid), message="two failures")
    assert r.get("resque:stat:failed") is None and r.llen("resque:queue:default") == 1
    fail.unlink()
    wait_until(lambda: r.get("resque:stat:processed") == b"1", message="the job, once they succeed")
    assert r.get("resque:stat:failed") is None
    assert stop(proc) == 0


def test_a_stop_is_not_held_up_by_a_slow_listener_and_the_job_goes_back(procs, redis_url, r, resque, tmp_path):
    slow = tmp_path / "slow"
    proc = procs.resqued(redis_url, extra_env={"APP_INCLUDE": APP, "READY_SLOW_FILE": str(slow)})
    wait_registered(r, proc)
    wait_log(r, "ready:")
    slow.write_text("20")
    kill_forker_and_standby(proc)
    resque.enqueue_call("default", "uses_warm")
    wait_until(lambda: "Waiting: childReady listeners of job child" in title(proc.pid), message="waiting")
    started = time.monotonic()
    assert stop(proc, timeout=5) == 0
    assert time.monotonic() - started < 3
    assert r.llen("resque:queue:default") == 1 and r.get("resque:stat:failed") is None


def test_a_hung_listener_is_killed_after_child_ready_timeout_and_what_it_wrote_is_logged(procs, redis_url, r,
                                                                                        resque, tmp_path):
    slow = tmp_path / "slow"
    slow.write_text("30")
    proc = procs.resqued(redis_url, extra_env={"APP_INCLUDE": APP, "READY_SLOW_FILE": str(slow),
                                               "RESQUED_CHILD_READY_TIMEOUT": "0.3"})
    wait_registered(r, proc)
    resque.enqueue_call("default", "uses_warm")
    wait_until(lambda: "Waiting: childReady listeners of job child" in title(proc.pid), message="its title")
    wait_until(lambda: "its childReady listeners did not finish in 0.3s (killed)" in log_text(proc),
               message="the timeout")
    assert "warming up slowly in" in log_text(proc)   # the killed standby's line
    slow.unlink()
    wait_until(lambda: r.get("resque:stat:processed") == b"1", message="the job, once they finish in time")
    assert stop(proc) == 0


def test_a_listener_that_writes_more_than_a_pipe_holds_does_not_stop_the_worker(procs, redis_url, r, resque):
    proc = procs.resqued(redis_url, extra_env={"APP_INCLUDE": APP, "READY_PRINT": "200000"})
    wait_registered(r, proc)
    resque.enqueue_call("default", "uses_warm")
    wait_until(lambda: r.get("resque:stat:processed") == b"1", message="the job")
    assert stop(proc) == 0


def test_no_busy_loop_while_redis_refuses_the_heartbeat_and_a_listener_runs(procs, redis_url, r, resque,
                                                                            tmp_path):
    slow = tmp_path / "slow"
    proc = procs.resqued(redis_url, extra_env={"APP_INCLUDE": APP, "READY_SLOW_FILE": str(slow),
                                               "RESQUED_HEARTBEAT_INTERVAL": "1"})
    wait_registered(r, proc)
    wait_log(r, "ready:")
    slow.write_text("4")   # the next standby's
    resque.enqueue_call("default", "uses_warm")
    wait_until(lambda: r.get("resque:stat:processed") == b"1", message="the job recorded")
    worker = psutil.Process(proc.pid)
    try:
        r.config_set("maxmemory", 1)   # heartbeats refused (OOM): once due, due again at once
        time.sleep(1.0)   # the heartbeat falls due
        before = sum(worker.cpu_times()[:2])
        time.sleep(1.0)   # a measure: the CPU the worker uses meanwhile
        used = sum(worker.cpu_times()[:2]) - before
    finally:
        r.config_set("maxmemory", 0)
    assert used < 0.1   # (spinning, it took 0.3 s: each turn a refused heartbeat round trip)
    assert stop(proc) == 0


@pytest.mark.parametrize("mode", [{}, {"FORK_PER_JOB": "false"}], ids=["forking", "inline"])
def test_a_listener_calling_sys_exit_makes_the_worker_wait_not_stop(procs, redis_url, r, resque, tmp_path, mode):
    exits = tmp_path / "exit"
    exits.touch()
    proc = procs.resqued(redis_url, extra_env={"APP_INCLUDE": APP, "READY_EXIT_FILE": str(exits), **mode})
    wait_registered(r, proc)
    resque.enqueue_call("default", "uses_warm")
    wait_until(lambda: "listeners failed 2 time" in title(proc.pid), message="two failures")
    assert proc.poll() is None and r.llen("resque:queue:default") == 1
    assert "SystemExit: 3" in log_text(proc)
    exits.unlink()
    wait_until(lambda: r.get("resque:stat:processed") == b"1", message="the job, once they succeed")
    assert stop(proc) == 0


def test_listeners_failing_now_and_then_log_once_a_minute(caplog):
    failures = childready.Failures("w1")
    for _ in range(3):
        failures.failed("job child 10", "ValueError: boom")
        failures.succeeded()
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2, messages   # the first failure, and the recovery from it
    assert "failed in job child 10" in messages[0] and "succeeded after 1 failure(s)" in messages[1]
    failures.logged_at -= childready.LOG_EVERY
    failures.failed("job child 11", "ValueError: boom")
    assert "2 more failure(s) since the last line" in caplog.records[-1].getMessage()


def test_a_worker_whose_listeners_are_not_its_standbys_still_takes_jobs(procs, redis_url, r, resque):
    # The dirty exit's onFailure runs in the worker and registers a childReady
    # listener there, after its job forker was forked: the worker's table
    # has one, its standbys (the forker's children) have none.
    proc = procs.resqued(redis_url, extra_env={"APP_INCLUDE": f"{JOBS_FILE},{os.path.join(HERE, 'latelisten.py')}"})
    wait_registered(r, proc)
    resque.enqueue_call("default", "dies_and_listens")
    wait_until(lambda: r.get("resque:stat:failed") == b"1", message="the dirty exit")
    resque.enqueue_call("default", "after_listen")
    wait_until(lambda: r.get("resque:stat:processed") == b"2", message="the next job")
    assert stop(proc) == 0
