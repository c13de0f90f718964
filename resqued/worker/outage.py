"""A worker riding out a Redis outage: retry what it must do with backoff
(ending at once on a signal), say once that Redis is away and once that it
is back, and then start afresh what the outage may have broken.

A mixin of Worker (worker.py), like childwatch.py: it reads and sets the
worker's state (its id, reserver, registration, the reclaim flag).
"""

import logging
import time

import redis

log = logging.getLogger("resqued.worker")

REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError)
MAX_BACKOFF = 5.0


class RedisOutages:
    def _redis(self, action, until_shutdown: bool = False):
        """Run ``action``, retrying with backoff while Redis is unreachable.
        With ``until_shutdown``, give up (return None) once a stop is asked."""
        delay = 0.1
        while True:
            try:
                result = action()
            except REDIS_ERRORS as exc:
                self._note_outage(exc)
                self._idle_wait(delay)
                self._dispatch_signals()
                if until_shutdown and self.shutdown:
                    return None
                delay = min(delay * 2, MAX_BACKOFF)
                continue
            if self._outage_since is not None:
                self._end_outage()
            return result

    def _note_outage(self, exc) -> None:
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            log.error("worker %s: Redis unavailable (%s); retrying", self.id, exc)
        self._reclaim_due = True

    def _end_outage(self) -> None:
        log.warning("worker %s: Redis is back after %.1fs", self.id, time.monotonic() - self._outage_since)
        self._outage_since = None
        # The reserve's own connections outlived the old server: start them afresh.
        self.reserver.close()
        # A Redis restarted without persistence forgot us: register again.
        try:
            self.registration.register(recover_own=False)
        except REDIS_ERRORS as exc:
            self._note_outage(exc)
