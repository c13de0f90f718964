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
lose it), counts it, and says so at most once per LOG_EVERY seconds. It
then sends no WAIT for QUIET_AFTER_SHORT seconds (those writes count as
not replicated too): a primary left without a replica, as right after a
failover, would otherwise cost every write the whole timeout; so it costs
a worker at most one timeout a second. WAIT
is not strong consistency (Redis' own docs say so): a failover may still
promote a replica that had not acknowledged, or lose what was written
after the last WAIT.
"""

import logging
import time

log = logging.getLogger("resqued.worker")

LOG_EVERY = 60.0
QUIET_AFTER_SHORT = 1.0


class ReplicaWait:
    def __init__(self, worker_id: str, replicas: int, timeout: float):
        self.worker_id = worker_id
        self.replicas = replicas
        self.timeout_ms = max(1, round(timeout * 1000))
        self.short = 0            # writes fewer than ``replicas`` acknowledged in time, since the start
        self._unsaid = 0          # of those, the ones no log line counted yet
        self._said_at = None
        self._quiet_until = 0.0   # no WAIT before this (monotonic): the last one came back short
        self._sent = 0            # WAITs the last commands() gave, whose replies split() takes
        self._skipped = False     # the last commands() gave none, being quiet

    def commands(self) -> list[tuple]:
        """What to send right after the writes: nothing when off, or quiet
        after a short WAIT (the writes then count as not replicated)."""
        self._skipped = bool(self.replicas) and time.monotonic() < self._quiet_until
        wanted = [("WAIT", self.replicas, self.timeout_ms)] if self.replicas and not self._skipped else []
        self._sent = len(wanted)
        return wanted

    def split(self, replies: list, judge: bool = True) -> list:
        """``replies`` of writes followed by the last ``commands()``: judge
        the WAIT's reply (``judge`` False: nothing was written, nothing to
        judge) and return the others."""
        sent, skipped = self._sent, self._skipped
        self._sent, self._skipped = 0, False
        if skipped and judge:   # written while quiet: not replicated, as far as we know
            self.short += 1
            self._unsaid += 1
        if not sent:
            return replies
        if judge:
            self.judge(replies[-1])
        return replies[:len(replies) - sent]

    def judge(self, reply) -> None:
        """The reply to WAIT: how many replicas have our writes (or an error)."""
        if not isinstance(reply, Exception) and int(reply) >= self.replicas:
            return
        self.short += 1
        self._unsaid += 1
        now = time.monotonic()
        self._quiet_until = now + QUIET_AFTER_SHORT
        if self._said_at is not None and now - self._said_at < LOG_EVERY:
            return
        got = reply if isinstance(reply, Exception) else f"{int(reply)} of {self.replicas} replica(s)"
        log.warning("worker %s: WAIT: %s acknowledged within %d ms: %d write(s) of outcomes or takes stood on "
                    "the primary alone (%d since the start); a failover now could lose them", self.worker_id,
                    got, self.timeout_ms, self._unsaid, self.short)
        self._said_at, self._unsaid = now, 0
