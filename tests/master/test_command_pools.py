"""Command pools (docs/command-pools.md): a pool whose workers run a
non-Python Resque worker, here tests/commandworker.py, a stand-in that
speaks Resque's keys as php-resque does (test_command_pools_foreign.py runs
real PHP and Ruby ones). Kept at count, backed off then FAILED, recycled by
memory between jobs, stopped gracefully, and a worker SIGKILLed mid-job has
its job settled at once."""

import json
import os
import re
import signal
import sys

import psutil

from conftest import HERE, log_text, stop, wait_until
from resqued.ctl.masterclient import request

STAND_IN = os.path.join(HERE, "commandworker.py")


def command_pool(count=1, queue="default", extra=""):
    return f"queues: [{queue}]\ncount: {count}\ncommand: [{sys.executable}, {STAND_IN}]\ninterval: 0.1" + extra


def enqueue(r, queue, cls, *args):
    payload = {"class": cls, "args": list(args), "id": f"job-{cls}-{args}", "queue_time": 1.0}
    r.sadd("resque:queues", queue)
    r.rpush(f"resque:queue:{queue}", json.dumps(payload))
    return payload


def busy_worker(r):
    """The id of the worker whose working-on record exists, and the record.
    A record listed may be gone by the time it is read (the master settles a
    killed worker's job meanwhile): that one is skipped."""
    for key in r.keys("resque:worker:*"):
        key = key.decode()
        if key.count(":") == 4 and not key.endswith(":started") and (record := r.get(key)) is not None:
            return key.removeprefix("resque:worker:"), json.loads(record)
    return None


def test_kept_at_count_registered_paused_shown_and_stopped_gracefully(master_factory, r, tmp_path):
    m = master_factory([command_pool(count=2)])
    first = m.wait_workers(2)
    wait_until(lambda: r.scard("resque:workers") == 2, message="two registrations")
    status = m.status()
    [pool] = status["pools"]
    assert pool["kind"] == "command" and pool["command"] == [sys.executable, STAND_IN]
    assert sorted(os.listdir(tmp_path / "var/run/workers")) == sorted(f"default.{pid}.pid" for pid in first)
    human = m.ctl("status").stdout
    assert f"pool default runs a command: {sys.executable} {STAND_IN}" in human

    paused = m.ctl("pause")   # USR2, as resque-pool relays it: the title says Paused
    assert paused.returncode == 0, paused.stderr
    assert [(w["state"], w["paused"]) for w in m.status()["workers"]] == [("paused", True)] * 2
    resumed = m.ctl("resume")   # CONT
    assert resumed.returncode == 0, resumed.stderr

    os.kill(first[0], signal.SIGKILL)   # idle: nothing to settle, its registration removed
    wait_until(lambda: len(m.workers()) == 2 and first[0] not in m.workers(), message="a replacement")
    wait_until(lambda: not any(f":{first[0]}:".encode() in w for w in r.smembers("resque:workers")),
               message="the dead worker's registration removed")

    enqueue(r, "default", "Sleep", 1.0)
    wait_until(lambda: busy_worker(r), message="a job running")
    assert stop(m.proc, signal.SIGQUIT) == 0   # graceful: QUIT, the job finishes
    assert r.get("resque:stat:processed") == b"1" and r.llen("resque:failed") == 0
    assert r.scard("resque:workers") == 0 and not os.listdir(tmp_path / "var/run/workers")


def test_a_crashing_command_backs_off_then_fails_with_its_reason(master_factory):
    crash = f"[{sys.executable}, -c, 'import sys; sys.exit(3)']"
    # start_retries: 2 (0.5 + 1 s of backoff), not the default's 5 (15.5 s).
    m = master_factory([f"queues: [crash]\ncount: 1\nstart_retries: 2\ncommand: {crash}",
                        "queues: [missing]\ncount: 1\nstart_retries: 0\ncommand: [/nonexistent/resque-worker]"])
    wait_until(lambda: m.ctl("status").returncode == 0 or m.proc.poll() is not None, message="the master up")
    status = wait_until(lambda: (s := m.status()) and all(p["failed"] for p in s["pools"]) and s, timeout=60,
                        message="both pools to fail")
    crashed, missing = status["pools"]
    assert crashed["reason"] == "its workers died at boot 3 times in a row (last: exit code 3)"
    assert missing["last_error"] == "cannot run '/nonexistent/resque-worker': No such file or directory"
    assert "backoff" not in status and crashed["restarts"] == 3
    assert stop(m.proc) == 0


