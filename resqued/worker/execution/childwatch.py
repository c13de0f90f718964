"""A worker's job child, from the hand-off to its report: start it, wait
for its one-line report or its death, and bound it meanwhile (TERM then
KILL when asked, the master's death, the hard memory limit). A mixin of
Worker: it reads and sets the worker's state (the running child, its kill
deadline) and keeps its heartbeat going while it waits."""

import logging
import os
import signal
import time

from resqued.jobs import events
from resqued.jobs.job import Job, backtrace, exception_name
from resqued.worker.execution.jobchild import interpret, signal_group
from resqued.resque.outcome import Failure
from resqued.process.title import stamp
from resqued.exits import EXIT_RECYCLE_MEMORY
from resqued.worker.recycle import approx_size, tree_rss
from resqued.config.sizes import format_size
from resqued.process.signals import wait_readable

log = logging.getLogger("resqued.worker")

STANDBY_DELAY = 0.005  # into a job that came to an idle worker, when to fork the next child


class JobChildWatch:
    def _kill_child(self, reason: str | None = None) -> None:
        if self._child is None or self._kill_at is not None:
            return
        log.warning("worker %s: killing job child %d%s", self.id, self._child, f": {reason}" if reason else "")
        self._kill_reason = reason
        signal_group(self._child, signal.SIGTERM)
        self._kill_at = time.monotonic() + self.term_timeout

    def _run_in_child(self, job: Job, target):
        """Run the job in a fresh child and wait for its report. Returns (failure, skipped)."""
        try:
            events.trigger("beforeFork", job)
        except Exception as exc:
            return Failure(exception_name(exc), f"beforeFork hook failed: {exc}", backtrace(exc)), False
        pid, read_fd = self.forker.start(job, target)
        self._child, self._kill_at, self._kill_reason = pid, None, None
        # Marked running once the child has the job, so the round trip
        # overlaps the job instead of delaying its start.
        marked = self._mark_running(job)
        self._title_once(f"Forked {pid} at {stamp()}")
        self._report(state="busy", job={"class": job.job_class, "id": job.id, "queue": job.queue},
                     since=time.time())
        try:
            status, report = self._wait_for_child(pid, read_fd)
        finally:
            os.close(read_fd)
            self._child = self._kill_at = None
            self._marked(marked)
        self.forker.reap()
        return interpret(job, pid, status, report, self._kill_reason)

    def _wait_for_child(self, pid: int, read_fd: int):
        """Wait for the child's one-line report (the job is then finished, even
        if the child has not exited yet), or for its death without one."""
        report = bytearray()
        pipe_open = True
        next_memory_check = time.monotonic() + self.memory_check_interval
        # The next standby is forked while this job runs. While the queue is
        # busy, at once: that overlaps the fork with the job. A job that came
        # to an idle worker is one someone may be waiting for, and a fork
        # right beside the child's first steps slows them by up to the fork's
        # time (their copy-on-write faults wait for it), so the fork waits a
        # few ms, or for the report of a job shorter than that.
        standby_at = time.monotonic() + (0.0 if self._streaming else STANDBY_DELAY)
        while True:
            if standby_at is not None and time.monotonic() >= standby_at:
                self.forker.prepare(idle=not self._streaming)
                standby_at = None
            # Once the report pipe is closed, the exit status is what is left
            # to wait for: from the job forker, when it forked the child.
            waits = [self.signals, read_fd if pipe_open else self.forker.fileno()]
            waits = [w for w in waits if w is not None]
            timeout = self.registration.heartbeat_due_in()
            if standby_at is not None:
                timeout = min(timeout, standby_at - time.monotonic())
            if self.recycle.watches_memory:
                timeout = min(timeout, next_memory_check - time.monotonic())
            if self._kill_at is not None:
                timeout = min(timeout, self._kill_at - time.monotonic())
            elif self._orphaned_at is not None:
                timeout = min(timeout, self._orphaned_at + self.orphan_timeout - time.monotonic())
            if not self.signals.has_pending():
                ready = wait_readable(waits, max(timeout, 0.001))
                if read_fd in ready:
                    chunk = os.read(read_fd, 65536)
                    report += chunk
                    pipe_open = bool(chunk)
                    if report.endswith(b"\n"):
                        return None, bytes(report)
            self._dispatch_signals()
            if not pipe_open:
                # Closed without a full report: it died; its wait status says how.
                status = self.forker.wait_status(pid, block=False)
                if status is not None:
                    return status, bytes(report)
            if self._kill_at is not None and time.monotonic() >= self._kill_at:
                signal_group(pid, signal.SIGKILL)
            self._bound_orphaned_job()
            if self.recycle.watches_memory and time.monotonic() >= next_memory_check:
                next_memory_check = time.monotonic() + self.memory_check_interval
                self._check_memory_mid_job()
            self._beat_if_due()

    def _bound_orphaned_job(self) -> None:
        if self.orphan_timeout is None or self._kill_at is not None or os.getppid() == self.parent_pid:
            return
        if self._orphaned_at is None:
            self._orphaned_at = time.monotonic()
            log.warning("worker %s: master %d is gone; the running job has %gs to finish",
                        self.id, self.parent_pid, self.orphan_timeout)
        elif time.monotonic() - self._orphaned_at >= self.orphan_timeout:
            self._kill_child(f"the master died and the job was still running {self.orphan_timeout:g}s later")

    def _check_memory_mid_job(self) -> None:
        rss = tree_rss(self.pid, exclude=self.forker.idle_pids())
        if self.recycle.over_hard_limit(rss):
            self._kill_child(f"worker and job use {approx_size(rss)}, over the hard memory limit "
                             f"of {format_size(self.recycle.max_memory_hard)}")
            self._recycle_after_job = self._recycle_after_job or EXIT_RECYCLE_MEMORY
        elif self.recycle.over_soft_limit(rss) and self._recycle_after_job is None:
            log.warning("worker %s uses %s, over max_memory %s: recycling after this job",
                        self.id, approx_size(rss), format_size(self.recycle.max_memory))
            self._recycle_after_job = EXIT_RECYCLE_MEMORY
