"""Recording what happened to a job, in Resque's keys, as one pipeline.

php-resque and Ruby Resque each count failures differently (php counts a dirty
exit, Ruby does not; neither records a child killed by OOM the same way). We
record every failure the same way: a ``failed`` entry, ``stat:failed`` +1
(global and per worker), and a failed status for tracked jobs.
"""

import logging
import time

from resqued.resque import jobstatus, wire
from resqued.resque.retried import ATTEMPT, retry_command, retry_refused


log = logging.getLogger("resqued.resque")

# How often to say again that a stat counter refused to count.
COUNTER_WARN_INTERVAL = 60.0
_counter_warned: dict = {}   # key -> time.monotonic() of the last warning


class Failure:
    """Why a job failed, as the failure entry will show it. ``lineage``:
    the exception's class names, itself first (jobs/job.exception_lineage). ``retry``:
    (due time, next attempt) when this attempt is retried instead (set by
    worker/retrying.py); ``attempts``: the runs a job that had retries made."""

    retry = None
    attempts = None
    lineage = None      # the exception's class and base names, when the job raised one

    def __init__(self, exception: str, error: str, backtrace=None):
        self.exception = exception
        self.error = error
        self.backtrace = list(backtrace or [])

    def __repr__(self):
        return f"{self.exception}: {self.error}"


# What happens to the job of a worker that died holding it (recovery.py);
# here, not there, so that config validation needs no redis-py.
ON_LOST = ("requeue", "fail")    # the first is the default
DEFAULT_MAX_LOST = 3

# Resque's names for failures that the worker, not the job, detects; resque-web
# users know them, and Ruby's retry tooling matches on them.
DIRTY_EXIT = "Resque::DirtyExit"
PRUNED_DIRTY_EXIT = "Resque::PruneDeadWorkerDirtyExit"
INVALID_PAYLOAD = "resqued.InvalidPayload"
UNKNOWN_JOB = "resqued.UnknownJob"
JOB_TIMEOUT = "resqued.JobTimeout"      # jobs/timeouts.JobTimeout


def add_outcome(pipe, keys, worker_id: str, queue: str, payload, failure: Failure | None,
                processed: bool = True) -> None:
    """Queue the commands that record a finished job on ``pipe`` (a redis-py
    pipeline or a ``direct.Batch``: anything with ``execute_command``). The
    status update is sent for every job with an id: it writes nothing when
    the job has no record, and a record may be written after its job was
    queued, even after it was taken (php-resque's order)."""
    if failure is not None and failure.retry is not None:
        pipe.execute_command(*retry_command(keys, worker_id, queue, payload, failure, *failure.retry))
    elif failure is not None:
        extra = None
        if failure.attempts is not None:
            # The runs it had, beside the entry's payload, which drops its
            # attempt: a requeue from the failed list starts afresh.
            extra = {"attempts": failure.attempts}
            payload = {key: value for key, value in payload.items() if key != ATTEMPT}
        pipe.execute_command("RPUSH", keys.failed, wire.failure_record(
            payload, failure.exception, failure.error, failure.backtrace, worker_id, queue, extra=extra))
        pipe.execute_command("INCRBY", keys.failed_count, 1)
        pipe.execute_command("INCRBY", keys.worker_failed(worker_id), 1)
    status_key = keys.job_status(payload)
    if status_key is not None and (failure is None or failure.retry is None):
        code = wire.STATUS_FAILED if failure is not None else wire.STATUS_COMPLETE
        jobstatus.add_update(pipe, status_key, code, expire=wire.STATUS_TTL)
    if processed:
        pipe.execute_command("INCRBY", keys.processed, 1)
        pipe.execute_command("INCRBY", keys.worker_processed(worker_id), 1)


def check_outcome_replies(commands, replies) -> None:
    """Raise the first error reply among ``replies`` (to ``commands``, an
    outcome's transaction) unless it is a stat counter's. A counter whose key
    holds no integer (someone SET it) refuses INCRBY; the transaction's other
    commands were applied all the same (Redis runs every command of a MULTI),
    so the job is recorded: a counter is not worth stopping the worker, which
    would retry or crash on every job. Said once per COUNTER_WARN_INTERVAL.
    A retry the script turned into a final failure is said too."""
    for command, reply in zip(commands, replies):
        if retry_refused(command, reply):
            # The worker logged "retry in N s" before the transaction; correct it.
            log.error("the retry could not be scheduled (%s): the attempt was recorded as the job's final "
                      "failure", retry_refused(command, reply))
        if not isinstance(reply, Exception):   # an error reply (no redis-py here: config imports this)
            continue
        if command[0] != "INCRBY":
            raise reply
        key = command[1]
        now = time.monotonic()
        if now - _counter_warned.get(key, -COUNTER_WARN_INTERVAL) >= COUNTER_WARN_INTERVAL:
            _counter_warned[key] = now
            log.warning("stat counter %s holds no integer (%s): jobs are not counted there until it is "
                        "deleted or reset", key, reply)
