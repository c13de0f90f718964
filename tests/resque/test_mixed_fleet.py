"""resqued workers beside Ruby and PHP workers on one Redis: who prunes whom,
and what becomes of the jobs a dead worker held.

Foreign workers are stood in for by a live process titled as Resque titles
its workers, with exactly the keys php-resque and Ruby write for it (see
tests/golden), and Ruby's prune by the commands Ruby sends.
"""

import json
import signal
import os
import socket
import sys
import time
from datetime import datetime, timezone

import pytest

from conftest import JOBS_FILE, stop, wait_until
from helpers import failures, job_child_pid, log_entries, pid_gone, wait_log, wait_registered, worker_id
from resqued.resque import wire
from resqued.resque.outcome import PRUNED_DIRTY_EXIT

HOST = socket.gethostname()
INTERVALS = "resque:resqued:heartbeat_intervals"


def redis_now(r) -> float:
    seconds, micros = r.time()
    return seconds + micros / 1e6


def ruby_beat(r, age: float) -> str:
    """A heartbeat as Ruby writes it, ``age`` seconds ago by Redis's clock."""
    return wire.heartbeat_time(redis_now(r) - age)


def register_foreign(r, wid, *, beat_age=None, job=None, run_at=None):
    """The keys a Ruby or PHP worker writes for itself (and for its job)."""
    r.sadd("resque:workers", wid)
    r.set(f"resque:worker:{wid}:started", "2026-11-22 02:24:52 +0000")
    if beat_age is not None:
        r.hset("resque:workers:heartbeat", wid, ruby_beat(r, beat_age))
    if job is not None:
        r.set(f"resque:worker:{wid}", json.dumps({"queue": "default", "run_at": run_at or wire.run_at_time(),
                                                  "payload": job}))


def foreign_process(procs, title="resque-2.7.0: Processing default since 1795312000 [SlowJob]"):
    """A live process that looks like a Ruby worker to a pruner (by its title)."""
    code = ("import setproctitle, sys; setproctitle.setproctitle(sys.argv[1]); "
            "sys.stdout.write('up\\n'); sys.stdout.flush(); import signal\nwhile True: signal.pause()")
    proc = procs.spawn([sys.executable, "-c", code, title], name="foreign")
    wait_until(lambda: proc.log_path.read_text().startswith("up"), message="the foreign worker to start")
    return proc


def ruby_prune(r, wid):
    """What a Ruby worker's prune does to a worker whose heartbeat expired
    (Resque::Worker#unregister_worker with PruneDeadWorkerDirtyExit)."""
    working = r.get(f"resque:worker:{wid}")
    if working:
        record = json.loads(working)
        r.rpush("resque:failed", json.dumps({
            "failed_at": "2026/11/22 02:30:00 UTC", "payload": record["payload"],
            "exception": PRUNED_DIRTY_EXIT, "error": f"Worker {wid} did not gracefully exit while processing "
            f"{record['payload']['class']}", "backtrace": [], "worker": wid, "queue": record["queue"]}))
        r.incr("resque:stat:failed")
    r.srem("resque:workers", wid)
    r.delete(f"resque:worker:{wid}", f"resque:worker:{wid}:started", f"resque:stat:processed:{wid}",
             f"resque:stat:failed:{wid}")
    r.hdel("resque:workers:heartbeat", wid)


def php_job(job_id="a" * 32):
    return {"class": "GoldenSleep", "args": [{"seconds": 100}], "id": job_id, "queue_time": 1795312063.207062}


def stat_failed(r) -> int:
    return int(r.get("resque:stat:failed") or 0)


# -- heartbeats: each worker judged by its own ------------------------------

def test_a_live_ruby_worker_is_judged_by_resques_heartbeat_not_ours(procs, redis_url, r):
    """heartbeat_interval: 2 here, but a Ruby worker beats every 60 s: its
    beat 30 s old is healthy, and its 100 s job is not failed."""
    ruby = foreign_process(procs)
    live = f"{HOST}:{ruby.pid}:default"
    register_foreign(r, live, beat_age=30, job={"class": "SlowJob", "args": [100]})
    dead = "elsewhere:4077:default"     # beat past Resque's 300 s: really dead
    register_foreign(r, dead, beat_age=301)
    proc = procs.resqued(redis_url, extra_env={"RESQUED_HEARTBEAT_INTERVAL": "2"})
    wid = wait_registered(r, proc)
    assert not r.sismember("resque:workers", dead), "the prune ran (it removed the dead worker)"
    assert r.sismember("resque:workers", live) and r.hexists("resque:workers:heartbeat", live)
    assert r.exists(f"resque:worker:{live}")
    assert failures(r) == [] and stat_failed(r) == 0
    # Our own interval is published, for other resqued workers' prunes.
    assert r.hget(INTERVALS, wid) == b"2.0"
    stop(proc)
    assert not r.hexists(INTERVALS, wid)


