"""Never lose a job: a reserved job stays in Redis until its outcome is
recorded, and the jobs of workers that die are recovered exactly once."""

import json
import os
import signal
import socket
import threading

import pytest

from conftest import log_text, stop, wait_until
from helpers import failures, log_entries, pid_gone, title, wait_log, wait_registered, worker_id
from redis_server import RedisServer
from resqued import Resque
from resqued.resque import wire
from resqued.resque.recovery import Recovery


def inflight(r, wid, queue="default"):
    return r.lrange(f"resque:resqued:inflight:{wid}:{queue}", 0, -1)


def test_reserved_job_sits_in_flight_until_its_outcome_is_recorded(procs, redis_url, r, resque):
    proc = procs.resqued(redis_url)
    wid = wait_registered(r, proc)
    job_id = resque.enqueue("default", "Slow")
    wait_log(r, "started:")
    [raw] = inflight(r, wid)
    assert json.loads(raw)["id"] == job_id and r.llen("resque:queue:default") == 0
    r.rpush("test:release", 1)
    wait_until(lambda: r.get("resque:stat:processed") == b"1")
    assert inflight(r, wid) == []
    stop(proc)


def test_master_requeues_the_job_of_a_killed_worker_and_it_runs_again(master_factory, r, resque):
    m = master_factory(["queues: [default]\ncount: 1"])
    [worker] = m.wait_workers(1)
    job_id = resque.enqueue("default", "Slow", {"seconds": 60}, track_status=True)
    child = int(wait_log(r, "started:")[0].split(":")[1])
    os.kill(worker, signal.SIGKILL)
    # The job child dies with its worker (it must not run beside the retry)...
    wait_until(lambda: pid_gone(child), message="the job child to die with its worker")
    # ...and the job starts again in the replacement worker.
    wait_log(r, "started:", 2)
    r.rpush("test:release", 1)
    wait_log(r, "finished:")
    wait_until(lambda: json.loads(r.get(f"resque:job:{job_id}:status"))["status"] == 4)
    assert failures(r) == []
    assert "requeued at the head of its queue" in log_text(m.proc)
    dead = f"{socket.gethostname()}:{worker}:default"
    assert not r.sismember("resque:workers", dead) and inflight(r, dead) == []


def test_a_new_worker_recovers_the_job_of_a_dead_one_without_a_master(procs, redis_url, r, resque):
    env = {"RESQUED_HEARTBEAT_INTERVAL": "1"}
    first = procs.resqued(redis_url, extra_env=env)
    wait_registered(r, first)
    resque.enqueue("default", "Slow", {"seconds": 60})
    wait_log(r, "started:")
    first.kill()
    first.wait(10)
    second = procs.resqued(redis_url, extra_env=env)
    wait_registered(r, second)
    wait_log(r, "started:", 2, timeout=20)  # pruned (pid gone), requeued, run again
    r.rpush("test:release", 1)
    wait_log(r, "finished:")
    assert failures(r) == []
    stop(second)


def test_on_lost_fail_records_a_failure_instead(master_factory, r, resque):
    m = master_factory(["queues: [default]\ncount: 1"], on_lost="fail")
    [worker] = m.wait_workers(1)
    resque.enqueue("default", "Slow", {"seconds": 60})
    wait_log(r, "started:")
    os.kill(worker, signal.SIGKILL)
    wait_until(lambda: len(failures(r)) == 1, message="the lost job failed")
    [entry] = failures(r)
    assert entry["exception"] == "resqued.LostJob" and "on_lost: fail" in entry["error"]
    assert r.get("resque:stat:failed") == b"1"
    assert r.llen("resque:queue:default") == 0


