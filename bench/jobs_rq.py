"""RQ jobs for the bench (the harness and the workers import it from bench/)."""

import os
import time


def noop(*args):
    pass


def pid_job(key):
    import redis
    redis.Redis.from_url(os.environ["BENCH_REDIS_URL"]).rpush(key, os.getpid())


def latency_job(enqueued_at):
    started = time.time()
    import redis
    redis.Redis.from_url(os.environ["BENCH_REDIS_URL"]).rpush("bench:latency", f"{enqueued_at!r} {started!r}")


def write_key(i):
    """drain1_io: build a redis-py client and write one key, as jobs_resqued.WriteKeyJob."""
    import redis
    redis.Redis.from_url(os.environ["BENCH_REDIS_URL"]).set(f"bench:io:{i}", 1)
