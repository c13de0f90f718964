"""How job children are made: a standby forked ahead of time (fork off the
critical path, still a fresh child per job), on-demand forks when beforeFork
listeners exist, and the opt-in inline mode (FORK_PER_JOB=false)."""

import json
import os
import signal
import textwrap

import psutil
import pytest

from conftest import HERE, stop, wait_until
from helpers import failures, log_entries, pid_gone, title, wait_log, wait_registered
from resqued.process.title import PREFIX


def standby_children(pid):
    try:
        # Standbys are the job forker's children, or the worker's when it forks them itself.
        return [c.pid for c in psutil.Process(pid).children(recursive=True)
                if title(c.pid) == f"{PREFIX}: Standby for default"]
    except psutil.NoSuchProcess:
        return []


def test_a_standby_child_waits_and_each_job_gets_a_fresh_one(procs, redis_url, r, resque):
    proc = procs.resqued(redis_url)
    wait_registered(r, proc)
    [first] = wait_until(lambda: standby_children(proc.pid), message="a standby child")
    resque.enqueue("default", "Slow")
    child = int(wait_log(r, "started:")[0].split(":")[1])
    assert child == first  # the standby ran the job...
    [forker] = forkers(proc.pid)
    assert psutil.Process(child).ppid() == forker  # forked by the job forker, a child of the worker
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


@pytest.mark.parametrize("job_forker", ["false", "true"])
def test_a_standby_killed_while_it_waits_is_replaced_not_given_a_job(procs, redis_url, r, resque, job_forker):
    # Killed while idle (not yet reaped), or during a job (and reaped after
    # it): either way the next job gets a live child, runs, and nothing hangs.
    proc = procs.resqued(redis_url, extra_env={"JOB_FORKER": job_forker})
    wait_registered(r, proc)
    [standby] = wait_until(lambda: standby_children(proc.pid), message="a standby")
    os.kill(standby, signal.SIGKILL)
    # Dead (a job arriving while the kill is still on its way is the job's
    # death, a dirty exit), but perhaps not yet reaped, nor its exit reported.
    wait_until(lambda: pid_gone(standby), message="the standby to die")
    resque.enqueue("default", "PhpJob", {"tag": "after-idle-kill"})
    wait_log(r, "perform:after-idle-kill")

    resque.enqueue("default", "Slow", {"seconds": 30})
    wait_log(r, "started:")
    [standby] = wait_until(lambda: standby_children(proc.pid), message="a standby during the job")
    os.kill(standby, signal.SIGKILL)
    # As above: dead before the next job comes. On a loaded machine a SIGKILL
    # takes effect only once its target gets a CPU, and a job handed over
    # before that is the job's death (a dirty exit), as the test once saw.
    wait_until(lambda: pid_gone(standby), message="the standby to die")
    r.rpush("test:release", 1)
    wait_log(r, "finished:")
    resque.enqueue("default", "PhpJob", {"tag": "after-busy-kill"})
    wait_log(r, "perform:after-busy-kill", timeout=10)
    wait_until(lambda: r.get("resque:stat:processed") == b"3", message="three outcomes")
    assert failures(r) == []
    stop(proc)


def forkers(pid):
    try:
        return [c.pid for c in psutil.Process(pid).children() if title(c.pid) == f"{PREFIX}: Job forker for default"]
    except psutil.NoSuchProcess:
        return []


REPORTING_JOBS = """
    import json, os, sys

    with open(os.path.join(os.path.dirname(__file__), "imports.log"), "a") as f:
        f.write(f"{os.getpid()}\\n")

    class Report:
        def perform(self):
            with open(self.args["path"], "w") as f:
                json.dump({"pid": os.getpid(), "ppid": os.getppid(),
                           "loaded": {m: m in sys.modules for m in ("redis", "resqued.worker.worker", "psutil")}}, f)
"""