def test_resqued_workers_are_judged_by_the_interval_they_publish(procs, redis_url, r):
    short, long_ = "elsewhere:1:default", "elsewhere:2:default"
    for wid, interval in ((short, "2.0"), (long_, "60.0")):
        register_foreign(r, wid, beat_age=11)
        r.hset(INTERVALS, wid, interval)
    r.hset(INTERVALS, "gone:3:default", "2.0")    # left by a foreign pruner
    proc = procs.resqued(redis_url, extra_env={"RESQUED_HEARTBEAT_INTERVAL": "2"})
    wid = wait_registered(r, proc)
    assert not r.sismember("resque:workers", short) and not r.hexists(INTERVALS, short)
    assert r.sismember("resque:workers", long_) and r.hget(INTERVALS, long_) == b"60.0"
    # Left by a foreign pruner: noted, settled once silent for 5 of its beats.
    assert r.hexists("resque:resqued:vanished", "gone:3:default")
    assert r.hget(INTERVALS, wid) == b"2.0"
    stop(proc)


# -- a job that finished is never failed afterwards --------------------------

@pytest.mark.parametrize("run_at", ["php", "ruby"])
def test_a_prune_leaves_a_job_that_finished_alone(procs, redis_url, r, run_at):
    """php-resque: the parent was killed, its job child finished and wrote
    status 4. The prune unregisters the parent and fails nothing."""
    dead = f"{HOST}:999999:default"
    started = int(time.time()) - 5
    stamp = (datetime.fromtimestamp(started, timezone.utc).strftime("%a %b %d %H:%M:%S UTC %Y")
             if run_at == "php" else wire.run_at_time(started))
    register_foreign(r, dead, job=php_job(), run_at=stamp)
    r.set(f"resque:job:{'a' * 32}:status", json.dumps({"status": 4, "updated": started + 3}))
    r.set("resque:stat:failed", 7)
    proc = procs.resqued(redis_url)
    wait_registered(r, proc)
    assert not r.sismember("resque:workers", dead) and not r.exists(f"resque:worker:{dead}")
    assert failures(r) == [] and stat_failed(r) == 7
    assert json.loads(r.get(f"resque:job:{'a' * 32}:status"))["status"] == 4
    stop(proc)


@pytest.mark.parametrize("status", [
    {"status": 2, "updated": 0},                    # still running when its worker died
    {"status": 4, "updated": -3600},                # an earlier run's, not this one's
])
def test_a_prune_fails_a_job_that_did_not_finish(procs, redis_url, r, status):
    dead = f"{HOST}:999999:default"
    started = int(time.time()) - 5
    register_foreign(r, dead, job=php_job(), run_at=wire.run_at_time(started))
    status = {**status, "updated": started + status["updated"]}
    r.set(f"resque:job:{'a' * 32}:status", json.dumps(status))
    proc = procs.resqued(redis_url)
    wait_registered(r, proc)
    [entry] = failures(r)
    assert entry["exception"] == "Resque::DirtyExit" and entry["payload"]["id"] == "a" * 32
    assert json.loads(r.get(f"resque:job:{'a' * 32}:status"))["status"] == 3 and stat_failed(r) == 1
    stop(proc)


def test_a_resqued_worker_killed_after_its_outcome_is_pruned_without_a_failure(procs, redis_url, resque, r):
    """The outcome, the working-on record and the in-flight entry go in one
    transaction: a worker killed after it (before it unregisters) leaves
    nothing for a prune to fail."""
    fast_prunes = {"RESQUED_HEARTBEAT_INTERVAL": "1"}    # its prune lock lasts 1 s
    first = procs.resqued(redis_url, extra_env=fast_prunes)
    dead = wait_registered(r, first)
    job_id = resque.enqueue("default", "Slow", {"seconds": 0.1}, track_status=True)
    wait_log(r, "finished:")
    wait_until(lambda: resque.status(job_id)["code"] == wire.STATUS_COMPLETE, message="the job's outcome")
    first.kill()
    first.wait(10)
    second = procs.resqued(redis_url, extra_env=fast_prunes)
    wait_registered(r, second)
    wait_until(lambda: not r.sismember("resque:workers", dead), message="the prune of the killed worker")
    assert failures(r) == [] and stat_failed(r) == 0
    assert resque.status(job_id)["code"] == wire.STATUS_COMPLETE
    stop(second)


# -- no in-flight list stranded ----------------------------------------------

