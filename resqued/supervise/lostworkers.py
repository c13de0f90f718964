"""A list of workers that died without unregistering, and the recovery of
the jobs they had reserved (see recovery.py): env mode's supervisor keeps
one, and each of the master's recovery runs (recoveryruns.py) is one.

While Redis is away the supervisor retries once a second and goes on managing
workers meanwhile: a slow or absent Redis never stalls its loop for long (2 s
socket timeouts)."""

import logging
import time

import redis

from resqued.redisio.connection import connect
from resqued.resque.client import Resque
from resqued.resque.recovery import Recovery
from resqued.resque.presence import unregister_commands

log = logging.getLogger("resqued.supervise")

RETRY = 1.0


class LostWorkers:
    def __init__(self, down: bool = False):
        """``down``: Redis was already found unavailable (and said so)."""
        self.pending: list[tuple[str, str]] = []   # (worker id, why)
        self.retry_at = 0.0
        self._resque = None
        self._down = down

    def __bool__(self) -> bool:
        return bool(self.pending)

    def add(self, worker_id: str, why: str) -> None:
        self.pending.append((worker_id, why))

    def recover(self, config) -> bool:
        """Try now; True when nothing is left pending."""
        if not self.pending or time.monotonic() < self.retry_at:
            return not self.pending
        try:
            resque = self._client(config)
            recovery = Recovery(resque.redis, resque.keys, config.on_lost, config.max_lost)
            while self.pending:
                worker_id, why = self.pending[0]
                recovery.recover(worker_id, why)
                pipe = resque.redis.pipeline(transaction=False)
                unregister_commands(pipe, resque.keys, worker_id)
                pipe.execute()
                self.pending.pop(0)
            if self._down:
                log.warning("Redis is back: lost jobs recovered")
                self._down = False
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            if not self._down:
                log.error("cannot recover the jobs of %d dead workers yet: Redis unavailable (%s); retrying",
                          len(self.pending), exc)
                self._down = True
            self.retry_at = time.monotonic() + RETRY
        return not self.pending

    def give_up(self) -> None:
        log.error("giving up on recovering %d dead workers' jobs: they stay in their in-flight "
                  "lists, and the next worker that prunes recovers them", len(self.pending))
        self.pending.clear()

    def _client(self, config):
        url, namespace = config.redis_url, config.namespace
        if self._resque is None or (self._resque.url, self._resque.keys.namespace) != (url, namespace):
            self._resque = Resque(url, namespace, redis=connect(url, socket_timeout=2, socket_connect_timeout=2))
        return self._resque
