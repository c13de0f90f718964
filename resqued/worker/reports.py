"""A worker's reports to its master: a state report per change of state
(idle, busy with which job, paused, redis-down, stopping) on a pipe the
master reads in its loop. The messages and their bytes are the report
pipe's protocol (protocols/reportpipe.py); here is how a worker sends them.

The pipe is non-blocking: a master busy elsewhere never stalls a job, and a
report it misses is said again by the next. A line equal to the last one is
not sent: an idle worker says "idle" before every wait, and each line
wakes the master (64 idle workers woke it 13 times a second).

Each finished job (``finished``) is one outcome record, for the master's
metrics. Unlike a state, a record is not said again by the next report:
it waits here until a line carrying it is written (a line of at most
PIPE_BUF bytes is written whole or not at all), so none is lost while the
pipe is full nor counted twice. Records ride on the next state report
(the same state said again when nothing changed); ``flush`` sends what is
left before the worker exits.

The last line of all announces the worker's exit (announce_exit).
"""

import os
import select
import time

from resqued.resque.outcome import DIRTY_EXIT, JOB_TIMEOUT
from resqued.resque.queuestats import plausible_queue_time
from resqued.protocols.reportpipe import (UNKNOWN_CLASS, ExitAnnouncement, JobOutcome, WorkerState,
                                          outcome_record, state_line, state_line_carrying)

ANNOUNCE_TIMEOUT = 5.0          # a master that reads nothing for this long is stuck or gone


class MasterReports:
    def __init__(self, fd: int | None):
        self.fd = fd                 # None: no master (env mode's single worker)
        self.last_state = {}         # the last state but a Redis outage: said again once Redis is back
        self.pending = []            # encoded outcome records no written line carried yet
        self._last_fields = None     # the last state reported, and its line without records
        self._last_plain = b""
        self._last_line = b""        # the last line written, without its records
        if fd is not None:
            os.set_blocking(fd, False)

    def send(self, state: dict, **always) -> bool:
        """Report ``state`` (StateReport's fields, with ``always``: pid, jobs,
        paused). False when nobody reads any more: the master is gone."""
        if state.get("state") != WorkerState.REDIS_DOWN:
            self.last_state = dict(state)
        if self.fd is None:
            return True   # env mode's single worker: nobody to tell, nothing to encode
        fields = {**state, **always}
        line = state_line(fields)   # a field it does not have is a TypeError here
        if line == self._last_line and not self.pending:
            return True
        self._last_fields, self._last_plain = fields, line
        return self._write() is not None

    def finished(self, queue: str, job_class: str | None, outcome: JobOutcome, duration: float,
                 payload, picked: float) -> None:
        """A job ended with ``outcome`` after ``duration`` seconds; it was
        taken at ``picked`` (time.time()). ``job_class``: the class the
        registry resolved, or None. Sent with the next report."""
        if self.fd is None:
            return   # nobody counts
        queued = plausible_queue_time(payload.get("queue_time") if isinstance(payload, dict) else None, picked)
        wait = None if queued is None else picked - queued
        self.pending.append(outcome_record(queue, job_class or UNKNOWN_CLASS, outcome, duration,
                                           None if wait is None else max(0.0, wait)))

    def flush(self, timeout: float = ANNOUNCE_TIMEOUT) -> None:
        """Send the outcome records still pending (the worker is about to
        exit), waiting for room in the pipe for ``timeout`` at most."""
        deadline = time.monotonic() + timeout
        while self.pending and self.fd is not None and self._last_fields is not None:
            written = self._write()
            if written is None:
                return   # nobody reads
            left = deadline - time.monotonic()
            if not written:
                if left <= 0:
                    return
                select.select([], [self.fd], [], left)

    def _write(self) -> bool | None:
        """Write the last state's line, carrying the pending records that
        fit: True written, False not now (full), None nobody reads."""
        line, carried = self._last_plain, 0
        if self.pending:
            line, carried = state_line_carrying(self._last_fields, self.pending, self._last_plain)
        try:
            write_whole(self.fd, line)
        except BrokenPipeError:
            return None
        except OSError:
            return False  # full (the master is busy): the next report says it all, and carries the records
        del self.pending[:carried]
        self._last_line = self._last_plain
        return True


def write_whole(fd: int, line: bytes) -> None:
    """Write ``line`` on the report pipe whole, or raise OSError (a full
    pipe: BlockingIOError). A line of at most PIPE_BUF bytes is written
    whole or not at all (POSIX): a fragment would glue the next line to
    it, and the master would refuse both (their outcome records lost)."""
    assert len(line) <= select.PIPE_BUF, f"a report line of {len(line)} bytes"
    if os.write(fd, line) != len(line):
        raise BlockingIOError("a short write on the report pipe")   # cannot happen below PIPE_BUF


def job_outcome(failure, skipped: bool) -> JobOutcome:
    """How a job that ran ended, from what its execution returned (a
    Failure or None, and whether a hook skipped it)."""
    if failure is None:
        return JobOutcome.SKIPPED if skipped else JobOutcome.DONE
    if failure.exception == JOB_TIMEOUT:
        return JobOutcome.TIMEOUT
    return JobOutcome.DIRTY_EXIT if failure.exception == DIRTY_EXIT else JobOutcome.FAILED


def busy(job) -> dict:
    """The report of a worker running ``job`` (in a child, or inline)."""
    return {"state": WorkerState.BUSY, "job": {"class": job.job_class, "id": job.id, "queue": job.queue},
            "since": time.time()}


def announce_exit(fd: int, code: int, settled: bool) -> None:
    """Say that the worker is about to exit with ``code`` of its own accord
    (``settled``: it leaves nothing in its in-flight lists).
    The master takes an exit code as the worker's only when announced so
    (supervise/states.judge_exit). Unlike a state report, this one is never
    said again: wait for room in the pipe, for a while."""
    line = ExitAnnouncement(code, settled).encode()
    deadline = time.monotonic() + ANNOUNCE_TIMEOUT
    while True:
        try:
            write_whole(fd, line)
            return
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            select.select([], [fd], [], left)
        except OSError:
            return   # the master is gone: nobody to tell
