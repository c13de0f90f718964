"""A retried attempt's Redis commands, for the outcome's transaction
(outcome.py): the job becomes a delayed job in resque-scheduler's keys
(delayed.py's layout), due at its retry time, with the next attempt number
in its payload and the same ``id``, so that a tracked status follows it.

It writes no failed entry and counts no ``stat:failed``: only the final
failure does (resque-retry's MultipleWithRetrySuppression keeps the retried
attempts out of the failed list, though Ruby's worker still counts them).
"""

import os
import time

from resqued.resque import jobstatus, wire
from resqued.resque.delayed import DelayedKeys, encodings

ATTEMPT = "attempt"    # the payload field: which run this is, 1 (or absent) the first


def attempt_of(payload) -> int:
    """The payload's attempt number; 1 when absent or not a whole number >= 1."""
    value = payload.get(ATTEMPT) if isinstance(payload, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else 1


def retry_item(queue: str, payload: dict, attempt: int) -> dict:
    """The delayed entry: class, args, queue first (resque-scheduler's
    order), then the payload's other fields (the id among them), less its
    queue_time, which the scheduler sets again as it moves the job."""
    item = {"class": payload.get("class"), "args": payload.get("args", []), "queue": queue}
    item.update((key, value) for key, value in payload.items()
                if key not in ("class", "args", "queue", "queue_time", ATTEMPT))
    item[ATTEMPT] = attempt
    return item


# A MULTI does not stop at a failing command: had the delayed keys a wrong
# type, RPUSH could land, ZADD fail and the in-flight LREM after it still
# run, stranding the job. So the retry is one script that checks every type
# before its first write and, when one is wrong, records the attempt as the
# final failure instead (ARGV[4] and ARGV[10] around the key's name): the
# job is in one place or the other when it leaves the in-flight list.
# KEYS: delayed:<due>, its timestamps: index, the schedule, failed,
#       stat:failed, stat:failed:<worker>, the status key (or the schedule)
# ARGV: entry, index member, due, failure entry's head, now, tracked ('1' or ''),
#       waiting code, failed code, failed status TTL, failure entry's tail
_RETRY = jobstatus.LUA_UPDATE_STATUS + """
local bad
for i, kind in ipairs({'list', 'set', 'zset'}) do
  local t = redis.call('TYPE', KEYS[i]).ok
  if t ~= kind and t ~= 'none' then bad = KEYS[i]; break end
end
if not bad then
  redis.call('RPUSH', KEYS[1], ARGV[1])
  redis.call('SADD', KEYS[2], ARGV[2])
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[3])
  if ARGV[6] ~= '' then update_status(KEYS[7], ARGV[7], ARGV[5], 0) end
  return 1
end
local entry = ARGV[4] .. string.gsub(bad, '[\\\\"]', '\\\\%0') .. ARGV[10]
redis.call('RPUSH', KEYS[4], entry)
for i = 5, 6 do
  local v = redis.call('GET', KEYS[i])
  if not v or string.match(v, '^%d+$') then redis.call('INCRBY', KEYS[i], 1) end
end
if ARGV[6] ~= '' then update_status(KEYS[7], ARGV[8], ARGV[5], ARGV[9]) end
return 0
"""


def retry_command(keys, worker_id: str, queue: str, payload: dict, failure, due: int, attempt: int) -> tuple:
    """The command that schedules attempt ``attempt`` of the job at ``due``
    (whole seconds), as Delayed.push writes a job, or, when a delayed key is
    of the wrong type, records ``failure`` as the job's final one."""
    delayed = DelayedKeys(keys)
    encoded = encodings(retry_item(queue, payload, attempt))[0]
    final = {key: value for key, value in payload.items() if key != ATTEMPT}
    # Where the script names the key it found wrong: unique, so that no
    # payload or backtrace text can be taken for it.
    marker = f"<wrong-key-{os.urandom(16).hex()}>"   # not uuid: it loads platform into the master
    error = (f"{failure.error} (its retry, attempt {attempt} at {wire.utc_iso(due)}, could not be "
             f"scheduled: {marker} is not of its type)")
    entry = wire.failure_record(final, failure.exception, error, failure.backtrace, worker_id, queue,
                                extra={"attempts": attempt - 1})
    head, _, tail = entry.partition(marker)
    status_key = keys.job_status(payload)
    # EVAL, not EVALSHA: in a transaction a NOSCRIPT error could not be retried alone.
    return ("EVAL", _RETRY, 7, delayed.delayed(due), delayed.timestamps(encoded), delayed.schedule,
            keys.failed, keys.failed_count, keys.worker_failed(worker_id), status_key or delayed.schedule,
            encoded, delayed.index_member(due), str(due), head, int(time.time()),
            "1" if status_key is not None else "", wire.STATUS_WAITING, wire.STATUS_FAILED, wire.STATUS_TTL, tail)


def retry_refused(command, reply) -> str | None:
    """When ``command`` is ``retry_command``'s and ``reply`` says it fell back
    to a final failure: which keys it could not write to; else None."""
    if reply == 0 and len(command) > 5 and command[0] == "EVAL" and command[1] is _RETRY:
        return f"{command[3]}, {command[4]} or {command[5]} holds a value of the wrong type"
    return None
