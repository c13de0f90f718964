"""Moving due delayed jobs to their queues: the scheduler's one step, also
``resquectl delayed run``.

A batch is read (LRANGE), each job is turned into its queue payload here,
and one Lua script then checks that the list still starts with exactly what
was read and, only then, trims it, drops the jobs' ``timestamps:`` index
entries, pushes them to their queues (SADD queues) and removes the timestamp
once its list is empty. resque-scheduler does the same compare-and-move with
WATCH/MULTI (lib/resque/scheduler.rb:241-283); a script also checks the
master lock in the same step. A scheduler killed anywhere has moved a whole
batch or none of it: no job is lost or doubled.

A job moves as resqued's enqueue writes one (class, args, id, queue_time,
php-resque 1.3's prefix, and any other field it carried, less ``queue``):
Ruby's worker reads class and args and ignores the rest, as php-resque's
scheduler also enqueues with an id and a queue_time. A job that cannot be
decoded, or names no queue, goes to the failed list with its raw text.
"""

import json
import logging
import time

import redis

from resqued.resque import wire
from resqued.resque.delayed import DelayedKeys, _member_ts
from resqued.resque.outcome import INVALID_PAYLOAD

log = logging.getLogger("resqued.resque")

# INCRBY refuses a string that is not a whole number, and it runs after a
# batch's earlier jobs were pushed: the count is checked with the types, or
# every retry of the batch would push those jobs again.
_LUA_NOT_A_COUNT = """
local function not_a_count(key)
  local v = redis.call('GET', key)
  return v and (not string.match(v, '^-?%d+$') or #v > 18)
end
"""

# KEYS: schedule, delayed:<ts>, queues, failed, stat:failed, the two lock keys
# ARGV: ts member, timestamps: prefix, index member, queue: prefix, lock value
#       ('' unguarded), n, then per job: raw, queue ('' = failed), data
# Returns n moved; -1 the lock is not ours; -2 the list changed since it was
# read; {'wrongtype', key} a destination is not of its type. Every check
# comes before the first write: a script stops at an error, keeping its
# writes, and must not stop halfway.
_MOVE = _LUA_NOT_A_COUNT + """
if ARGV[5] ~= '' and (redis.call('GET', KEYS[6]) ~= ARGV[5] or redis.call('GET', KEYS[7]) ~= ARGV[5]) then
  return -1
end
local n = tonumber(ARGV[6])
if n > 0 then
  local head = redis.call('LRANGE', KEYS[2], 0, n - 1)
  if #head < n then return -2 end
  for i = 1, n do
    if head[i] ~= ARGV[4 + 3 * i] then return -2 end
  end
end
local want = {[KEYS[1]] = 'zset', [KEYS[3]] = 'set', [KEYS[4]] = 'list', [KEYS[5]] = 'string'}
for i = 1, n do
  local q = ARGV[5 + 3 * i]
  if q ~= '' then want[ARGV[4] .. q] = 'list' end
end
for key, kind in pairs(want) do
  local t = redis.call('TYPE', key).ok
  if t ~= kind and t ~= 'none' then return {'wrongtype', key} end
end
if not_a_count(KEYS[5]) then return {'wrongtype', KEYS[5]} end
for i = 1, n do
  local raw, q, data = ARGV[4 + 3 * i], ARGV[5 + 3 * i], ARGV[6 + 3 * i]
  local index = ARGV[2] .. raw
  if redis.call('TYPE', index).ok == 'set' then redis.call('SREM', index, ARGV[3]) end
  if q == '' then
    redis.call('RPUSH', KEYS[4], data)
    redis.call('INCRBY', KEYS[5], 1)
  else
    redis.call('RPUSH', ARGV[4] .. q, data)
    redis.call('SADD', KEYS[3], q)
  end
end
if n > 0 then redis.call('LTRIM', KEYS[2], n, -1) end
if redis.call('LLEN', KEYS[2]) == 0 then redis.call('ZREM', KEYS[1], ARGV[1]) end
return n
"""

