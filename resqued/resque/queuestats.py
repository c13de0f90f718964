"""Queue figures, read from Redis in one place for every reader: each
queue's length and the age of its oldest job (its latency), and the totals
(processed, failed, the failed list's length, workers registered, the
global pause). ``resquectl top``, the metrics exporter and the dashboard
all read them here, so that they agree.

Resque pushes with RPUSH and pops from the left: a queue's oldest job is
its index 0. Its age is Redis's clock minus the payload's ``queue_time``
(php-resque's and resqued's payloads carry one; Ruby's do not: the age is
then None, shown as ``-``). Redis's clock, not the reader's: every reader
on every host then reports the same figure.

Never KEYS: the queue names come from the ``queues`` set (or the caller),
and every figure for them comes back in one pipeline. A payload at a
queue's head that is not JSON, a ``queue_time`` that is not a number, or a
queue key that is not a list gives no age (or an ``error``), never an
exception: these are read from other people's data.
"""

import json
import math
import time
from dataclasses import asdict, dataclass

from resqued.resque.keys import Keys


@dataclass(frozen=True)
class QueueFigures:
    name: str
    length: int
    # Seconds since the oldest waiting job was enqueued; None when the
    # queue is empty or its oldest payload carries no readable queue_time.
    latency: float | None
    # Why the queue could not be read (its key is not a list, say); its
    # length is then 0.
    error: str | None = None


@dataclass(frozen=True)
class QueueStats:
    time: float                # Redis's clock when read (epoch seconds)
    queues: list               # QueueFigures, in the order asked (by name, from the queues set)
    queue_count: int           # how many queues the queues set names (every page)
    processed: int             # stat:processed: jobs ever done
    failed: int                # stat:failed: jobs ever failed
    failures: int              # entries in the failed list now
    workers: int               # workers registered (any host, any language)
    paused: bool               # Resque's pause-all-workers key says pause

    def as_dict(self) -> dict:
        """JSON-ready: plain numbers, times as epoch seconds."""
        return asdict(self)


def queue_names(client, keys: Keys) -> list[str]:
    """Every queue the ``queues`` set names, sorted."""
    return sorted(name.decode(errors="replace") for name in client.smembers(keys.queues))


def read(client, keys: Keys, queues=None, start: int = 0, count: int | None = None) -> QueueStats:
    """The figures of ``queues`` (names), or else of the queues set's names
    sorted, ``count`` of them from ``start`` (all by default: a dashboard
    pages 1,000 queues with these), with the totals. One pipeline for the
    figures (after one SMEMBERS when the names are not given)."""
    if queues is None:
        names = queue_names(client, keys)
        names = names[start:] if count is None else names[start:start + count]
    else:
        names = list(queues)
    pipe = client.pipeline(transaction=False)
    pipe.time()
    pipe.get(keys.processed)
    pipe.get(keys.failed_count)
    pipe.llen(keys.failed)
    pipe.scard(keys.workers)
    pipe.scard(keys.queues)
    pipe.get(keys.pause_all)
    for name in names:
        pipe.llen(keys.queue(name))
        pipe.lindex(keys.queue(name), 0)
    # A key of the wrong type (someone's own) answers an error in its place,
    # not an exception for the whole read; a lost connection still raises.
    replies = pipe.execute(raise_on_error=False)
    clock, processed, failed, failures, workers, queue_count, pause = replies[:7]
    if isinstance(clock, Exception):
        raise clock
    now = clock[0] + clock[1] / 1e6
    figures = []
    for i, name in enumerate(names):
        length, head = replies[7 + 2 * i:9 + 2 * i]
        error = next((str(reply) for reply in (length, head) if isinstance(reply, Exception)), None)
        if error is not None:
            figures.append(QueueFigures(name, 0, None, error))
        else:
            figures.append(QueueFigures(name, length, oldest_age(head, now)))
    return QueueStats(time=now, queues=figures, queue_count=_count(queue_count), processed=_count(processed),
                      failed=_count(failed), failures=_count(failures), workers=_count(workers),
                      paused=pause_requested(pause))


def oldest_age(raw, now: float) -> float | None:
    """The age at ``now`` of the job whose payload is ``raw``: None without
    a payload, or one with no readable ``queue_time``. An enqueuer whose
    clock runs ahead of Redis's makes a job look younger than zero: 0."""
    queue_time = queue_time_of(raw)
    return None if queue_time is None else max(0.0, now - queue_time)


def queue_time_of(raw, now: float | None = None) -> float | None:
    """A payload's ``queue_time`` (epoch seconds), or None (see
    plausible_queue_time). ``raw``: the payload's JSON."""
    if raw is None:
        return None
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):   # UnicodeDecodeError is a ValueError
        return None
    return plausible_queue_time(payload.get("queue_time") if isinstance(payload, dict) else None, now)


MAX_CLOCK_AHEAD = 86400.0   # an enqueuer's clock this far ahead of ours is no clock: its queue_time is garbage


def plausible_queue_time(value, now: float | None = None) -> float | None:
    """A decoded payload's ``queue_time`` as epoch seconds, or None unless
    it is a finite number in (0, now + 1 day). The one reading of it for
    every reader (the worker's wait, queue latency here and in the
    exporter): it comes from other people's enqueuers, so a 400-digit
    integer (float() raises OverflowError), NaN, -1e308 or "Infinity" must
    give no figure rather than a crash or a poisoned histogram sum.
    php-resque and resqued write a number; Ruby's Oj has been seen to
    write such a float back as a string, so a numeric string counts too."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        value = float(value)
    except (ValueError, OverflowError):
        return None
    limit = (time.time() if now is None else now) + MAX_CLOCK_AHEAD
    return value if math.isfinite(value) and 0 < value < limit else None


def pause_requested(value) -> bool:
    """Whether the value of Resque's ``pause-all-workers`` key pauses the
    workers, as Ruby reads it (``get(...).to_s.strip.casecmp('true').zero?``):
    resqued's workers (worker/reserve.py) and resquectl read it here."""
    return isinstance(value, bytes) and value.strip().lower() == b"true"


def _count(value) -> int:
    """A counter as Resque stores it (an integer string); 0 when missing,
    or when the key holds something else (it is no count of ours)."""
    if isinstance(value, int):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0