def run_report_job(procs, redis_url, r, resque, tmp_path, module_text, extra_env=None):
    jobs = tmp_path / "reporting_jobs.py"
    jobs.write_text(textwrap.dedent(module_text))
    proc = procs.resqued(redis_url, extra_env={"APP_INCLUDE": str(jobs), **(extra_env or {})})
    wait_registered(r, proc)
    out = tmp_path / "report.json"
    resque.enqueue("default", "Report", {"path": str(out)})
    wait_until(lambda: r.get("resque:stat:processed") == b"1", message="the job to run")
    return proc, json.loads(out.read_text())


def test_job_children_come_from_a_job_forker_forked_from_the_worker(procs, redis_url, r, resque, tmp_path):
    # The forker is a copy of the worker: the job modules are imported once,
    # by the worker, and the job child's parent is the forker.
    proc, report = run_report_job(procs, redis_url, r, resque, tmp_path, REPORTING_JOBS)
    [forker] = forkers(proc.pid)
    assert report["ppid"] == forker and psutil.Process(forker).ppid() == proc.pid
    assert report["loaded"]["redis"] is True
    assert (tmp_path / "imports.log").read_text().split() == [str(proc.pid)]
    assert stop(proc) == 0
    assert pid_gone(forker)


def test_job_forker_false_makes_the_worker_fork_its_children(procs, redis_url, r, resque, tmp_path):
    proc, report = run_report_job(procs, redis_url, r, resque, tmp_path, REPORTING_JOBS,
                                  extra_env={"JOB_FORKER": "false"})
    assert report["ppid"] == proc.pid
    assert not forkers(proc.pid)
    assert stop(proc) == 0


def test_a_killed_job_forker_fails_its_running_job_and_is_replaced(procs, redis_url, r, resque):
    proc = procs.resqued(redis_url)
    wait_registered(r, proc)
    resque.enqueue("default", "Slow", {"seconds": 30})
    child = int(wait_log(r, "started:")[0].split(":")[1])
    [forker] = forkers(proc.pid)
    assert psutil.Process(child).ppid() == forker
    os.kill(forker, signal.SIGKILL)
    # Its children die with it: the running job is a dirty exit, recorded, not lost.
    wait_until(lambda: len(failures(r)) == 1, message="the running job to fail")
    [entry] = failures(r)
    assert entry["exception"] == "Resque::DirtyExit" and "SIGKILL" in entry["error"]
    # Idle, a new forker serves the next job; killed idle, it is replaced again.
    [second] = wait_until(lambda: forkers(proc.pid), message="a new job forker")
    assert second != forker
    [standby] = wait_until(lambda: standby_children(proc.pid), message="its standby")
    os.kill(second, signal.SIGKILL)
    # Gone, with its standby (a job arriving while the kill is on its way
    # is that job's death: a dirty exit, as for any killed job child).
    wait_until(lambda: pid_gone(second) and pid_gone(standby), message="the forker and its standby to die")
    resque.enqueue("default", "PhpJob", {"tag": "after-forker-kill"})
    wait_log(r, "perform:after-forker-kill")
    assert len(failures(r)) == 1
    assert stop(proc) == 0


def test_each_worker_of_a_pool_gets_a_job_forker_unless_it_says_false(master_factory, r, resque):
    m = master_factory(["queues: [default]\ncount: 2", "queues: [mail]\ncount: 1\njob_forker: false"])
    workers = m.wait_workers(3)
    wait_until(lambda: r.scard("resque:workers") == 3, message="3 registrations")
    with_forker = wait_until(lambda: [w for w in workers if forkers(w)] if len(
        [w for w in workers if forkers(w)]) == 2 else None, message="a job forker beside each default worker")
    assert all("default" in title(w) for w in with_forker)
    forker_pids = [f for w in with_forker for f in forkers(w)]
    resque.enqueue("default", "PhpJob", {"tag": "pooled"})
    wait_log(r, "perform:pooled")
    assert m.ctl("stop").returncode == 0
    assert m.proc.wait(10) == 0
    assert len(forker_pids) == 2 and all(pid_gone(f) for f in forker_pids)