def test_a_list_left_by_a_worker_that_ruby_pruned_is_recovered(procs, redis_url, resque, r):
    """An env-mode worker (no master) killed with a job; a Ruby worker
    prunes it (Ruby knows nothing of in-flight lists); the next resqued
    prune requeues the job, once. The failure Ruby wrote stays: it records
    the loss, the job runs again (see docs/delivery.md, mixed fleets)."""
    first = procs.resqued(redis_url, extra_env={"RESQUED_HEARTBEAT_INTERVAL": "1"})
    dead = wait_registered(r, first)
    job_id = resque.enqueue("default", "Slow", {"seconds": 60})
    child = job_child_pid(r)
    first.kill()
    first.wait(10)
    wait_until(lambda: pid_gone(child), message="the job child to die with its worker")
    inflight = f"resque:resqued:inflight:{dead}:default"
    assert r.llen(inflight) == 1
    ruby_prune(r, dead)
    assert not r.sismember("resque:workers", dead) and not r.hexists("resque:workers:heartbeat", dead)

    second = procs.resqued(redis_url, extra_env={"RESQUED_HEARTBEAT_INTERVAL": "1"})
    wait_registered(r, second)
    # Settled once silent for five of its 1 s beats.
    wait_until(lambda: len([e for e in log_entries(r) if e.startswith("started:")]) == 2,
               timeout=20, message="the requeued job to run again")
    assert not r.exists(inflight)
    r.rpush("test:release", 1)
    wait_log(r, "finished:")
    [ruby_failure] = failures(r)     # Ruby's record of the loss, and no second one
    assert ruby_failure["exception"] == PRUNED_DIRTY_EXIT and ruby_failure["payload"]["id"] == job_id
    assert not r.hexists(INTERVALS, dead)
    stop(second)


def test_a_live_worker_that_ruby_unregistered_keeps_its_job(procs, redis_url, resque, r, tmp_path):
    """A worker that a foreign pruner unregistered while it lives beats again
    within its interval: its list is never settled, its job never requeued."""
    fast = {"RESQUED_HEARTBEAT_INTERVAL": "1"}     # settled after 5 s of silence, were it silent
    first = procs.resqued(redis_url, queue="slow", extra_env=fast)
    busy = wait_registered(r, first, queues="slow")
    # Marks files, not Redis (a job's BLPOP over 5 s times out in redis-py).
    mark = tmp_path / "job"
    resque.enqueue("slow", "FileSleep", {"path": str(mark), "seconds": 30})
    wait_until(lambda: (tmp_path / "job.started").exists(), message="the job to start")
    second = procs.resqued(redis_url, extra_env=fast)
    wait_registered(r, second)
    ruby_prune(r, busy)
    # Seven of its beats (over 5 s): the second worker prunes all along.
    beats = []
    wait_until(lambda: beats.append(r.hget("resque:workers:heartbeat", busy)) or len(set(beats) - {None}) >= 7,
               timeout=20, interval=0.1, message="seven beats of the unregistered worker")
    assert r.llen(f"resque:resqued:inflight:{busy}:slow") == 1
    [ruby_failure] = failures(r)          # the one Ruby's prune wrote, and no other
    assert r.llen("resque:queue:slow") == 0 and ruby_failure["exception"] == PRUNED_DIRTY_EXIT
    assert not r.hexists("resque:resqued:vanished", busy)    # noted at most while it was silent
    assert not (tmp_path / "job.done").exists()
    stop(second)
    assert stop(first, signal.SIGTERM) == 0     # the job is still its own to give back
    assert r.llen("resque:queue:slow") == 1 and len(failures(r)) == 1


def test_a_new_worker_with_a_dead_workers_id_does_not_adopt_its_list(procs, redis_url, r, tmp_path):
    """pid reuse: the stale list is settled (requeued, counted as a loss,
    and logged) before the new worker reserves anything."""
    go = tmp_path / "go"
    os.mkfifo(go)
    launcher = ("import os, sys; open(sys.argv[1]).read(); "
                "os.execv(sys.executable, [sys.executable, '-m', 'resqued'])")
    env = {"QUEUE": "parked", "REDIS_BACKEND": redis_url, "APP_INCLUDE": JOBS_FILE, "INTERVAL": "1", "VVERBOSE": "1"}
    proc = procs.spawn([sys.executable, "-c", launcher, str(go)], env=env, name="reused")
    wid = worker_id(proc, "parked")
    stale = wire.dumps(wire.payload("Slow", [{"seconds": 0.1}], "b" * 32, 1.0))
    r.rpush(f"resque:resqued:inflight:{wid}:parked", stale)
    with open(go, "w") as f:
        f.write("go")
    wait_registered(r, proc, queues="parked")
    wait_log(r, "finished:")            # it ran, as a requeued job
    wait_until(lambda: not r.exists(f"resque:resqued:inflight:{wid}:parked"), message="its outcome")
    log = proc.log_path.read_text()
    assert f"job {'b' * 32} of {wid} from queue parked requeued at the head of its queue" in log
    stop(proc)


