"""Watching one job child, from the hand-off to its report: wait for its
one-line report or its death, and bound it meanwhile (TERM then KILL when
asked, the master's death, max_memory_hard, the job's timeout), keeping the worker's
heartbeat going and forking the next standby at the right moment.

ForkingExecution (forking.py) makes one ``ChildWatch`` per job. Its own
state is the child's: its pid and report pipe, its kill deadline and why,
when the master was seen gone. It is given what it needs rather than the
worker: the job's bounds (jobbounds.py, from the worker's spec; the
decisions about them are there, pure), and ``WorkerHooks``: the signals it
waits on and what it has the worker do (act on signals, beat, stop the job).
"""

import logging
import os
import signal
import time
from dataclasses import dataclass
from typing import Callable

from resqued.worker.execution.jobbounds import JobBounds, timed_out, wait_for
from resqued.worker.execution.jobchild import signal_group
from resqued.process.memory import approx_size, tree_memory
from resqued.process.descendants import running_descendants, signal_all
from resqued.process.signals import SignalQueue, wait_readable

log = logging.getLogger("resqued.worker")

STANDBY_DELAY = 0.005  # into a job that came to an idle worker, when to fork the next child
MEMORY_CHECK_INTERVAL = 1.0  # seconds between max_memory_hard checks while a job runs


@dataclass(frozen=True)
class WorkerHooks:
    """The worker, as a job's watch needs it."""
    worker_id: str                          # for the log
    signals: SignalQueue                    # a signal ends the wait for the child
    dispatch_signals: Callable[[], None]    # the worker acts on them (a stop kills the job: ``kill``)
    heartbeat_due_in: Callable[[], float]
    beat_if_due: Callable[[], None]
    stop_job: Callable[[str], None]         # kill the job for the worker's stop: it goes back to its queue

    @classmethod
    def of(cls, worker) -> "WorkerHooks":
        return cls(worker.id, worker.signals, worker.dispatch_signals, worker.registration.heartbeat_due_in,
                   worker.beat_if_due, worker.kill_job_for_stop)


