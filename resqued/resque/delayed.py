"""Delayed jobs in resque-scheduler's Redis layout (php-resque-scheduler's
is the same), so that Ruby, PHP and resqued schedule through one set of keys:

* ``<ns>:delayed_queue_schedule``: a sorted set of whole-second timestamps,
  each its own score;
* ``<ns>:delayed:<ts>``: a list of the jobs due at ``ts``, each the JSON of
  ``{"class", "args", "queue"}`` in that order;
* ``<ns>:timestamps:<that JSON>``: a set of the ``delayed:<ts>`` (without
  the namespace) where that exact job waits, which Ruby's ``remove_delayed``
  reads (php-resque-scheduler writes none; its removal scans every list).

References are to resque-scheduler's lib/resque/scheduler/delaying_extensions.rb
and php-resque-scheduler's lib/ResqueScheduler.php. What moves due jobs to
their queues is delayedmove.py (the scheduler's one atomic step).
"""

import json
import math
import time
from datetime import datetime

from resqued.resque import wire
from resqued.resque.keys import check_queue_name
from resqued.numbers import whole_number

# php-resque's json_encode differs from Ruby's JSON.generate on '/' and on
# non-ASCII text; an entry PHP wrote holds its bytes, not Ruby's.
_PHP_ENCODE = wire.dumps
_RUBY_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode

SCHEDULE = "delayed_queue_schedule"
# resque-scheduler's lock/base.rb: the master lock's name. Ruby builds
# "#{Resque.redis.namespace}:resque_scheduler_master_lock" (locking.rb:93-97)
# and hands it to the namespaced client, which prefixes it again: the key
# in Redis is <ns>:<ns>:resque_scheduler_master_lock. A Redis::Namespace
# too old to prefix EVAL's keys (Resilient's scripts) leaves it at
# <ns>:resque_scheduler_master_lock, which node-resque also uses.
MASTER_LOCK = "resque_scheduler_master_lock"


class DelayedKeys:
    """resque-scheduler's key names under a namespace."""

    def __init__(self, keys):
        p = keys.prefix
        self.schedule = p + SCHEDULE
        self.timestamps_prefix = p + "timestamps:"
        self.delayed_prefix = p + "delayed:"
        self.queue_prefix = keys.queue("")
        self.master_locks = (f"{p}{p}{MASTER_LOCK}", p + MASTER_LOCK)
        # recurring job name -> Ruby's Time.now.to_s of its last enqueue
        # (scheduling_extensions.rb last_enqueued_at), which resque-web shows.
        self.last_enqueued_at = p + "delayed:last_enqueued_at"

    def delayed(self, ts: int) -> str:
        return f"{self.delayed_prefix}{ts}"

    @staticmethod
    def index_member(ts: int) -> str:
        """What a ``timestamps:`` set holds: the list's name without the
        namespace (delaying_extensions.rb:90, through Redis::Namespace)."""
        return f"delayed:{ts}"

    def timestamps(self, encoded) -> bytes:
        if isinstance(encoded, str):
            encoded = encoded.encode()
        return self.timestamps_prefix.encode() + encoded


def timestamp_of(when) -> int:
    """Whole seconds, truncated as Ruby's ``timestamp.to_i`` and PHP's
    ``(int)`` do: a time or a datetime (a naive one is local time)."""
    if isinstance(when, datetime):
        when = when.timestamp()
    if isinstance(when, bool) or not isinstance(when, (int, float)) or not math.isfinite(when):
        raise ValueError(f"invalid time {when!r}: epoch seconds or a datetime")
    if when < 0:
        raise ValueError(f"invalid time {when!r}: before 1970")
    return int(when)


def job_hash(queue: str, job_class: str, args: list) -> dict:
    """delaying_extensions.rb:319 ``job_to_hash_with_queue``: this key order."""
    check_queue_name(queue)
    if not isinstance(job_class, str) or not job_class.strip():
        raise ValueError(f"invalid job class {job_class!r}: a non-empty string")
    return {"class": job_class, "args": list(args), "queue": queue}


def encodings(item: dict) -> list[str]:
    """The bytes an item may be stored as: Ruby's first (what resqued writes,
    so that Ruby's ``remove_delayed`` finds it), then PHP's when it differs."""
    try:
        ruby = _RUBY_ENCODE(item)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"job args for {item.get('class')} are not JSON-serializable: {exc}") from None
    php = _PHP_ENCODE(item)
    return [ruby] if php == ruby else [ruby, php]


# KEYS: schedule, then each timestamp's list and its items' index sets.
# ARGV: n, then per timestamp: its member, the index member, the item count,
# and for each encoding its bytes. LREM every encoding, drop the index entry,
# and, the list empty, the timestamp (delaying_extensions.rb:251-262, 297-311).
_REMOVE = """
local removed, k, a = 0, 2, 2
for t = 1, tonumber(ARGV[1]) do
  local member, index_member, n = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  local list = KEYS[k]
  a, k = a + 3, k + 1
  if redis.call('TYPE', list).ok == 'list' then
    for i = 1, n do
      removed = removed + redis.call('LREM', list, 0, ARGV[a])
      if redis.call('TYPE', KEYS[k]).ok == 'set' then redis.call('SREM', KEYS[k], index_member) end
      a, k = a + 1, k + 1
    end
    if redis.call('LLEN', list) == 0 and redis.call('TYPE', KEYS[1]).ok == 'zset' then
      redis.call('ZREM', KEYS[1], member)
    end
  else
    a, k = a + n, k + n
  end
end
return removed
"""

