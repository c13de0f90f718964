"""Recurring jobs (pool.yml's ``schedule:``, config/schedule.py): each
occurrence enqueued once across the fleet, however many schedulers run the
same file.

Only the master lock's holder enqueues, and each occurrence is claimed in
the same Lua script that pushes its job: the script checks that the lock is
still ours and that the schedule's last claimed occurrence
(``<ns>:resqued:schedule_claims``, name -> epoch seconds) is older, then
records it and pushes the job. A scheduler killed anywhere has enqueued an
occurrence and recorded it, or neither: its successor sees the claim, and
enqueues each occurrence after it that is not yet ``catch_up`` seconds old.

Missed occurrences: one that fell while a holder was dead and its lock not
yet expired (a failover, a restart) is enqueued late, by whoever takes the
lock within ``catch_up`` (the lock's TTL plus CATCH_UP_SLACK); older ones
are skipped, as resque-scheduler (rufus-scheduler) skips every occurrence
that fell while no scheduler ran. A schedule never claimed starts at the
first occurrence after it was loaded.

Like Ruby's scheduler, it also writes ``<ns>:delayed:last_enqueued_at``
(name -> Ruby's ``Time.now.to_s``), which resque-web's Schedule tab reads.
"""

import logging
import math
import time

from resqued.resque import wire
from resqued.resque.delayed import DelayedKeys

log = logging.getLogger("resqued.scheduler")

# A standby tries the lock every half second: it takes over within the TTL and this.
CATCH_UP_SLACK = 2.0
# Occurrences enqueued per schedule per look: a long catch-up goes on at the next.
MAX_PER_LOOK = 1000
LOCK_LOST = -1

# KEYS: claims, last_enqueued_at, queues, the queue, the two lock keys.
# ARGV: lock value, name, occurrence, queue name, payload, Ruby's time text.
# 1 enqueued, 0 already claimed, -1 the lock is not ours, {'wrongtype', key}.
# Every check before the first write: a script stops at an error, keeping
# its writes.
_CLAIM = """
if redis.call('GET', KEYS[5]) ~= ARGV[1] or redis.call('GET', KEYS[6]) ~= ARGV[1] then return -1 end
local want = {[KEYS[1]] = 'hash', [KEYS[2]] = 'hash', [KEYS[3]] = 'set', [KEYS[4]] = 'list'}
for key, kind in pairs(want) do
  local t = redis.call('TYPE', key).ok
  if t ~= kind and t ~= 'none' then return {'wrongtype', key} end
end
local last = tonumber(redis.call('HGET', KEYS[1], ARGV[2]) or '')
if last and last >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[6])
redis.call('SADD', KEYS[3], ARGV[4])
redis.call('RPUSH', KEYS[4], ARGV[5])
return 1
"""


def read_claims(redis, keys, names) -> dict[str, int | None]:
    """name -> its last claimed occurrence (epoch seconds), or None."""
    if not names:
        return {}
    values = redis.hmget(keys.schedule_claims, list(names))
    return {name: _int(value) for name, value in zip(names, values)}


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class Recurring:
    def __init__(self, redis, keys, entries, catch_up: float):
        self.redis = redis
        self.keys = keys
        self.dkeys = DelayedKeys(keys)
        self.catch_up = catch_up
        self._claim = redis.register_script(_CLAIM)
        self._warned: set[str] = set()
        self._never: set[str] = set()     # entries said to have no next occurrence
        self.load(entries)

    def load(self, entries) -> None:
        """A new schedule (at start, on HUP): looked at at once."""
        self.entries = tuple(entries)
        self.loaded_at = time.time()
        self.due_at = 0.0 if self.entries else math.inf

    def wake(self) -> None:
        """Look at once (just became the lock holder: catch up)."""
        if self.entries:
            self.due_at = 0.0

    def enqueue_due(self, now: float, lock_value: str) -> int | None:
        """Enqueue every occurrence due by ``now`` not yet claimed; how many,
        or None if the lock was not ours. Sets ``due_at``, the next look."""
        if now < self.due_at or not self.entries:
            return 0
        claims = read_claims(self.redis, self.keys, [e.name for e in self.entries])
        floor = now - self.catch_up
        enqueued = 0
        for entry in self.entries:
            last = claims[entry.name]
            after = max(self.loaded_at if last is None else last, floor)
            for occurrence in self._occurrences(entry, after, now):
                result = self._enqueue(entry, occurrence, lock_value)
                if result == LOCK_LOST:
                    return None
                if result is None:
                    break       # its queue is not a list: said once, tried at the next look
                enqueued += result
        self.due_at = min((self._next_after(e, now) for e in self.entries), default=math.inf)
        return enqueued

    # A cron croniter finds no next date for (validation calls it once, but
    # a date it can reach now may be beyond it later) must not stop the
    # other entries nor the delayed moves: said once, that entry skipped.
    def _occurrences(self, entry, after: float, now: float) -> list[int]:
        try:
            return entry.occurrences(after, now, MAX_PER_LOOK)
        except ValueError as exc:     # croniter's CroniterError is one
            self._warn_never(entry, exc)
            return []

    def _next_after(self, entry, now: float) -> float:
        try:
            return entry.next_after(now)
        except ValueError as exc:
            self._warn_never(entry, exc)
            return math.inf

    def _warn_never(self, entry, exc) -> None:
        if entry.name not in self._never:
            self._never.add(entry.name)
            log.error("schedule %s (%s) has no next occurrence, skipped: %s", entry.name, entry.rule, exc)

    def _enqueue(self, entry, occurrence: int, lock_value: str) -> int | None:
        payload = wire.dumps(wire.payload(entry.job_class, entry.args, wire.new_job_id()))
        result = self._claim(
            keys=[self.keys.schedule_claims, self.dkeys.last_enqueued_at, self.keys.queues,
                  self.keys.queue(entry.queue), *self.dkeys.master_locks],
            args=[lock_value, entry.name, occurrence, entry.queue, payload, wire.started_time()])
        if isinstance(result, list):
            key = result[1].decode(errors="replace")
            if key not in self._warned:
                self._warned.add(key)
                log.error("%s is not of its type: schedule %s is not enqueued until it is", key, entry.name)
            return None
        if result == 1:
            log.info("enqueued %s (schedule %s, %s) on %s", entry.job_class, entry.name,
                     wire.utc_iso(occurrence), entry.queue)
        return result