def test_a_job_that_keeps_killing_its_worker_is_failed_after_max_lost(master_factory, r, resque):
    m = master_factory(["queues: [default]\ncount: 1"], max_lost=2)
    m.wait_workers(1)
    resque.enqueue("default", "KillsItsWorker")
    wait_until(lambda: len(failures(r)) == 1, timeout=30, message="the job failed after max_lost")
    assert [e for e in log_entries(r) if e.startswith("killer-run")] == ["killer-run:0", "killer-run:1", "killer-run:2"]
    [entry] = failures(r)
    assert "lost 3 times, more than max_lost 2" in entry["error"]
    m.wait_workers(1)  # and the pool goes on


def test_recovery_settles_each_job_exactly_once_under_a_race(redis_url, r, resque):
    dead = "elsewhere:4242:default,mail"
    for n in range(20):
        r.rpush(f"resque:resqued:inflight:{dead}:default", json.dumps({"class": "add", "args": [n], "id": f"{n:032x}"}))
    barrier = threading.Barrier(4)
    results = []

    def race():
        client = Resque(redis_url)
        barrier.wait()
        results.extend(Recovery(client.redis, client.keys).recover(dead, "test"))

    threads = [threading.Thread(target=race) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 20 and r.llen("resque:queue:default") == 20
    assert sorted(json.loads(j)["args"][0] for j in r.lrange("resque:queue:default", 0, -1)) == list(range(20))
    assert all(json.loads(j)["resqued_lost"] == 1 for j in r.lrange("resque:queue:default", 0, -1))


def test_multi_queue_worker_blocks_and_picks_up_any_queue_at_once(procs, redis_url, r, resque):
    # INTERVAL=60: only a blocking reserve on every queue can pick these up in time.
    proc = procs.resqued(redis_url, queue="high,low", extra_env={"INTERVAL": "60"})
    wid = wait_registered(r, proc, "high,low")
    wait_until(lambda: "Waiting for" in title(proc.pid))
    resque.enqueue_call("low", "add", 1, 1)
    wait_log(r, "add:2", timeout=5)
    resque.enqueue_call("high", "add", 2, 2)
    wait_log(r, "add:4", timeout=5)
    wait_until(lambda: r.get("resque:stat:processed") == b"2", message="both outcomes recorded")
    assert inflight(r, wid, "low") == [] and inflight(r, wid, "high") == []
    assert stop(proc, timeout=10) == 0  # QUIT ends the blocked waits at once


@pytest.fixture
def persistent_redis(tmp_path):
    """A private redis-server with an append-only file: tests stop and
    restart it to make an outage, and the data survives."""
    server = RedisServer(str(tmp_path / "redis"), persistent=True).start()
    yield server
    server.stop()


def worker_on(procs, server, extra_env=None):
    """A worker on ``server``, registered: (client, process, worker id)."""
    client = Resque(server.url)
    proc = procs.resqued(server.url, extra_env=extra_env)
    wid = wait_until(lambda: client.redis.smembers("resque:workers")).pop().decode()
    return client, proc, wid


def test_outcome_recorded_when_redis_returns(procs, tmp_path, persistent_redis):
    server = persistent_redis
    client, proc, wid = worker_on(procs, server)
    marker = str(tmp_path / "job")
    client.enqueue("default", "FileSleep", {"path": marker, "seconds": 1})
    wait_until(lambda: os.path.exists(marker + ".started"))
    client.redis.close()
    server.stop()  # Redis goes away while the job runs and finishes
    wait_until(lambda: os.path.exists(marker + ".done"), message="the job to finish without Redis")
    wait_until(lambda: "Redis unavailable" in log_text(proc), message="the outage noticed")
    server.start()
    client = Resque(server.url)
    wait_until(lambda: client.redis.get("resque:stat:processed") == b"1", timeout=20,
               message="the outcome recorded after Redis came back")
    assert client.redis.llen("resque:failed") == 0
    assert client.redis.lrange(f"resque:resqued:inflight:{wid}:default", 0, -1) == []
    assert log_text(proc).count("Redis unavailable") == 1 and proc.poll() is None
    stop(proc)


def test_master_and_workers_ride_out_a_redis_outage(procs, tmp_path):
    from masters import Master
    server = RedisServer(str(tmp_path / "redis"), persistent=True).start()
    try:
        m = Master(procs, tmp_path, server.url, ["queues: [default]\ncount: 2"])
        pids = m.wait_workers(2)
        client = Resque(server.url)
        wait_until(lambda: client.redis.scard("resque:workers") == 2)
        marker = str(tmp_path / "job")
        client.enqueue("default", "FileSleep", {"path": marker, "seconds": 2})
        wait_until(lambda: os.path.exists(marker + ".started"))
        client.redis.close()
        server.stop()  # one worker busy, one idle
        wait_until(lambda: log_text(m.proc).count("Redis unavailable") == 2, message="both workers noticed")
        wait_until(lambda: os.path.exists(marker + ".done"), message="the job finished during the outage")
        server.start()
        client = Resque(server.url)
        wait_until(lambda: client.redis.get("resque:stat:processed") == b"1", timeout=20)
        wait_until(lambda: log_text(m.proc).count("Redis is back") == 2, message="both workers back")
        assert m.workers() == pids and m.proc.poll() is None  # nothing crashed or restarted
        assert log_text(m.proc).count("Redis unavailable") == 2
        client.enqueue_call("default", "add", 20, 22)
        wait_until(lambda: client.redis.lrange("test:log", 0, -1) == [b"add:42"])
    finally:
        server.stop()


def _queue_args(r, queue="default"):
    return [json.loads(raw)["args"] for raw in r.lrange(f"resque:queue:{queue}", 0, -1)]


def test_a_job_taken_with_the_last_outcome_goes_back_to_the_head_on_quit(procs, redis_url, r, resque):
    # While the queue is busy the next job is taken in the transaction that
    # records the last one; a worker told to stop must give it back, in order.
    for fork in ("true", "false"):
        r.flushdb()
        proc = procs.resqued(redis_url, extra_env={"FORK_PER_JOB": fork})
        wid = wait_registered(r, proc)
        resque.enqueue("default", "Slow", {"seconds": 30, "n": 0})
        for n in range(1, 6):
            resque.enqueue("default", "PhpJob", {"tag": n})
        wait_log(r, "started:")
        proc.send_signal(signal.SIGQUIT)  # finish the current job, then stop
        r.rpush("test:release", 1)
        assert proc.wait(timeout=15) == 0
        assert r.get("resque:stat:processed") == b"1"
        assert _queue_args(r) == [[{"tag": n}] for n in range(1, 6)], fork
        assert inflight(r, wid) == []


def test_a_job_taken_with_the_last_outcome_goes_back_when_the_worker_pauses(procs, redis_url, r, resque):
    # The pause switch is read at most once a second: PausesAll sets it after
    # 1.2 s, so the worker takes the next job with PausesAll's outcome and
    # learns of the pause only then. It must give that job back.
    for fork in ("true", "false"):
        r.flushdb()
        proc = procs.resqued(redis_url, extra_env={"FORK_PER_JOB": fork})
        wid = wait_registered(r, proc)
        resque.enqueue("default", "PausesAll", {"seconds": 1.2})
        resque.enqueue("default", "PhpJob", {"tag": "next"})
        wait_until(lambda: "Paused" in title(proc.pid), message="the worker paused")
        assert log_entries(r) == ["paused-all"], fork
        assert _queue_args(r) == [[{"tag": "next"}]] and inflight(r, wid) == [], fork
        r.delete("resque:pause-all-workers")
        wait_log(r, "perform:next")
        stop(proc)


def test_jobs_taken_by_a_reply_that_was_lost_are_reclaimed_after_an_outage(procs, persistent_redis):
    # A connection that drops after the server moved a job but before the
    # reply arrived leaves the job in the worker's in-flight list, unknown to
    # the worker. After any outage the worker, holding no job, puts such
    # jobs back at the head of their queue; here two are planted that way.
    server = persistent_redis
    client, proc, wid = worker_on(procs, server)
    key = f"resque:resqued:inflight:{wid}:default"
    for tag in ("lost1", "lost2"):
        client.redis.rpush(key, json.dumps({"class": "PhpJob", "args": [{"tag": tag}], "id": tag}))
    client.redis.close()
    server.stop()
    wait_until(lambda: "Redis unavailable" in log_text(proc), message="the outage noticed")
    server.start()
    client = Resque(server.url)
    wait_until(lambda: client.redis.get("resque:stat:processed") == b"2", timeout=20,
               message="the reclaimed jobs to run")
    assert [e.split(":")[1] for e in log_entries(client.redis) if e.startswith("perform:")] == ["lost1", "lost2"]
    assert client.redis.lrange(key, 0, -1) == [] and client.redis.llen("resque:failed") == 0
    assert "reply was lost went back to the head of their queue" in log_text(proc)
    stop(proc)


def test_a_busy_multi_queue_worker_still_takes_jobs_in_priority_order(procs, redis_url, r, resque):
    # The next job is taken with the last outcome (one Lua call over the
    # queues in order): a job on "high" always goes before one on "low".
    proc = procs.resqued(redis_url, queue="high,low")
    wid = wait_registered(r, proc, "high,low")
    resque.enqueue("low", "Slow", {"seconds": 30})
    wait_log(r, "started:")
    for n in range(3):
        resque.enqueue("low", "PhpJob", {"tag": f"low{n}"})
        resque.enqueue("high", "PhpJob", {"tag": f"high{n}"})
    r.rpush("test:release", 1)
    wait_log(r, "perform:", 6)
    tags = [e.split(":")[1] for e in log_entries(r) if e.startswith("perform:")]
    assert tags == ["high0", "high1", "high2", "low0", "low1", "low2"]
    wait_until(lambda: r.get("resque:stat:processed") == b"7", message="every outcome recorded")
    assert inflight(r, wid, "high") == [] and inflight(r, wid, "low") == []
    stop(proc)


def test_a_busy_star_worker_notices_a_new_queue_within_a_second_or_so(procs, redis_url, r, resque):
    # "*" is every queue, alphabetically. A worker that never runs out of
    # jobs re-reads the list of queues at least once a second.
    proc = procs.resqued(redis_url, queue="*")
    resque.enqueue("zzz", "PhpJob", {"tag": "first"})
    wait_registered(r, proc, "*")
    wait_log(r, "perform:first")
    resque.enqueue_many("zzz", "Sleeper", [{"seconds": 0.05}] * 100)  # ~5 s of work
    wait_log(r, "slept")
    resque.enqueue("aaa", "PhpJob", {"tag": "new-queue"})
    wait_log(r, "perform:new-queue", timeout=4)
    assert r.llen("resque:queue:zzz") > 0  # it did not wait for "zzz" to drain
    stop(proc, timeout=20)


def test_a_worker_stopping_while_redis_is_down_leaves_its_jobs_to_the_next_prune(procs, persistent_redis):
    server = persistent_redis
    fast_prune = {"RESQUED_HEARTBEAT_INTERVAL": "1"}  # the prune lock lasts one interval
    client, proc, wid = worker_on(procs, server, fast_prune)
    key = f"resque:resqued:inflight:{wid}:default"
    # As if the worker had taken a job whose reply it never saw.
    client.redis.rpush(key, json.dumps({"class": "PhpJob", "args": [{"tag": "stranded"}], "id": "s1"}))
    client.redis.close()
    server.stop()
    wait_until(lambda: "Redis unavailable" in log_text(proc), message="the outage noticed")
    assert stop(proc, signal.SIGQUIT, timeout=20) == 0
    server.start()
    client = Resque(server.url)
    # It could neither empty its lists nor unregister: it is still listed...
    assert client.redis.sismember("resque:workers", wid) and client.redis.llen(key) == 1
    # ...so the next worker's prune (same host, pid gone) recovers the job.
    second = procs.resqued(server.url, extra_env=fast_prune)
    wait_until(lambda: any(e.startswith(b"perform:stranded:") for e in client.redis.lrange("test:log", 0, -1)),
               timeout=20, message="the stranded job to run")
    assert client.redis.llen(key) == 0 and not client.redis.sismember("resque:workers", wid)
    stop(second)


def test_recovery_first_ends_the_dead_workers_connections(redis_url, r, resque):
    # A command the worker sent just before it died, still unread by Redis,
    # must not run after its in-flight list was settled (an outcome
    # transaction also takes the next job): recovery ends its connections first.
    import redis
    from resqued.resque.recovery import client_name
    wid = "deadhost:4242:default"
    leftover = redis.Redis.from_url(redis_url, client_name=client_name(wid))
    leftover.ping()
    r.rpush(f"resque:resqued:inflight:{wid}:default", json.dumps({"class": "PhpJob", "args": [], "id": "x1"}))
    settled = Recovery(r, resque.keys).recover(wid, "test")
    assert settled == [("requeue", "x1")]
    assert [c for c in r.client_list() if c.get("name") == client_name(wid)] == []


def test_a_worker_names_its_connections_after_its_id(procs, redis_url, r):
    proc = procs.resqued(redis_url, queue="a,b")
    wid = wait_registered(r, proc, "a,b")
    wait_until(lambda: any(c.get("name") == wid for c in r.client_list()), message="a named connection")
    stop(proc)


def test_a_stopped_worker_is_not_pruned_by_its_neighbour_and_runs_its_job_once(procs, redis_url, r, resque,
                                                                              tmp_path):
    """SIGSTOP (as a long GC pause or a frozen VM) for longer than five
    heartbeats: a neighbour on the same host sees the pid is still a
    worker, so it neither prunes it nor requeues its job; continued, the
    worker records the job, once."""
    fast = {"RESQUED_HEARTBEAT_INTERVAL": "1"}
    stopped = procs.resqued(redis_url, queue="slow", extra_env=fast)
    wid = wait_registered(r, stopped, queues="slow")
    mark = tmp_path / "job"
    job_id = resque.enqueue("slow", "FileSleep", {"path": str(mark), "seconds": 2}, track_status=True)
    wait_until(lambda: (tmp_path / "job.started").exists(), message="the job to start")
    os.kill(stopped.pid, signal.SIGSTOP)
    try:
        # Serves the same queue: a requeued job would run again here, at once.
        neighbour = procs.resqued(redis_url, queue="slow", extra_env=fast)
        wait_registered(r, neighbour, queues="slow")

        def beat_age():
            seconds, micros = r.time()
            beat = r.hget("resque:workers:heartbeat", wid)
            return float("inf") if beat is None else seconds + micros / 1e6 - wire.parse_heartbeat(beat)
        # Eight of its beats missed, with the neighbour pruning every second.
        wait_until(lambda: beat_age() > 8, timeout=20, message="the stopped worker's beat to go stale")
        assert r.sismember("resque:workers", wid), "a live worker was pruned"
        assert f"worker {wid}: no heartbeat for" in log_text(neighbour)   # said once, for a person to look
        assert len(inflight(r, wid, "slow")) == 1 and r.llen("resque:queue:slow") == 0
        assert inflight(r, worker_id(neighbour, "slow"), "slow") == []
    finally:
        os.kill(stopped.pid, signal.SIGCONT)
    wait_until(lambda: resque.status(job_id)["code"] == wire.STATUS_COMPLETE, message="the job's outcome")
    assert r.get("resque:stat:processed") == b"1" and failures(r) == []
    assert inflight(r, wid, "slow") == [] and (tmp_path / "job.done").exists()
    stop(neighbour)
    stop(stopped)
