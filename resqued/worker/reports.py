"""A worker's reports to its master: a state report per change of state
(idle, busy with which job, paused, redis-down, stopping) on a pipe the
master reads in its loop. The messages and their bytes are the report
pipe's protocol (protocols/reportpipe.py); here is how a worker sends them.

The pipe is non-blocking: a master busy elsewhere never stalls a job, and a
report it misses is said again by the next. A line equal to the last one is
not sent: an idle worker says "idle" before every wait, and each line
wakes the master (64 idle workers woke it 13 times a second).

The last line of all announces the worker's exit (announce_exit).
"""

import os
import select
import time

from resqued.protocols.reportpipe import ExitAnnouncement, StateReport, WorkerState

ANNOUNCE_TIMEOUT = 5.0          # a master that reads nothing for this long is stuck or gone


class MasterReports:
    def __init__(self, fd: int | None):
        self.fd = fd                 # None: no master (env mode's single worker)
        self.last_state = {}         # the last state but a Redis outage: said again once Redis is back
        self._last_line = b""
        if fd is not None:
            os.set_blocking(fd, False)

    def send(self, state: dict, **always) -> bool:
        """Report ``state`` (StateReport's fields, with ``always``: pid, jobs,
        paused). False when nobody reads any more: the master is gone."""
        if state.get("state") != WorkerState.REDIS_DOWN:
            self.last_state = dict(state)
        if self.fd is None:
            return True   # env mode's single worker: nobody to tell, nothing to encode
        line = StateReport(**state, **always).encode()   # a field it does not have is a TypeError here
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
            os.write(fd, line)   # shorter than PIPE_BUF: written whole or not at all
            return
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            select.select([], [fd], [], left)
        except OSError:
            return   # the master is gone: nobody to tell
