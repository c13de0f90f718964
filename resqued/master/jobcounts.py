"""max_jobs for a command pool (docs/command-pools.md#recycling): how many
jobs each command worker has done, read from Redis for the master.

A php-resque or Ruby Resque worker counts its jobs only in Redis, in
``stat:processed:<worker id>`` (after every job, failed ones included), and
the master does not talk to Redis. So every COUNT_EVERY seconds, while some
command worker has a job limit, the spawner forks a child of its own that
reads those counts and writes them on a pipe as JSON
(spawner/entrypoints.count_jobs_main); the master reads the pipe to its
end, never waiting on it, and commandworkers.check recycles a worker whose
count reached its limit (a QUIT, between jobs). While Redis is away the
counts stand still, as do the workers, which take no job without it.
"""

import json
import logging
import os
import time

from resqued.master.spawnerlink import SpawnerError
from resqued.process.logs import event

log = logging.getLogger("resqued.master")

COUNT_EVERY = 2.0    # seconds between two reads: a worker may do a few jobs past its limit
GIVE_UP_AFTER = 10.0  # a read that has not answered by then (a hung Redis) is abandoned


class JobCounts:
    def __init__(self):
        self.counts: dict[int, int] = {}   # worker pid -> jobs done, as last read
        self.fd = None                     # the pipe of the read under way
        self.buffer = b""
        self.started_at = 0.0
        self.next_at = 0.0
        self.down = False                  # Redis away, already said

    def start_due(self, spawner, children, config, now: float | None = None) -> None:
        """Start a read if one is due: some live command worker has a job
        limit (``max_jobs``), none is under way, the spawner is ready."""
        now = time.monotonic() if now is None else now
        if self.fd is not None and now - self.started_at > GIVE_UP_AFTER:
            log.warning("the command workers' job counts did not come within %gs: reading them again",
                        GIVE_UP_AFTER, extra=event("job_counts_late"))
            self._close()
        if self.fd is not None or not spawner.ready or now < self.next_at:
            return
        # Asked on every turn of the master's loop: no walk over its workers
        # unless a pool could have any to count (those of a pool since
        # changed or removed are stopping, and are not counted).
        if not any(pool.command and pool.max_jobs for pool in config.pools):
            self.counts = {}   # none to count: a pid reused later must not inherit a count
            return
        # started_wall: registrations by the same pid before it are another worker's (dirtyexit.py)
        workers = [[c.pid, c.worker_id, c.started_wall] for c in children
                   if getattr(c, "max_jobs", None) and not c.stopping]
        if not workers:
            self.counts = {}
            return
        self.next_at = now + COUNT_EVERY
        spec = {"redis_url": config.redis_url, "namespace": config.namespace, "workers": workers,
                "title": spawner.title.replace("spawner", "job counts", 1)}
        try:
            _, self.fd = spawner.count_jobs(spec)
        except SpawnerError as exc:
            log.warning("cannot read the command workers' job counts: %s", exc, extra=event("job_counts_failed"))
            return
        os.set_blocking(self.fd, False)
        self.started_at, self.buffer = now, b""

    def fileno(self) -> int:
        return self.fd

    # -- as a HelperProcess (helperprocess.py) --------------------------
    def waitables(self) -> list:
        return [self] if self.fd is not None else []

    def on_readable(self, waitable) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                break
            self.buffer += chunk
        data = self.buffer
        self._close()
        self._take(data)

    def deadline(self):
        return None   # the loop turns every second anyway

    def owns(self, pid: int) -> bool:
        return False  # the spawner's own child: it reaps it

    def on_exit(self, pid: int, code: int, how: str) -> None:
        pass

    def _take(self, data: bytes) -> None:
        try:
            answer = json.loads(data)
            counts = {int(pid): int(jobs) for pid, jobs in answer.get("counts", {}).items()}
        except (ValueError, TypeError, AttributeError):
            log.warning("the command workers' job counts came unreadable: %r", data[:200])
            return
        if "error" in answer:
            if not self.down:
                log.warning("cannot read the command workers' job counts: Redis unavailable (%s)", answer["error"],
                            extra=event("job_counts_redis_down", error=str(answer["error"])))
            self.down = True
            return
        self.down = False
        self.counts = counts

    def _close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
        self.fd, self.buffer = None, b""