# One job, wherever it is in its list: KEYS as _MOVE's (no locks), ARGV: raw,
# queue ('' = failed), data, timestamps: prefix, index member, ts member.
_MOVE_ONE = _LUA_NOT_A_COUNT + """
local want = {[KEYS[1]] = 'zset', [KEYS[3]] = 'set', [KEYS[4]] = 'list', [KEYS[5]] = 'string'}
if ARGV[2] ~= '' then want[KEYS[6]] = 'list' end
for key, kind in pairs(want) do
  local t = redis.call('TYPE', key).ok
  if t ~= kind and t ~= 'none' then return {'wrongtype', key} end
end
if not_a_count(KEYS[5]) then return {'wrongtype', KEYS[5]} end
if redis.call('TYPE', KEYS[2]).ok ~= 'list' or redis.call('LREM', KEYS[2], 1, ARGV[1]) == 0 then return 0 end
local index = ARGV[4] .. ARGV[1]
if redis.call('TYPE', index).ok == 'set' and redis.call('LPOS', KEYS[2], ARGV[1]) == false then
  redis.call('SREM', index, ARGV[5])
end
if ARGV[2] == '' then
  redis.call('RPUSH', KEYS[4], ARGV[3])
  redis.call('INCRBY', KEYS[5], 1)
else
  redis.call('RPUSH', KEYS[6], ARGV[3])
  redis.call('SADD', KEYS[3], ARGV[2])
end
if redis.call('LLEN', KEYS[2]) == 0 then redis.call('ZREM', KEYS[1], ARGV[6]) end
return 1
"""

BATCH = 1000
LOCK_LOST = -1
CHANGED = -2
# A timestamp skipped for a key of the wrong type is looked at again this much later.
SKIP_SECONDS = 60.0


class WrongType(Exception):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _decode(raw) -> dict:
    """A delayed job, its ``args`` made a list as Ruby's scheduler does
    (lib/resque/scheduler.rb:308: a hash is one argument, Array(args))."""
    try:
        return wire.decode_payload(raw)
    except wire.InvalidPayload as exc:
        if "'args' is a JSON" not in str(exc):
            raise
    item = json.loads(raw)
    item["args"] = [] if item["args"] is None else [item["args"]]
    return item


