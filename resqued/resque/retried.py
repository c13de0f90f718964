"""A retried attempt's Redis commands, for the outcome's transaction
(outcome.py): the job becomes a delayed job in resque-scheduler's keys
(delayed.py's layout), due at its retry time, with the next attempt number
in its payload and the same ``id``, so that a tracked status follows it.

It writes no failed entry and counts no ``stat:failed``: only the final
failure does (resque-retry's MultipleWithRetrySuppression keeps the retried
attempts out of the failed list, though Ruby's worker still counts them).
"""

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


def add_retry(pipe, keys, queue: str, payload: dict, due: int, attempt: int) -> None:
    """Queue on ``pipe`` the commands that schedule attempt ``attempt`` of
    the job at ``due`` (whole seconds), as Delayed.push writes a job."""
    delayed = DelayedKeys(keys)
    encoded = encodings(retry_item(queue, payload, attempt))[0]
    pipe.execute_command("RPUSH", delayed.delayed(due), encoded)
    pipe.execute_command("SADD", delayed.timestamps(encoded), delayed.index_member(due))
    pipe.execute_command("ZADD", delayed.schedule, due, str(due))
    status_key = keys.job_status(payload)
    if status_key is not None:
        # Waiting again, as when it was first enqueued: failed only at the end.
        jobstatus.add_update(pipe, status_key, wire.STATUS_WAITING)