# -- a live worker on this host is never pruned; recovery does not wait on Ruby's lock --

def test_a_dead_resqued_workers_job_is_recovered_while_ruby_holds_the_prune_lock(procs, redis_url, resque, r):
    """A Ruby worker (or a resqued one beating every 60 s) holds
    pruning_dead_workers_in_progress for 60 s; a 1 s fleet beside it still
    recovers a dead worker's job within five of that worker's beats."""
    dead = "elsewhere:4242:default"
    register_foreign(r, dead, beat_age=2)
    r.hset(INTERVALS, dead, "1.0")
    r.rpush(f"resque:resqued:inflight:{dead}:default",
            json.dumps({"class": "PhpJob", "args": [{"tag": "stranded"}], "id": "s1"}))
    ruby = "rubyhost:77:default"
    r.set("resque:pruning_dead_workers_in_progress", ruby, ex=60, nx=True)   # Ruby's prune lock, as Ruby takes it
    proc = procs.resqued(redis_url, extra_env={"RESQUED_HEARTBEAT_INTERVAL": "1"})
    wait_registered(r, proc)
    # Stale 3 s from now, then settled within the next of our beats: far from 60 s.
    wait_log(r, "perform:stranded:", timeout=12)
    assert not r.sismember("resque:workers", dead) and not r.exists(f"resque:resqued:inflight:{dead}:default")
    assert failures(r) == []
    assert r.get("resque:pruning_dead_workers_in_progress") == ruby.encode()   # Ruby's lock left alone
    stop(proc)


def test_a_recycled_pid_that_only_mentions_resque_does_not_keep_a_dead_worker(procs, redis_url, r):
    """The pid of a dead resqued worker now belongs to a process whose command
    line mentions resque but is no worker (a tail of a log): its stale
    heartbeat prunes it, and its job is recovered."""
    tail = foreign_process(procs, title="tail -f /var/log/resque.log")
    dead = f"{HOST}:{tail.pid}:default"
    register_foreign(r, dead, beat_age=10)
    r.hset(INTERVALS, dead, "1.0")
    r.rpush(f"resque:resqued:inflight:{dead}:default",
            json.dumps({"class": "PhpJob", "args": [{"tag": "recycled"}], "id": "r1"}))
    proc = procs.resqued(redis_url, extra_env={"RESQUED_HEARTBEAT_INTERVAL": "1"})
    wait_registered(r, proc)
    wait_log(r, "perform:recycled:")
    assert not r.sismember("resque:workers", dead)
    stop(proc)


def test_a_stopped_worker_that_ruby_pruned_keeps_its_job(procs, redis_url, resque, r, tmp_path):
    """Ruby prunes by heartbeat on any host, so a worker stopped for 300 s is
    unregistered by it; a resqued neighbour on the stopped worker's host does
    not settle its list, however long it stays silent."""
    fast = {"RESQUED_HEARTBEAT_INTERVAL": "1"}
    first = procs.resqued(redis_url, queue="slow", extra_env=fast)
    stopped = wait_registered(r, first, queues="slow")
    mark = tmp_path / "job"
    job_id = resque.enqueue("slow", "FileSleep", {"path": str(mark), "seconds": 2}, track_status=True)
    wait_until(lambda: (tmp_path / "job.started").exists(), message="the job to start")
    os.kill(first.pid, signal.SIGSTOP)
    try:
        ruby_prune(r, stopped)
        neighbour = procs.resqued(redis_url, queue="slow", extra_env=fast)
        wait_registered(r, neighbour, queues="slow")
        # Noted as vanished at the neighbour's first prune; it would be settled 5 s later.
        wait_until(lambda: r.hexists("resque:resqued:vanished", stopped), message="the silent worker noted")
        noted = float(r.hget("resque:resqued:vanished", stopped))
        wait_until(lambda: redis_now(r) - noted > 8, timeout=15, message="eight of its beats")
        assert r.llen(f"resque:resqued:inflight:{stopped}:slow") == 1 and r.llen("resque:queue:slow") == 0
    finally:
        os.kill(first.pid, signal.SIGCONT)
    wait_until(lambda: resque.status(job_id)["code"] == wire.STATUS_COMPLETE, message="the job's outcome")
    assert r.get("resque:stat:processed") == b"1"
    stop(neighbour)
    stop(first)
