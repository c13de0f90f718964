"""wait_replicas (worker/replicawait.py): the worker sends WAIT after its
writes that matter, against a real primary and replica (tests/sentinels.py,
without sentinels)."""

import signal

import pytest
import psutil
import redis

from conftest import log_text, stop, wait_until
from resqued.redisio import direct
from resqued.resque.client import Resque
from resqued.worker import replicawait
from resqued.worker.replicawait import ReplicaWait



def test_then_runs_after_exec_and_its_replies_follow(pair):
    client = redis.Redis.from_url(pair.primary_url)
    replies = direct.execute(client, [("SET", "k", "v"), ("INCR", "n")], transaction=True,
                             then=[("WAIT", 1, 5000)])
    assert replies == [b"OK", 1, 1]   # WAIT inside MULTI would not wait: after EXEC it does
    assert pair.client("replica").get("k") == b"v"


def test_a_wait_whose_reply_times_out_is_its_error_reply_not_an_error_of_the_committed_commands(pair):
    # A WAIT longer than the socket timeout: EXEC has committed; raising would
    # make the worker send its outcome again (a job counted or failed twice).
    client = redis.Redis.from_url(pair.primary_url, socket_timeout=0.2)
    replica = psutil.Process(pair.servers["replica"][0].pid)
    replica.suspend()
    try:
        replies = direct.execute(client, [("INCR", "n")], transaction=True, retry=False, raise_errors=False,
                                 then=[("WAIT", 1, 2000)])
    finally:
        replica.resume()
    assert replies[0] == 1 and isinstance(replies[1], redis.TimeoutError)
    assert client.get("n") == b"1"   # once; the connection was dropped and is made again


def test_a_short_wait_is_counted_said_once_per_interval_and_then_skipped_a_while(caplog, monkeypatch):
    wait = ReplicaWait("w", 1, 0.1)
    assert wait.commands() == [("WAIT", 1, 100)] and ReplicaWait("w", 0, 0.1).commands() == []
    assert wait.split([b"OK", 1]) == [b"OK"] and wait.short == 0
    assert wait.commands() and wait.split([b"OK", 0]) == [b"OK"] and wait.short == 1
    # Quiet a while after a short one: no WAIT, each write counted as not replicated.
    assert wait.commands() == [] and wait.split([b"OK"]) == [b"OK"] and wait.short == 2
    assert wait.commands() == [] and wait.split([], judge=False) == [] and wait.short == 2   # nothing written
    monkeypatch.setattr(replicawait, "QUIET_AFTER_SHORT", 0.0)
    wait.judge(redis.ResponseError("WAIT cannot be used with replica instances"))
    assert wait.short == 3 and wait.commands() == [("WAIT", 1, 100)]
    assert len([r for r in caplog.records if "WAIT" in r.getMessage()]) == 1


@pytest.mark.parametrize("queues", ["waited", "other,waited"])   # a blocking take; the multi-queue first take
def test_a_worker_waits_for_the_replica_and_loses_nothing_when_it_lags(procs, pair, queues):
    """The replica stopped (SIGSTOP): each WAIT ends at its timeout, the
    worker says so, and every job still runs exactly once."""
    resque = Resque(pair.primary_url)
    replica_process = pair.servers["replica"][0]
    replica_process.send_signal(signal.SIGSTOP)
    try:
        for i in range(3):
            resque.enqueue_call("waited", "add", i, 1)
        worker = procs.resqued(pair.primary_url, queue=queues,
                               extra_env={"RESQUED_WAIT_REPLICAS": "1", "RESQUED_WAIT_TIMEOUT": "0.2"})
        primary = pair.client("primary")
        wait_until(lambda: primary.llen("test:log") == 3, timeout=15, message="the jobs run")
        wait_until(lambda: int(primary.get("resque:stat:processed") or 0) == 3, timeout=15,
                   message="their outcomes recorded")
        assert "WAIT: 0 of 1 replica(s) acknowledged within 200 ms" in log_text(worker), log_text(worker)[-2000:]
    finally:
        replica_process.send_signal(signal.SIGCONT)
    # Caught up, the replica has every outcome; none ran twice.
    resque.enqueue_call("waited", "add", 10, 1)
    wait_until(lambda: int(pair.client("replica").get("resque:stat:processed") or 0) == 4, timeout=15,
               message="the replica caught up")
    assert stop(worker) == 0
    assert sorted(primary.lrange("test:log", 0, -1)) == [b"add:1", b"add:11", b"add:2", b"add:3"]
    assert not primary.keys("resque:resqued:inflight:*")
