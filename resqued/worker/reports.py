"""A worker's reports to its master: one JSON line per change of state
(idle, busy with which job, paused, redis-down, stopping) on a pipe the
master reads in its loop (master/workerprocess.Child.read_reports).

The pipe is non-blocking: a master busy elsewhere never stalls a job, and a
report it misses is said again by the next. A line equal to the last one is
not sent: an idle worker says "idle" before every wait, and each line
wakes the master (64 idle workers woke it 13 times a second).

Every line fits in PIPE_BUF (4 KiB), which a pipe writes whole or not at
all: a longer one could be written in part, and its rest, lost, would merge
with the next line into one the master cannot read. What makes a line long
is text from a payload (a job id is whatever the enqueuer chose), so long
strings are cut, saying how long they were.

The last line of all announces the worker's exit (announce_exit).
"""

import json
import os
import select
import time

LINE_LIMIT = select.PIPE_BUF    # 4096 on Linux
TEXT_LIMIT = 200                # characters of one string in a report, at first
ANNOUNCE_TIMEOUT = 5.0          # a master that reads nothing for this long is stuck or gone


class MasterReports:
    def __init__(self, fd: int | None):
        self.fd = fd                 # None: no master (env mode's single worker)
        self.last_state = {}         # the last state but a Redis outage: said again once Redis is back
        self._last_line = b""
        if fd is not None:
            os.set_blocking(fd, False)

    def send(self, state: dict, **always) -> bool:
        """Report ``state`` (with ``always``: pid, jobs, paused). False when
        nobody reads any more: the master is gone."""
        if state.get("state") != "redis-down":
            self.last_state = dict(state)
        if self.fd is None:
            return True
        line = report_line({**state, **always})
        if line == self._last_line:
            return True
        try:
            os.write(self.fd, line)
            self._last_line = line
        except BrokenPipeError:
            return False
        except OSError:
            pass  # full (the master is busy): the next report says it all
        return True


def report_line(report: dict) -> bytes:
    """``report`` as one JSON line of at most LINE_LIMIT bytes."""
    line = json.dumps(report).encode() + b"\n"
    limit = TEXT_LIMIT
    while len(line) > LINE_LIMIT and limit:
        # Escaped, a character takes up to 12 bytes: halve until it fits.
        line = json.dumps(_shortened(report, limit)).encode() + b"\n"
        limit //= 2
    return line


def _shortened(value, limit: int):
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]}… ({len(value)} characters)"
    if isinstance(value, dict):
        return {key: _shortened(item, limit) for key, item in value.items()}
    if isinstance(value, list):
        return [_shortened(item, limit) for item in value]
    return value


def busy(job) -> dict:
    """The report of a worker running ``job`` (in a child, or inline)."""
    return {"state": "busy", "job": {"class": job.job_class, "id": job.id, "queue": job.queue},
            "since": time.time()}


def announce_exit(fd: int, code: int, settled: bool) -> None:
    """Say that the worker is about to exit with ``code`` of its own accord
    (``settled``: it leaves nothing in its in-flight lists).
    The master takes an exit code as the worker's only when announced so
    (supervise/states.judge_exit). Unlike a state report, this one is never
    said again: wait for room in the pipe, for a while."""
    # "state" too: a master of an older version (during `resquectl restart`)
    # reads it as a state report.
    line = json.dumps({"state": "stopping", "exit": code, "settled": settled}).encode() + b"\n"
    deadline = time.monotonic() + ANNOUNCE_TIMEOUT
    while True:
        try:
            os.write(fd, line)   # shorter than PIPE_BUF: written whole or not at all
            return
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            select.select([], [fd], [], left)
        except OSError:
            return   # the master is gone: nobody to tell
