"""What the exporter reads from Redis at each scrape, in two round trips
and no KEYS: the queues' set, then one pipeline with each queue's length
and oldest job, the failed list's length and the registered workers.

Short socket timeouts and no retry: with Redis away, a scrape still answers
within a second, saying resqued_redis_up 0.
"""

import logging
import time
from dataclasses import dataclass, field

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from resqued.redisio.connection import connect
from resqued.resque.keys import Keys
from resqued.resque.queuestats import queue_time_of

log = logging.getLogger("resqued.exporter")

TIMEOUT = 0.25    # seconds, to connect and for each reply: a scrape's Redis part stays under a second


@dataclass
class QueueFigures:
    length: int
    oldest: float | None     # the queue_time of the job at its head (the oldest), if it has one


@dataclass
class RedisFigures:
    up: bool = False
    queues: dict = field(default_factory=dict)   # name -> QueueFigures
    failed: int = 0
    workers: int = 0


class RedisSide:
    def __init__(self, url: str, namespace: str):
        self.keys = Keys(namespace)
        self.client = connect(url, fixed_timeout=TIMEOUT, retry=Retry(NoBackoff(), 0))
        self._said_down = False

    def read(self) -> RedisFigures:
        try:
            figures = self._read()
        except redis.RedisError as exc:
            if not self._said_down:
                log.warning("metrics: Redis unavailable (%s); resqued_redis_up is 0 until it is back", exc)
                self._said_down = True
            return RedisFigures(up=False)
        self._said_down = False
        return figures

    def _read(self) -> RedisFigures:
        names = sorted(name.decode(errors="replace") for name in self.client.smembers(self.keys.queues))
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.llen(self.keys.queue(name))
            pipe.lindex(self.keys.queue(name), 0)
        pipe.llen(self.keys.failed)
        pipe.scard(self.keys.workers)
        *per_queue, failed, workers = pipe.execute()
        queues = {name: QueueFigures(per_queue[2 * i], queue_time_of(per_queue[2 * i + 1]))
                  for i, name in enumerate(names)}
        return RedisFigures(up=True, queues=queues, failed=failed, workers=workers)


def latency(figures: QueueFigures, now: float | None = None) -> float | None:
    """Seconds the oldest job of a queue has waited (0 when it is empty;
    None when its head has no queue_time)."""
    if figures.length == 0:
        return 0.0
    if figures.oldest is None:
        return None
    return max(0.0, (time.time() if now is None else now) - figures.oldest)
