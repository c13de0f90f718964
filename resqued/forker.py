"""Forking job children, with the fork taken off the critical path.

The cost of fork-per-job is the fork itself (copying the worker's page
tables) and the child's exit. So the worker keeps one *standby* child forked
ahead of time, waiting on a pipe for its job; when a job is reserved it is
sent to the standby, and the worker forks the next standby (``prepare``)
while that job runs, on the other core (when: see childwatch.py). Each job
still runs in a fresh child that never ran another. A standby forked while
the worker is idle rehearses the job path while it waits (jobchild.py).
Children are reaped when convenient: the worker takes a job as finished as
soon as its report arrives, not when its child has exited.

A standby is forked before its job is known, so it cannot run ``beforeFork``
listeners first: when any are registered, children are forked on demand.
"""

import logging
import os
import signal

from . import events
from .jobchild import child_main, standby_main
from .signals import wait_readable

log = logging.getLogger("resqued.worker")


class Standby:
    def __init__(self, pid: int, job_fd: int, report_fd: int):
        self.pid = pid
        self.job_fd = job_fd
        self.report_fd = report_fd


class Forker:
    def __init__(self, signals, registry, worker_id: str, queues: str, prefork: bool = True):
        self.signals = signals
        self.registry = registry
        self.worker_id = worker_id
        self.standby_title = f"Standby for {queues}"
        self.prefork = prefork
        self.standby = None
        self.unreaped: set[int] = set()
        self.reaped: dict[int, int] = {}   # pid -> wait status, reaped before anyone asked

    @property
    def using_standby(self) -> bool:
        return self.prefork and not events.has_listeners("beforeFork")

    def prepare(self, idle: bool = False) -> None:
        """Have a standby ready (if we use one). ``idle``: no job is expected
        at once, so the standby rehearses the job path while it waits."""
        if self.standby is None and self.using_standby:
            self.standby = self._fork_standby(rehearse=idle)

    def start(self, job, target):
        """Start ``job`` in a fresh child; returns (pid, report fd)."""
        if self.using_standby:
            standby = self.standby
            if standby is not None and (standby.pid not in self.unreaped
                                        or self._wait(standby.pid, block=False) is not None):
                # It died waiting (killed, say): a job must not be handed to it.
                self.reaped.pop(standby.pid, None)
                os.close(standby.job_fd)
                os.close(standby.report_fd)
                standby = None
            standby = standby or self._fork_standby()
            self.standby = None
            message = job.queue.encode() + b"\n" + job.raw
            try:
                while message:
                    message = message[os.write(standby.job_fd, message):]
            except BrokenPipeError:
                pass  # the standby died: it reports nothing, which reads as a dirty exit
            os.close(standby.job_fd)
            # The caller forks the next one with prepare(), while this job runs.
            return standby.pid, standby.report_fd
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            child_main(job, target, write_fd, self.signals)  # never returns
        os.close(write_fd)
        _own_group(pid)
        self.unreaped.add(pid)
        return pid, read_fd

    def _fork_standby(self, rehearse: bool = False) -> Standby:
        job_r, job_w = os.pipe()
        report_r, report_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(job_w)
            os.close(report_r)
            standby_main(job_r, report_w, self.signals, self.registry, self.worker_id, self.standby_title,
                         rehearse)
        os.close(job_r)
        os.close(report_w)
        _own_group(pid)
        self.unreaped.add(pid)
        return Standby(pid, job_w, report_r)

    def wait_status(self, pid: int, block: bool):
        """The wait status of ``pid`` if it has exited (waiting if ``block``)."""
        if pid in self.reaped:
            return self.reaped.pop(pid)
        return self._wait(pid, block)

    def _wait(self, pid: int, block: bool):
        try:
            reaped, status = os.waitpid(pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            # Not our child any more; its status is lost. Say it exited, so
            # that a wait for it ends (as a dirty exit) instead of never.
            self.unreaped.discard(pid)
            return 0
        if reaped:
            self.unreaped.discard(pid)
            return status
        return None

    def reap(self) -> None:
        """Reap what has exited, keeping the last few statuses for a later
        ``wait_status`` (a standby can die, and be reaped here, before its job
        is handed to it and waited for)."""
        for pid in list(self.unreaped):
            status = self._wait(pid, block=False)
            if status is not None:
                self.reaped[pid] = status
        while len(self.reaped) > 8:
            del self.reaped[next(iter(self.reaped))]

    def close(self) -> None:
        """Dismiss the standby and reap every child (at most a few seconds)."""
        if self.standby is not None:
            os.close(self.standby.job_fd)  # EOF: the standby exits quietly
            os.close(self.standby.report_fd)
            self.standby = None
        for _ in range(200):
            self.reap()
            if not self.unreaped:
                return
            wait_readable([self.signals], 0.01)
        for pid in list(self.unreaped):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.wait_status(pid, block=True)


def _own_group(pid: int) -> None:
    try:
        os.setpgid(pid, pid)  # also done by the child; whichever runs first wins
    except OSError:
        pass
