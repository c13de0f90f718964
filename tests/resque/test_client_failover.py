"""The library client across an outage or a Sentinel failover
(redisio/connection.py's connect_wait): an enqueue waits to connect instead
of raising, and is never sent twice."""

import json
import signal
import socket
import threading
import time

import pytest
import redis

from conftest import wait_until
from resqued import NotReplicated
from resqued.resque.client import Resque


def test_wait_replicas_waits_for_the_replica_or_says_it_did_not_answer(pair):
    resque = Resque(pair.primary_url, wait_replicas=1, wait_timeout=0.2)
    replica = pair.client("replica")
    job_id = resque.enqueue_call("mail", "Send", "one")
    ids = resque.enqueue_many("mail", "Send", [{"n": 1}, {"n": 2}])
    assert replica.llen("resque:queue:mail") == 3   # at once: the enqueues waited for it
    pair.servers["replica"][0].send_signal(signal.SIGSTOP)
    try:
        with pytest.raises(NotReplicated, match="0 of 1 replica") as raised:
            job_id = resque.enqueue_call("mail", "Send", "two")
        assert raised.value.job_ids and raised.value.job_ids[0] != job_id
        with pytest.raises(NotReplicated):
            resque.enqueue_many("mail", "Send", [{"n": 3}])
    finally:
        pair.servers["replica"][0].send_signal(signal.SIGCONT)
    assert pair.client("primary").llen("resque:queue:mail") == 5   # enqueued all the same, once
    assert ids and Resque(pair.primary_url).enqueue("mail", "Send") is not None   # off by default


def test_an_enqueue_during_a_failover_waits_for_the_new_primary(sentinels):
    Resque(sentinels.url, wait_replicas=1, wait_timeout=5.0).enqueue_call("mail", "Send", "before")  # out of the window
    resque = Resque(sentinels.url)
    resque.enqueue_call("mail", "Send", "connected")
    sentinels.kill("primary")
    started = time.monotonic()
    # No retry here: each call waits while the sentinels elect, then succeeds.
    for i in range(5):
        resque.enqueue_call("mail", "Send", f"during{i}")
    Resque(sentinels.url).enqueue_call("mail", "Send", "new client")
    assert time.monotonic() - started < 25
    new_primary = sentinels.client("replica")
    assert new_primary.info("replication")["role"] == "master"
    sent = [json.loads(raw)["args"][0] for raw in new_primary.lrange("resque:queue:mail", 0, -1)]
    # Each once, in order ("connected" may have been lost with the primary: it did not wait for the replica).
    assert [job for job in sent if job != "connected"] == ["before", *[f"during{i}" for i in range(5)], "new client"]


def test_an_enqueue_whose_reply_is_lost_is_not_sent_again(redis_url, r):
    """The server reads the enqueue but answers after the client's timeout
    (DEBUG SLEEP holds it; it then runs what it read): the enqueue raises,
    and the job is queued once, not once per resend."""
    resque = Resque(f"{redis_url}?socket_timeout=0.3")
    resque.enqueue_call("mail", "Send", "warm")    # connected before the server sleeps
    sleeper = redis.Redis.from_url(redis_url, socket_timeout=10)
    asleep = threading.Thread(target=sleeper.execute_command, args=("DEBUG", "SLEEP", 1.5))
    asleep.start()
    probe = redis.Redis.from_url(redis_url, socket_timeout=0.05)

    def sleeping():
        try:
            probe.ping()
        except redis.TimeoutError:
            return True
        return False
    try:
        wait_until(sleeping, timeout=5, message="the server asleep")
        with pytest.raises(redis.TimeoutError):
            resque.enqueue_call("mail", "Send", "once")
    finally:
        asleep.join()
    wait_until(lambda: r.llen("resque:queue:mail") >= 2, timeout=5, message="the enqueue read before the timeout")
    r.ping()
    assert r.llen("resque:queue:mail") == 2


def test_connect_wait_is_bounded(tmp_path):
    resque = Resque(f"unix://{tmp_path}/nobody.sock", connect_wait=0.3)
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        resque.enqueue_call("mail", "Send", "x")
    assert 0.25 <= time.monotonic() - started < 3


def test_connect_wait_by_default_rides_a_failover_but_not_a_dead_plain_server(tmp_path):
    """30 s behind Sentinel (an election takes seconds); 3 s to a plain
    server, whose restart closes its port only for a moment: an app whose
    Redis is down fails its request in seconds, not in half a minute."""
    def waits(resque):
        return resque.redis.connection_pool.connection_class.connect_wait
    assert waits(Resque("redis+sentinel://127.0.0.1:1/resqued")) == 30.0
    assert waits(Resque(f"unix://{tmp_path}/nobody.sock")) == waits(Resque("redis://127.0.0.1:1/0")) == 3.0
    assert waits(Resque("redis://127.0.0.1:1/0", connect_wait=10)) == 10
    plain = Resque(f"unix://{tmp_path}/nobody.sock", connect_wait=None)
    assert not hasattr(plain.redis.connection_pool.connection_class, "connect_wait")
    for wrong in ("30", "Auto", -1, True):
        with pytest.raises(ValueError, match="invalid connect_wait"):
            Resque(f"unix://{tmp_path}/nobody.sock", connect_wait=wrong)


def test_a_try_to_connect_is_bounded_by_the_time_left():
    """A server whose SYNs go unanswered (here a listener whose backlog is
    full, which drops them as an unreachable host does) would hold one try
    for its whole socket_connect_timeout (or the kernel's SYN retries);
    each try gets the time left, so the call raises within connect_wait
    (and the last try)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(address)
            fillers.append(filler)
        probe = socket.socket()
        probe.settimeout(0.3)
        try:
            probe.connect(address)
            pytest.skip("this kernel answers a full backlog: no unanswered connect to test with")
        except socket.timeout:
            pass
        finally:
            probe.close()
        resque = Resque(f"redis://127.0.0.1:{address[1]}/0?socket_connect_timeout=60", connect_wait=0.5)
        started = time.monotonic()
        with pytest.raises((redis.ConnectionError, redis.TimeoutError)):
            resque.enqueue_call("mail", "Send", "x")
        assert time.monotonic() - started < 5
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_a_connect_ahead_does_not_wait(tmp_path):
    """A job child's standby connects ahead (jobs/ownclient.py): one try, so
    that a Redis away holds nothing up; the job's own calls wait."""
    resque = Resque(f"unix://{tmp_path}/nobody.sock", connect_wait=5)
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        resque.connect_ahead()
    assert time.monotonic() - started < 1


def test_an_enqueue_waits_out_a_restart(tmp_path):
    """Redis away for a second: the enqueue that comes meanwhile waits."""
    from redis_server import RedisServer
    server = RedisServer(str(tmp_path / "redis")).start()
    try:
        resque = Resque(server.url, connect_wait=30)   # the waiting, not the default, is under test
        resque.enqueue_call("mail", "Send", "before")
        server.stop()
        restart = threading.Timer(1.0, server.start)
        restart.start()
        try:
            resque.enqueue_call("mail", "Send", "after")
        finally:
            restart.join()
        assert resque.redis.llen("resque:queue:mail") == 1   # no persistence: "before" went with the restart
    finally:
        server.stop()
