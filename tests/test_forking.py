"""How job children are made: a standby forked ahead of time (fork off the
critical path, still a fresh child per job), on-demand forks when beforeFork
listeners exist, and the opt-in inline mode (FORK_PER_JOB=false)."""

import os
import signal

from conftest import HERE, stop, wait_until
from helpers import failures, log_entries, title, wait_log, wait_registered
from resqued.proctitle import PREFIX


def standby_children(pid):
    import psutil
    try:
        return [c.pid for c in psutil.Process(pid).children() if title(c.pid) == f"{PREFIX}: Standby for default"]
    except psutil.NoSuchProcess:
        return []


def test_a_standby_child_waits_and_each_job_gets_a_fresh_one(procs, redis_url, r, resque):
    proc = procs.resqued(redis_url)
    wait_registered(r, proc)
    [first] = wait_until(lambda: standby_children(proc.pid), message="a standby child")
    resque.enqueue("default", "Slow")
    child = int(wait_log(r, "started:")[0].split(":")[1])
    assert child == first  # the standby ran the job...
    [second] = wait_until(lambda: standby_children(proc.pid), message="the next standby")
    assert second != first  # ...and a new one is ready while it runs
    r.rpush("test:release", 1)
    wait_until(lambda: r.get("resque:stat:processed") == b"1")
    resque.enqueue("default", "Slow")
    assert int(wait_log(r, "started:", 2)[1].split(":")[1]) == second
    r.rpush("test:release", 1)
    assert stop(proc) == 0
    assert not standby_children(proc.pid)


def test_standby_dies_with_its_worker(procs, redis_url, r):
    proc = procs.resqued(redis_url)
    wait_registered(r, proc)
    [standby] = wait_until(lambda: standby_children(proc.pid))
    proc.kill()
    proc.wait(10)
    import psutil
    wait_until(lambda: not psutil.pid_exists(standby) or psutil.Process(standby).status() == psutil.STATUS_ZOMBIE,
               message="the standby to die with its worker")


def test_before_fork_listeners_get_a_fork_after_them(procs, redis_url, r, resque):
    proc = procs.resqued(redis_url, extra_env={"APP_INCLUDE": os.path.join(HERE, "hookjobs.py")})
    wait_registered(r, proc)
    job_id = resque.enqueue_call("default", "report_parent")
    wait_log(r, "child-of:")
    before, child = log_entries(r)
    assert before == f"beforeFork:{proc.pid}:{job_id}" and child == f"child-of:{proc.pid}"
    assert not standby_children(proc.pid)
    stop(proc)


def test_inline_mode_runs_jobs_in_the_worker(procs, redis_url, r, resque):
    proc = procs.resqued(redis_url, extra_env={"FORK_PER_JOB": "false"})
    wait_registered(r, proc)
    resque.enqueue("default", "PhpJob", {"tag": "inline"})
    resque.enqueue("default", "Failing", {"n": 2})
    wait_until(lambda: r.get("resque:stat:processed") == b"2")
    setup = [e for e in log_entries(r) if e.startswith("setUp:")][0]
    assert setup == f"setUp:{proc.pid}"  # no child: the worker itself ran it
    [entry] = failures(r)
    assert entry["exception"] == "ValueError"
    assert not standby_children(proc.pid)
    assert title(proc.pid).startswith(f"{PREFIX}: ")
    assert stop(proc, signal.SIGTERM) == 0


def test_a_standby_killed_while_it_waits_is_replaced_not_given_a_job(procs, redis_url, r, resque):
    # Killed while idle (not yet reaped), or during a job (and reaped after
    # it): either way the next job gets a live child, runs, and nothing hangs.
    proc = procs.resqued(redis_url)
    wait_registered(r, proc)
    [standby] = wait_until(lambda: standby_children(proc.pid), message="a standby")
    os.kill(standby, signal.SIGKILL)
    resque.enqueue("default", "PhpJob", {"tag": "after-idle-kill"})
    wait_log(r, "perform:after-idle-kill")

    resque.enqueue("default", "Slow", {"seconds": 30})
    wait_log(r, "started:")
    [standby] = wait_until(lambda: standby_children(proc.pid), message="a standby during the job")
    os.kill(standby, signal.SIGKILL)
    r.rpush("test:release", 1)
    wait_log(r, "finished:")
    resque.enqueue("default", "PhpJob", {"tag": "after-busy-kill"})
    wait_log(r, "perform:after-busy-kill", timeout=10)
    wait_until(lambda: r.get("resque:stat:processed") == b"3", message="three outcomes")
    assert failures(r) == []
    stop(proc)
