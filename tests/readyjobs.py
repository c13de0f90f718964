"""A job module with a childReady listener (tests/worker/test_child_ready.py):
it opens a redis-py client and an sqlite3 database in each job child before
its job, and logs its pid and time; READY_FAIL=1 (or the file
READY_FAIL_FILE names, while it exists) makes it raise. It takes
resqued's own client at import, so standbys connect it ahead."""

import os
import sqlite3
import time

import redis

import resqued

resque = resqued.client()   # taken in the worker: each standby connects it
warm = {}


@resqued.listen("childReady")
def open_connections():
    if os.environ.get("READY_FAIL") or os.path.exists(os.environ.get("READY_FAIL_FILE", "/nonexistent")):
        raise ConnectionRefusedError("database at db.invalid:5432 refused the connection")
    warm["redis"] = redis.Redis.from_url(os.environ["REDIS_BACKEND"])
    warm["db"] = sqlite3.connect(":memory:")
    warm["redis"].rpush("test:log", f"ready:{os.getpid()}:{time.time()}")


def uses_warm():
    """Says which process opened what it uses, through that very client."""
    warm["db"].execute("select 1")
    warm["redis"].rpush("test:log", f"job:{os.getpid()}:{time.time()}")


def _sockets() -> set:
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found


def fan_out(n):
    """Enqueues ``n`` jobs with resqued's client; logs whether that opened a socket."""
    before = _sockets()
    for i in range(n):
        resqued.enqueue("fanned", "uses_warm", {"i": i})
    opened = len(_sockets() - before)
    resque.redis.rpush("test:log", f"fanned:{os.getpid()}:opened={opened}")
