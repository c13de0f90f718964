"""A worker riding out a Redis outage: retry what it must do with backoff
(ending at once on a signal), say once that Redis is away and once that it
is back, and then start afresh what the outage may have broken.

``RedisOutage(worker)`` is owned by the worker (``worker.outage``). Its own
state is the outage's start and whether the in-flight lists need
reclaiming; of the worker it reads its id and whether it is stopping, waits
and acts on signals through it, and restarts its reserver and registration.
"""

import logging
import time

import redis

from resqued.protocols.reportpipe import WorkerState
from resqued.redisio import refusals
from resqued.process.logs import event

log = logging.getLogger("resqued.worker")

MAX_BACKOFF = 5.0


class RedisOutage:
    def __init__(self, worker):
        self.worker = worker
        self.since = None          # monotonic time Redis went away; None while it answers
        self.refused = False       # the last failure was a refusal (OOM...), not silence
        # A reply may have been lost, so a job may sit in an in-flight list
        # unknown to the worker: reclaim them before the next reserve (reserve.py).
        self.reclaim_due = False

    def retry(self, action, until_shutdown: bool = False):
        """Run ``action``, retrying with backoff while Redis is unreachable.
        With ``until_shutdown``, give up (return None) once a stop is asked."""
        delay = 0.1
        while True:
            try:
                result = action()
            except redis.RedisError as exc:
                if not refusals.is_outage(exc):
                    raise
                self.note(exc)
                self.worker.idle_wait(delay)
                self.worker.dispatch_signals()
                if until_shutdown and self.worker.shutdown:
                    return None
                delay = min(delay * 2, MAX_BACKOFF)
                continue
            if self.since is not None and self._writes_accepted():
                self._end()
            return result

    def absorb(self, exc: BaseException) -> None:
        """For a caller that goes on without Redis: note an outage, re-raise anything else."""
        if not refusals.is_outage(exc):
            raise exc
        self.note(exc)

    def wait_deferred(self, deferred, what: str) -> None:
        """Read the replies of commands sent ahead (redisio/deferred.py): an
        outage is noted, a refusal of another kind only warned of (``what``
        failed), for a job runs whether or not it was marked."""
        if deferred is None:
            return
        try:
            deferred.wait()
        except redis.RedisError as exc:
            if refusals.is_outage(exc):
                self.note(exc)
            elif isinstance(exc, redis.ResponseError):
                log.warning("worker %s: %s failed: %s", self.worker.id, what, exc)
            else:
                raise

    def note(self, exc) -> None:
        """A Redis command failed for want of Redis (is_outage: away, or
        refusing, e.g. OOM or READONLY)."""
        self.refused = isinstance(exc, redis.ResponseError)
        if self.since is None:
            self.since = time.monotonic()
            log.error("worker %s: Redis unavailable (%s); retrying", self.worker.id, refusals.describe(exc),
                      extra=event("worker_redis_down", worker=self.worker.id, error=refusals.describe(exc)))
            # The master shows it (resquectl status, systemd's STATUS=), and
            # counts the worker as started: READY=1 must not wait for Redis.
            # A job still running keeps showing (status, pause --wait, and the
            # master's judgement of a death mid-job).
            last = self.worker.reports.last_state
            job = last.get("job") if last.get("state") == WorkerState.BUSY else None
            self.worker.report(state=WorkerState.REDIS_DOWN, since=time.time(), error=refusals.describe(exc),
                               job=job)
        self.reclaim_due = True

    def _writes_accepted(self) -> bool:
        """Whether the outage is over. After a refusal (OOM, READONLY, MISCONF)
        reads still work, so the read that just succeeded proves nothing: a
        heartbeat (a write) must go through too, or the log would say "back"
        and "unavailable" at every turn."""
        if not self.refused:
            return True
        try:
            self.worker.registration.heartbeat()
        except redis.RedisError as exc:
            self.absorb(exc)
            return False
        return True

    def _end(self) -> None:
        log.warning("worker %s: Redis is back after %.1fs", self.worker.id, time.monotonic() - self.since,
                    extra=event("worker_redis_back", worker=self.worker.id,
                                duration_ms=round((time.monotonic() - self.since) * 1000)))
        self.since = None
        if self.worker.reports.last_state:
            self.worker.report(**self.worker.reports.last_state)
        # The reserve's own connections outlived the old server: start them afresh.
        self.worker.reserver.close()
        # A Redis restarted without persistence forgot us: register again.
        try:
            self.worker.registration.register(recover_own=False)
        except redis.RedisError as exc:
            if not refusals.is_outage(exc):
                raise
            self.note(exc)