class Mover:
    """Moves due delayed jobs; ``owner`` names it in failure entries."""

    def __init__(self, redis, keys, owner: str, batch: int = BATCH):
        self.redis = redis
        self.keys = keys
        self.dkeys = DelayedKeys(keys)
        self.owner = owner
        self.batch = batch
        self._move = redis.register_script(_MOVE)
        self._move_one = redis.register_script(_MOVE_ONE)
        self._skipped: dict[bytes, float] = {}   # ts member -> when to look again
        self._warned: set[str] = set()
        self._bad_queues: set[str] = set()

    # -- the scheduler's loop ----------------------------------------------
    def next_due(self) -> float | None:
        """The earliest timestamp in the schedule that is not skipped."""
        self._forget_skips()
        found = self._schedule(self.redis.zrange, self.dkeys.schedule, 0, len(self._skipped), withscores=True)
        return next((score for member, score in found if member not in self._skipped), None)

    def move_due(self, now: float, lock_value: str = "", stopping=lambda: False) -> int | None:
        """Move every job due by ``now``; how many moved (failed ones too),
        or None when the lock was found not ours (nothing more moved).
        ``stopping()`` true ends it between batches."""
        self._forget_skips()
        moved, limit = 0, int(now)
        while not stopping():
            members = self._schedule(self.redis.zrangebyscore, self.dkeys.schedule, "-inf", limit,
                                     start=0, num=len(self._skipped) + 16)
            due = [m for m in members if m not in self._skipped]
            if not due:
                return moved
            for member in due:
                done = self.move_timestamp(member, lock_value, stopping)
                if done is None:
                    return None
                moved += done
        return moved

    def move_timestamp(self, member, lock_value: str = "", stopping=lambda: False) -> int | None:
        """Move every job of one timestamp (``member`` as the schedule holds
        it); None if the lock was not ours."""
        member = member if isinstance(member, bytes) else str(member).encode()
        ts = _member_ts(member)
        if ts is None:
            self._skip(member, f"schedule member {member!r} of {self.dkeys.schedule} is not a whole "
                               "number of seconds: skipped")
            return 0
        key = self.dkeys.delayed(ts)
        moved = 0
        while True:
            try:
                raws = self.redis.lrange(key, 0, self.batch - 1)
            except redis.ResponseError as exc:
                if "WRONGTYPE" not in str(exc):
                    raise
                self._skip(member, f"{key} is not a list: timestamp {ts} skipped")
                return moved
            try:
                result = self._run_batch(member, ts, key, raws, lock_value)
            except WrongType as exc:
                if exc.key == self.keys.failed_count:
                    self._skip(member, f"{exc.key} is not a whole number: timestamp {ts} skipped "
                                       "(a job there goes to the failed list, which counts it)")
                    return moved
                if not exc.key.startswith(self.dkeys.queue_prefix):
                    self._skip(member, f"{exc.key} is not of its type: timestamp {ts} skipped")
                    return moved
                queue = exc.key[len(self.dkeys.queue_prefix):]
                self._warn(exc.key, f"{exc.key} is not a list: its delayed jobs go to the failed list")
                self._bad_queues.add(queue)
                continue
            if result == LOCK_LOST:
                return None
            if result == CHANGED:
                continue    # removed or moved meanwhile: read again
            moved += result
            if len(raws) < self.batch or stopping():
                return moved

    def _run_batch(self, member: bytes, ts: int, key: str, raws: list, lock_value: str) -> int:
        now = time.time()
        args = [member, self.dkeys.timestamps_prefix, self.dkeys.index_member(ts), self.dkeys.queue_prefix,
                lock_value, len(raws)]
        for raw in raws:
            queue, data = self.queue_entry(raw, ts, now)
            args += [raw, queue, data]
        locks = self.dkeys.master_locks if lock_value else (key, key)
        result = self._move(keys=[self.dkeys.schedule, key, self.keys.queues, self.keys.failed,
                                  self.keys.failed_count, *locks], args=args)
        if isinstance(result, list):
            raise WrongType(result[1].decode(errors="replace"))
        return result

    # -- resquectl delayed run ---------------------------------------------
    def move_one(self, ts: int, raw: bytes) -> bool:
        """Move one job (its stored bytes) of timestamp ``ts`` now; False if
        it is no longer there."""
        queue, data = self.queue_entry(raw, ts, time.time())
        key = self.dkeys.delayed(ts)
        result = self._move_one(
            keys=[self.dkeys.schedule, key, self.keys.queues, self.keys.failed, self.keys.failed_count,
                  self.keys.queue(queue) if queue else key],
            args=[raw, queue, data, self.dkeys.timestamps_prefix, self.dkeys.index_member(ts), str(ts)])
        if isinstance(result, list):
            raise WrongType(result[1].decode(errors="replace"))
        return result == 1

    # -- one job's queue payload -------------------------------------------
    def queue_entry(self, raw: bytes, ts: int, now: float) -> tuple[str, str]:
        """(queue, payload) for a job to move, or ('', failure entry)."""
        item = None
        try:
            item = _decode(raw)
            queue = item.get("queue")
            if not isinstance(queue, str) or not queue:
                raise wire.InvalidPayload("payload has no 'queue' string")
            if queue in self._bad_queues:
                raise wire.InvalidPayload(f"{self.keys.queue(queue)} is not a list")
        except wire.InvalidPayload as exc:
            log.error("delayed job due at %s cannot be queued, failed: %s", ts, exc)
            record = item if item is not None else wire.raw_payload_record(raw)
            queue = item.get("queue") if item is not None else None
            return "", wire.failure_record(
                record, INVALID_PAYLOAD, f"delayed job due at {wire.utc_iso(ts)} cannot be queued: {exc}",
                [], self.owner, queue if isinstance(queue, str) else "")
        job_id = item.get("id")
        payload = {"class": item["class"], "args": item.get("args", []),
                   "id": job_id if isinstance(job_id, str) and job_id else wire.new_job_id()}
        if "prefix" in item:
            payload["prefix"] = item["prefix"]
        payload["queue_time"] = round(now, 6)
        for field, value in item.items():
            if field != "queue":
                payload.setdefault(field, value)
        return queue, wire.dumps(payload)

    def _schedule(self, command, *args, **options):
        """A read of the schedule; WrongType if it is not a sorted set."""
        try:
            return command(*args, **options)
        except redis.ResponseError as exc:
            if "WRONGTYPE" in str(exc):
                raise WrongType(self.dkeys.schedule) from None
            raise

    # -- keys of the wrong type: skipped, said once -------------------------
    def _skip(self, member: bytes, message: str) -> None:
        self._skipped[member] = time.monotonic() + SKIP_SECONDS
        self._warn(member, message)

    def _warn(self, what, message: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            log.error("%s", message)

    def _forget_skips(self) -> None:
        now = time.monotonic()
        for member in [m for m, until in self._skipped.items() if until <= now]:
            del self._skipped[member]
