"""Narrowing what a failover can lose: ``wait_replicas`` (config/settings.py).

Redis replicates asynchronously: a write the primary acknowledged may not
have reached a replica when the primary dies, and Sentinel then promotes a
replica without it. With ``wait_replicas: N`` the worker sends ``WAIT N
timeout`` right after its writes that matter, in the same round trip:

- after the transaction that records a job's outcome (and, while the queue
  is busy, takes the next job: reserve.take_in rides in it), so that both
  the outcome and the take are on N replicas before the next job runs;
- after a take (the blocking BLMOVE, and the multi-queue first take), on
  the connection that took: WAIT covers that connection's own writes.

WAIT only waits: when fewer replicas answer within the timeout, the write
stands on the primary alone, as without the setting. The worker goes on
(it never redoes or undoes a write for that: that would run a job twice or
lose it), counts it, and says so at most once per LOG_EVERY seconds. WAIT
is not strong consistency (Redis' own docs say so): a failover may still
promote a replica that had not acknowledged, or lose what was written
after the last WAIT.
"""

import logging
import time

import redis

log = logging.getLogger("resqued.worker")

LOG_EVERY = 60.0


class ReplicaWait:
    def __init__(self, worker_id: str, replicas: int, timeout: float):
        self.worker_id = worker_id
        self.replicas = replicas
        self.timeout_ms = max(1, round(timeout * 1000))
        self.short = 0            # writes fewer than ``replicas`` acknowledged in time, since the start
        self._unsaid = 0          # of those, the ones no log line counted yet
        self._said_at = None

    def commands(self) -> list[tuple]:
        """What to send right after the writes: nothing when off."""
        return [("WAIT", self.replicas, self.timeout_ms)] if self.replicas else []

    def split(self, replies: list) -> list:
        """``replies`` of writes followed by ``commands()``: judge the WAIT's
        reply and return the others."""
        if not self.replicas:
            return replies
        self.judge(replies[-1])
        return replies[:-1]

    def judge(self, reply) -> None:
        """The reply to WAIT: how many replicas have our writes (or an error)."""
        if not isinstance(reply, Exception) and int(reply) >= self.replicas:
            return
        self.short += 1
        self._unsaid += 1
        now = time.monotonic()
        if self._said_at is not None and now - self._said_at < LOG_EVERY:
            return
        got = reply if isinstance(reply, redis.ResponseError) else f"{int(reply)} of {self.replicas} replica(s)"
        log.warning("worker %s: WAIT: %s acknowledged within %d ms: %d write(s) of outcomes or takes stood on "
                    "the primary alone (%d since the start); a failover now could lose them", self.worker_id,
                    got, self.timeout_ms, self._unsaid, self.short)
        self._said_at, self._unsaid = now, 0