# KEYS: delayed:<ts>, the job's timestamps: index, the schedule.
# ARGV: the job, the index member, ts. {'wrongtype', key, kind} before any write.
_PUSH = """
for i, kind in ipairs({'list', 'set', 'zset'}) do
  local t = redis.call('TYPE', KEYS[i]).ok
  if t ~= kind and t ~= 'none' then return {'wrongtype', KEYS[i], kind} end
end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[3])
return 1
"""

PAGE = 200


class Delayed:
    """The library side: schedule, inspect and remove delayed jobs."""

    def __init__(self, redis, keys):
        self.redis = redis
        self.keys = DelayedKeys(keys)
        self._remove = redis.register_script(_REMOVE)
        self._push = redis.register_script(_PUSH)

    def push(self, when, queue: str, job_class: str, args: list) -> int:
        """Schedule one job; returns its timestamp. The list, the index and
        the schedule are written in one MULTI (delaying_extensions.rb:85-96
        writes them one by one), by a script that checks their types first:
        a MULTI goes on past a failing ZADD, leaving the job in a list no
        scheduler looks at."""
        ts = timestamp_of(when)
        encoded = encodings(job_hash(queue, job_class, args))[0]
        result = self._push(keys=[self.keys.delayed(ts), self.keys.timestamps(encoded), self.keys.schedule],
                            args=[encoded, self.keys.index_member(ts), ts])
        if isinstance(result, list):
            key = result[1].decode(errors="replace")
            # ValueError, not redis-py's: the master's config code imports this module.
            raise ValueError(f"{key} is not a {result[2].decode()}: the job was not scheduled")
        return ts

    def remove(self, queue: str, job_class: str, args: list, when=None) -> int:
        """Remove every delayed copy of this exact job (at ``when`` only, if
        given); returns how many. Entries are found by their bytes, as Ruby's
        or PHP's encoder wrote them, in every timestamp (PHP keeps no index)."""
        variants = encodings(job_hash(queue, job_class, args))
        if when is not None:
            stamps = [str(timestamp_of(when)).encode()]
        else:
            stamps = self.redis.zrange(self.keys.schedule, 0, -1)
        removed = 0
        for start in range(0, len(stamps), PAGE):
            keys, argv = [self.keys.schedule], [0]
            for member in stamps[start:start + PAGE]:
                ts = _member_ts(member)
                if ts is None:
                    continue
                keys.append(self.keys.delayed(ts))
                keys += [self.keys.timestamps(v) for v in variants]
                argv += [member, self.keys.index_member(ts), len(variants), *variants]
                argv[0] += 1
            removed += self._remove(keys=keys, args=argv)
        return removed

    def count(self) -> int:
        """Jobs waiting in every timestamp (``count_all_scheduled_jobs``)."""
        stamps = self.redis.zrange(self.keys.schedule, 0, -1)
        total = 0
        for start in range(0, len(stamps), PAGE):
            pipe = self.redis.pipeline(transaction=False)
            for ts in map(_member_ts, stamps[start:start + PAGE]):
                if ts is not None:
                    pipe.llen(self.keys.delayed(ts))
            total += sum(n for n in pipe.execute(raise_on_error=False) if isinstance(n, int))
        return total

    def timestamps(self, start: int = 0, count: int = 100) -> list[tuple[int, int]]:
        """(timestamp, jobs waiting there), earliest first, a page of them."""
        if count <= 0:
            return []
        members = self.redis.zrange(self.keys.schedule, start, start + count - 1)
        stamps = [ts for ts in map(_member_ts, members) if ts is not None]
        pipe = self.redis.pipeline(transaction=False)
        for ts in stamps:
            pipe.llen(self.keys.delayed(ts))
        sizes = pipe.execute(raise_on_error=False)
        return [(ts, n if isinstance(n, int) else 0) for ts, n in zip(stamps, sizes)]

    def at(self, when, start: int = 0, count: int = 100) -> list[dict]:
        """The jobs due at ``when``, decoded (an undecodable one as its raw
        text), without removing them."""
        raws = self.redis.lrange(self.keys.delayed(timestamp_of(when)), start, start + count - 1)
        return [decode_item(raw) for raw in raws]

    def next_timestamp(self, at_time=None) -> int | None:
        """The earliest timestamp due by ``at_time`` (default now), or None
        (delaying_extensions.rb:129 ``next_delayed_timestamp``)."""
        limit = timestamp_of(time.time() if at_time is None else at_time)
        found = self.redis.zrangebyscore(self.keys.schedule, "-inf", limit, start=0, num=1)
        return _member_ts(found[0]) if found else None


def decode_item(raw) -> dict:
    try:
        item = json.loads(raw)
    except (TypeError, ValueError):
        item = None
    return item if isinstance(item, dict) else wire.raw_payload_record(raw)


def _member_ts(member) -> int | None:
    """A schedule member as Ruby reads it (``to_i``), or None when it is not
    a whole number of seconds (nothing resque-scheduler or PHP writes)."""
    text = member.decode(errors="replace") if isinstance(member, bytes) else str(member)
    return whole_number(text)