class ChildWatch:
    def __init__(self, hooks: WorkerHooks, bounds: JobBounds, standbys, pid: int, read_fd: int, idle: bool,
                 limit: float | None = None, output=None):
        """``idle``: the job came to an idle worker (it was not taken with
        the last job's outcome), which decides when the next standby is forked.
        ``limit``: the job's timeout in seconds (bounds.limit_for), None for none.
        ``output``: the job's stdout and stderr (jobcapture.JobOutput), logged as they come."""
        self.hooks = hooks
        self.bounds = bounds
        self.standbys = standbys
        self.pid = pid
        self.read_fd = read_fd
        self.idle = idle
        self.output = output
        self.kill_at = None            # monotonic time to SIGKILL the child
        self.kill_reason = None        # why it was killed, for its failure
        self.tree = []                 # what ran under the child when it was killed
        self.orphaned_at = None        # when the master was seen gone
        self.limit = limit
        self.started = time.monotonic()  # the job was handed over just now
        self.deadline = self.started + limit if limit is not None else None
        self.timed_out = False         # killed for running past its limit

    def kill(self, reason: str | None = None) -> None:
        """TERM the child now, KILL it ``term_timeout`` later."""
        if self.kill_at is not None:
            return
        log.warning("worker %s: killing job child %d%s", self.hooks.worker_id, self.pid,
                    f": {reason}" if reason else "")
        self.kill_reason = reason
        # Its group, and what left the group (setsid) but is still under the
        # child (a job child is a subreaper: jobchild.py): once the child is
        # dead, that would be the master's, running on.
        self.tree = running_descendants(self.pid)
        signal_group(self.pid, signal.SIGTERM)
        signal_all(self.tree, signal.SIGTERM)
        self.kill_at = time.monotonic() + self.bounds.term_timeout

    def wait(self):
        """Wait for the child's one-line report (the job is then finished, even
        if the child has not exited yet), or for its death without one.
        Returns (wait status, or None with a report; the report)."""
        hooks, bounds, standbys, pid, read_fd = self.hooks, self.bounds, self.standbys, self.pid, self.read_fd
        report = bytearray()
        pipe_open = True
        # Only the hard limit is judged while a job runs; max_memory is the
        # worker's own, judged between jobs (recycle.py).
        watch_memory = bool(bounds.max_memory_hard)
        next_memory_check = time.monotonic() + MEMORY_CHECK_INTERVAL
        # The next standby is forked while this job runs. While the queue is
        # busy, at once: that overlaps the fork with the job. A job that came
        # to an idle worker is one someone may be waiting for, and a fork
        # right beside the child's first steps slows them by up to the fork's
        # time (their copy-on-write faults wait for it), so the fork waits a
        # few ms, or for the report of a job shorter than that.
        standby_at = time.monotonic() + (STANDBY_DELAY if self.idle else 0.0)
        while True:
            if standby_at is not None and time.monotonic() >= standby_at:
                standbys.prepare(idle=self.idle)
                standby_at = None
            # Once the report pipe is closed, the exit status is what is left
            # to wait for: from the job forker (through Standbys), when it forked the child.
            waits = [hooks.signals, read_fd if pipe_open else standbys.fileno()]
            waits = [w for w in waits if w is not None] + (self.output.open if self.output else [])
            if not hooks.signals.has_pending():
                orphan_deadline = self.orphaned_at + bounds.orphan_timeout if self.orphaned_at is not None else None
                timeout = wait_for(time.monotonic(), hooks.heartbeat_due_in(), standby_at,
                                   next_memory_check if watch_memory else None, self.kill_at, orphan_deadline,
                                   self.deadline)
                ready = wait_readable(waits, timeout)
                for fd in self.output.open if self.output else ():
                    if fd in ready:
                        self.output.read(fd)
                if read_fd in ready:
                    chunk = os.read(read_fd, 65536)
                    report += chunk
                    pipe_open = bool(chunk)
                    if report.endswith(b"\n"):
                        return None, bytes(report)
            hooks.dispatch_signals()
            if not pipe_open:
                # Closed without a full report: it died; its wait status says how.
                status = standbys.wait_status(pid, block=False)
                if status is not None:
                    return status, bytes(report)
            if self.kill_at is not None and time.monotonic() >= self.kill_at:
                signal_group(pid, signal.SIGKILL)
                signal_all(self.tree, signal.SIGKILL)
            if timed_out(time.monotonic(), self.deadline, self.kill_at is not None):
                self.timed_out = True
                self.kill(f"past its {self.limit:g} s timeout")
            self._bound_orphaned_job()
            if watch_memory and time.monotonic() >= next_memory_check:
                next_memory_check = time.monotonic() + MEMORY_CHECK_INTERVAL
                self._check_memory()
            hooks.beat_if_due()

    def _bound_orphaned_job(self) -> None:
        bounds = self.bounds
        step = bounds.orphan_step(os.getppid(), self.orphaned_at, self.kill_at is not None, time.monotonic())
        if step == "gone":
            self.orphaned_at = time.monotonic()
            log.warning("worker %s: master %d is gone; the running job has %gs to finish",
                        self.hooks.worker_id, bounds.parent_pid, bounds.orphan_timeout)
        elif step == "overdue":
            self.hooks.stop_job(f"the master died and the job was still running {bounds.orphan_timeout:g}s later")

    def _check_memory(self) -> None:
        """The job child (with what it started) past max_memory_hard is
        killed; its memory dies with it, so the worker is not recycled for it."""
        memory = tree_memory(self.pid)
        if self.bounds.over_hard_limit(memory):
            self.kill(f"the job uses {approx_size(memory)}, "
                      f"over the hard memory limit of {approx_size(self.bounds.max_memory_hard)}")