def test_memory_over_max_recycles_after_the_job_not_during_it(master_factory, r):
    # The job child holds 80 MB while it runs: the tree passes max_memory
    # mid-job; QUIT lets the job finish, then the worker is replaced.
    m = master_factory([command_pool(extra="\nmax_memory: 50MB")])
    [worker] = m.wait_workers(1)
    enqueue(r, "default", "Sleep", 2.5, 80)
    wait_until(lambda: f"recycling worker {worker} (default): its memory" in log_text(m.proc), timeout=20,
               message="a recycle")
    assert "max_memory 50.0MB, after its job" in log_text(m.proc)   # told to QUIT while busy
    wait_until(lambda: worker not in m.workers() and len(m.workers()) == 1, message="the replacement")
    assert r.get("resque:stat:processed") == b"1" and r.llen("resque:failed") == 0   # the job finished
    assert m.status()["pools"][0]["recycles"] == 1
    assert stop(m.proc) == 0


def test_a_worker_killed_mid_job_has_its_job_requeued_at_once(master_factory, r, tmp_path):
    m = master_factory([command_pool()])
    [worker] = m.wait_workers(1)
    payload = enqueue(r, "default", "Sleep", 3)
    worker_id, working = wait_until(lambda: busy_worker(r), message="the job running")
    assert worker_id.split(":")[1] == str(worker) and working["payload"] == payload
    [job_child] = wait_until(lambda: psutil.Process(worker).children(), message="its job child")
    os.kill(worker, signal.SIGKILL)
    # The job child is killed with it (it would finish a job now requeued),
    # the job goes back to the head of its queue and the replacement runs it.
    wait_until(lambda: not job_child.is_running() or job_child.status() == psutil.STATUS_ZOMBIE,
               message="the job child killed")
    again = wait_until(lambda: (b := busy_worker(r)) and b[0] != worker_id and b[1], message="the job run again")
    assert again["payload"] == {**payload, "resqued_lost": 1}
    # The replacement starts once the job is settled (php-resque 1.x's
    # prune at start would drop the record unsettled).
    # (m.workers() goes by title: the stand-in takes a waiting job before it
    # titles itself, and its busy record is written before its title.)
    [replacement] = wait_until(lambda: m.workers(), message="the replacement titled")
    log = log_text(m.proc)
    assert log.index(f"job {payload['id']} of {worker_id} from queue default requeued") < \
        log.index(f"started worker {replacement} for default")
    # and counted lost in the metrics (its queue from the job child's title)
    metrics = lambda: request(str(tmp_path / "var/run/resqued.sock"), "metrics")["metrics"]["tally"]["jobs"]
    wait_until(lambda: ["default", "unknown", "lost", 1] in metrics(), timeout=5, message="the job counted lost")
    wait_until(lambda: not r.sismember("resque:workers", worker_id), message="its registration removed")
    assert not r.exists(f"resque:stat:processed:{worker_id}")
    assert r.llen("resque:failed") == 0
    assert stop(m.proc) == 0



def test_max_jobs_recycles_by_the_count_resque_keeps_in_redis(master_factory, r):
    m = master_factory([command_pool(extra="\nmax_jobs: 2")])
    [worker] = m.wait_workers(1)
    for _ in range(3):
        enqueue(r, "default", "Sleep", 0)
    # The master has a child of the spawner read stat:processed:<id> (jobcounts.py).
    wait_until(lambda: worker not in m.workers() and len(m.workers()) == 1, message="a recycle")
    assert re.search(rf"recycling worker {worker} \(default\): [23] jobs done, max_jobs 2", log_text(m.proc))
    wait_until(lambda: r.get("resque:stat:processed") == b"3", message="every job run")
    assert r.llen("resque:failed") == 0 and m.status()["pools"][0]["recycles"] == 1
    enqueue(r, "default", "Sleep", 0)
    wait_until(lambda: m.status()["workers"][0]["jobs_done"] >= 1, message="the replacement's count shown")
    assert stop(m.proc) == 0
