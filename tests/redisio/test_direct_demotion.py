"""Replies read straight off hiredis (redisio/direct.py) on a Sentinel
pool's connection: a primary that turned replica answers READONLY, which
must read as redis-py's SentinelManagedConnection says it (a dropped
connection, so that the next one asks the sentinels), not as a refusal to
retry on the same connection. A real primary and a real sentinel."""

import os
import signal
import subprocess
import time

import pytest
import redis
from redis.sentinel import Sentinel

from resqued.redisio import direct
from sentinels import SERVICE, free_port
from tests.redis_server import find_redis_server


@pytest.fixture
def primary_and_sentinel(tmp_path):
    ports, procs = [free_port(), free_port()], []
    conf = tmp_path / "sentinel.conf"
    conf.write_text(f"sentinel monitor {SERVICE} 127.0.0.1 {ports[0]} 1\n")
    common = ["--bind", "127.0.0.1", "--dir", str(tmp_path), "--daemonize", "no"]
    for args in ([find_redis_server(), "--port", str(ports[0]), *common, "--save", "", "--appendonly", "no",
                  "--logfile", str(tmp_path / "primary.log")],
                 [find_redis_server(), str(conf), "--sentinel", "--port", str(ports[1]), *common,
                  "--logfile", str(tmp_path / "sentinel.log")]):
        procs.append(subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True))
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                Sentinel([("127.0.0.1", ports[1])]).discover_master(SERVICE)
                break
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        yield ports
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_readonly_from_a_demoted_primary_drops_the_connection(primary_and_sentinel):
    primary, sentinel = primary_and_sentinel
    client = Sentinel([("127.0.0.1", sentinel)]).master_for(SERVICE)
    held = direct.Held(client)
    assert direct.execute(client, [("SET", "k", "1")], held=held) == [b"OK"]
    # Demoted (as a failover does to the old primary): a replica of a server that is not there.
    redis.Redis("127.0.0.1", primary).execute_command("REPLICAOF", "127.0.0.1", free_port())
    conn = held.take()
    with pytest.raises(redis.ConnectionError, match="previous master"):
        direct.execute(client, [("SET", "k", "2")], retry=False, raise_errors=False, held=held)
    assert conn._sock is None   # the next command reconnects through the sentinel
    client.close()
