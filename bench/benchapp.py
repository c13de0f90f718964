"""The Celery app for the bench: `celery -A benchapp worker` from bench/.
Redis transport only (no result backend); the queue is "bench"."""

import os
import time

from celery import Celery
from celery.signals import worker_ready


def broker_url(url: str) -> str:
    """Celery's (kombu's) spelling of a redis URL: unix:///x -> redis+socket:///x."""
    if url.startswith("unix://"):
        return "redis+socket://" + url[len("unix://"):]
    return url


app = Celery("benchapp", broker=broker_url(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:1/0")))
app.conf.update(
    task_default_queue="bench",
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=True,
)


def _client():
    import redis
    return redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])


@app.task(name="benchapp.noop")
def noop(*args):
    pass


@app.task(name="benchapp.write_key")
def write_key(i):
    """drain1_io: build a redis-py client and write one key, as jobs_resqued.WriteKeyJob."""
    _client().set(f"bench:io:{i}", 1)


@app.task(name="benchapp.pid_job")
def pid_job(key):
    _client().rpush(key, os.getpid())


@app.task(name="benchapp.latency_job")
def latency_job(enqueued_at):
    started = time.time()
    _client().rpush("bench:latency", f"{enqueued_at!r} {started!r}")


@worker_ready.connect
def _ready(**_):
    # The harness waits for this before it pushes work.
    _client().rpush("bench:celery:ready", os.getpid())
