"""Ruby Resque's global pause switch (``pause-all-workers``), set by people
(resque-web), as a worker reads it while no job is taken: at most once a
second. Every take reads it too (reserve.py), so that no job pushed after
it was set runs; what a take saw saves the next read here.
"""

import time

from resqued.resque.queuestats import pause_requested

PAUSE_KEY_CHECK = 1.0


class PauseKey:
    def __init__(self, worker):
        """``worker``: read for its Redis client, keys, reserver and outage."""
        self.worker = worker
        self.checked_at = 0.0
        self.cached = False

    def read(self) -> bool:
        """Is the switch on?"""
        worker, now = self.worker, time.monotonic()
        seen, worker.reserver.pause_seen = worker.reserver.pause_seen, None
        if seen is not None:
            self.cached, self.checked_at = seen, now
        # During an outage, always ask: a cached answer would read as "Redis is back".
        elif worker.outage.since is not None or now - self.checked_at >= PAUSE_KEY_CHECK:
            self.cached = pause_requested(worker.redis.get(worker.keys.pause_all))
            self.checked_at = now
        return self.cached
