"""Watching one job child, from the hand-off to its report: wait for its
one-line report or its death, and bound it meanwhile (TERM then KILL when
asked, the master's death, max_memory_hard), keeping the worker's
heartbeat going and forking the next standby at the right moment.

ForkingExecution (forking.py) makes one ``ChildWatch`` per job. Its own
state is the child's: its pid and report pipe, its kill deadline and why,
when the master was seen gone. What bounds a job it reads from the worker's
spec (config/workerspec.py: term_timeout, max_memory_hard, parent_pid,
orphan_timeout); of the worker it reads its id, signals and heartbeat, and
it has the worker act on signals and beat.
"""

import logging
import os
import signal
import time

from resqued.worker.execution.jobchild import signal_group
from resqued.process.memory import approx_size, tree_memory
from resqued.process.descendants import running_descendants, signal_all
from resqued.process.signals import wait_readable

log = logging.getLogger("resqued.worker")

STANDBY_DELAY = 0.005  # into a job that came to an idle worker, when to fork the next child
MEMORY_CHECK_INTERVAL = 1.0  # seconds between max_memory_hard checks while a job runs


class ChildWatch:
    def __init__(self, worker, spec, forker, pid: int, read_fd: int, idle: bool):
        """``spec``: the worker's WorkerSpec; ``idle``: the job came to an
        idle worker (it was not taken with the last job's outcome), which
        decides when the next standby is forked."""
        self.worker = worker
        self.spec = spec
        self.forker = forker
        self.pid = pid
        self.read_fd = read_fd
        self.idle = idle
        self.kill_at = None            # monotonic time to SIGKILL the child
        self.kill_reason = None        # why it was killed, for its failure
        self.tree = []                 # what ran under the child when it was killed
        self.orphaned_at = None        # when the master was seen gone

    def kill(self, reason: str | None = None) -> None:
        """TERM the child now, KILL it ``term_timeout`` later."""
        if self.kill_at is not None:
            return
        log.warning("worker %s: killing job child %d%s", self.worker.id, self.pid, f": {reason}" if reason else "")
        self.kill_reason = reason
        # Its group, and what left the group (setsid) but is still under the
        # child (a job child is a subreaper: jobchild.py): once the child is
        # dead, that would be the master's, running on.
        self.tree = running_descendants(self.pid)
        signal_group(self.pid, signal.SIGTERM)
        signal_all(self.tree, signal.SIGTERM)
        self.kill_at = time.monotonic() + self.spec.term_timeout

    def wait(self):
        """Wait for the child's one-line report (the job is then finished, even
        if the child has not exited yet), or for its death without one.
        Returns (wait status, or None with a report; the report)."""
        worker, spec, forker, pid, read_fd = self.worker, self.spec, self.forker, self.pid, self.read_fd
        report = bytearray()
        pipe_open = True
        # Only the hard limit is judged while a job runs; max_memory is the
        # worker's own, judged between jobs (recycle.py).
        watch_memory = bool(spec.max_memory_hard)
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
                forker.prepare(idle=self.idle)
                standby_at = None
            # Once the report pipe is closed, the exit status is what is left
            # to wait for: from the job forker, when it forked the child.
            waits = [worker.signals, read_fd if pipe_open else forker.fileno()]
            waits = [w for w in waits if w is not None]
            timeout = worker.registration.heartbeat_due_in()
            if standby_at is not None:
                timeout = min(timeout, standby_at - time.monotonic())
            if watch_memory:
                timeout = min(timeout, next_memory_check - time.monotonic())
            if self.kill_at is not None:
                timeout = min(timeout, self.kill_at - time.monotonic())
            elif self.orphaned_at is not None:
                timeout = min(timeout, self.orphaned_at + spec.orphan_timeout - time.monotonic())
            if not worker.signals.has_pending():
                ready = wait_readable(waits, max(timeout, 0.001))
                if read_fd in ready:
                    chunk = os.read(read_fd, 65536)
                    report += chunk
                    pipe_open = bool(chunk)
                    if report.endswith(b"\n"):
                        return None, bytes(report)
            worker.dispatch_signals()
            if not pipe_open:
                # Closed without a full report: it died; its wait status says how.
                status = forker.wait_status(pid, block=False)
                if status is not None:
                    return status, bytes(report)
            if self.kill_at is not None and time.monotonic() >= self.kill_at:
                signal_group(pid, signal.SIGKILL)
                signal_all(self.tree, signal.SIGKILL)
            self._bound_orphaned_job()
            if watch_memory and time.monotonic() >= next_memory_check:
                next_memory_check = time.monotonic() + MEMORY_CHECK_INTERVAL
                self._check_memory()
            worker.beat_if_due()

    def _bound_orphaned_job(self) -> None:
        spec = self.spec
        if spec.orphan_timeout is None or self.kill_at is not None or os.getppid() == spec.parent_pid:
            return
        if self.orphaned_at is None:
            self.orphaned_at = time.monotonic()
            log.warning("worker %s: master %d is gone; the running job has %gs to finish",
                        self.worker.id, spec.parent_pid, spec.orphan_timeout)
        elif time.monotonic() - self.orphaned_at >= spec.orphan_timeout:
            self.worker.kill_job_for_stop(
                f"the master died and the job was still running {spec.orphan_timeout:g}s later")

    def _check_memory(self) -> None:
        """The job child (with what it started) past max_memory_hard is
        killed; its memory dies with it, so the worker is not recycled for it."""
        limit = self.spec.max_memory_hard
        memory = tree_memory(self.pid)
        if self.worker.recycle.over_hard_limit(memory):
            self.kill(f"the job uses {approx_size(memory)}, over the hard memory limit of {approx_size(limit)}")
