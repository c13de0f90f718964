"""Job children, as the worker sees them: forked ahead, handed a job, waited for.

The cost of fork-per-job is the fork itself (copying the forking process's
page tables), the copy-on-write faults after it, and the child's exit. So
one *standby* child is forked ahead of time, waiting on a pipe for its job;
when a job is reserved it is sent to the standby, and the next standby is
asked for (``prepare``) while that job runs (when: see childwatch.py). Each
job still runs in a fresh child that never ran another. A standby forked
while the worker is idle rehearses the job path while it waits (jobchild.py).
Children are reaped when convenient: the worker takes a job as finished as
soon as its report arrives, not when its child has exited.

Standbys are forked by the worker's job forker (jobforker.py), a copy of
the worker forked once, so that the worker itself never forks (and takes no
copy-on-write faults); it reports their exits here. With ``job_forker``
false, or after a forker died before it was ready, the worker forks them
itself. A standby
is forked before its job is known, so it cannot run ``beforeFork`` listeners
first: when any are registered, the worker forks children on demand. With
childReady listeners, a standby is handed a job only once it has said they
succeeded (childready.py, ``ready``); ``start`` never waits for that word.
"""

import logging
import os
import signal
import time

from resqued.jobs import events
from resqued.worker.execution import childready
from resqued.worker.execution.jobcapture import JobOutput, output_pipes
from resqued.jobs.job import warm
from resqued.worker.execution.forkerlink import JobForkerLink, recv_with_fds
from resqued.worker.execution.jobchild import child_main, fork_job_child, own_group, signal_group, standby_main
from resqued.process.descendants import KILL_WAIT
from resqued.process.signals import wait_readable
from resqued.protocols.forkersocket import ChildExited, ForkerMessageRefused, ForkerReady, StandbyForked, decode_news

log = logging.getLogger("resqued.worker")

LINK_TIMEOUT = 10.0  # a job forker that takes longer to answer is taken for hung


class Standby:
    def __init__(self, pid: int, job_fd: int, report_fd: int, output_fds, says: bool):
        """``says``: it runs childReady listeners and says how they went
        (decided where it was forked, with the listeners it has)."""
        self.pid = pid
        self.job_fd = job_fd
        self.report_fd = report_fd
        # Its stdout and stderr pipes' read ends (jobcapture.py): read while
        # its listeners run, else one that writes 64 KiB blocks for ever.
        self.output = JobOutput(output_fds)
        self.ready = not says   # else once it says so on report_fd
        self.born = time.monotonic()

    def discard(self) -> None:
        """Close our ends: a standby that has no job yet then exits quietly.
        What it wrote (its listeners' lines, a traceback) is logged first."""
        for fd in (self.job_fd, self.report_fd):
            os.close(fd)
        self.output.close()


class Standbys:
    def __init__(self, signals, registry, worker_id: str, queues: str, term_timeout: float,
                 job_forker: bool = True, ready_timeout: float = 30.0):
        """``term_timeout``: how long what a job left running has after SIGTERM
        (jobchild.end_leftovers). ``ready_timeout``: how long a standby's
        childReady listeners may take (``ready``)."""
        self.ready_timeout = ready_timeout
        self.signals = signals
        self.term_timeout = term_timeout
        self.registry = registry
        self.worker_id = worker_id
        self.queues = queues
        self.standby_title = f"Standby for {queues}"
        self.standby = None
        self.unreaped: set[int] = set()
        self.reaped: dict[int, int] = {}   # pid -> wait status, reaped before anyone asked
        self.served: set[int] = set()      # forked (and reaped) by the job forker
        self._link = None
        # job_forker false (or a forker that died before it was ready):
        # children are forked here, by the worker.
        self._link_broken = not job_forker
        self._asked = False                # a standby asked of the forker, not yet here
        self.last_failed = None            # the last standby whose childReady listeners failed
        for target in registry.targets():
            warm(target)  # once, here: every child (and the forker) inherits it

    @property
    def using_standby(self) -> bool:
        return not events.has_listeners("beforeFork")

    @property
    def helper_pid(self):
        """The job forker's pid, if one runs (it holds no job)."""
        return self._link.pid if self._link else None

    def prepare(self, idle: bool = False) -> None:
        """Have a standby ready, or on its way (if we use one). ``idle``: no
        job is expected at once, so the standby rehearses the job path while
        it waits."""
        if self.standby is not None or self._asked or not self.using_standby:
            return
        if self._linked():
            self._asked = self._link.ask(idle)  # its answer is read when needed
            if self._asked:
                return
            self._lose_link("it stopped listening")
        self.standby = self._fork_standby(rehearse=idle)

    def ready(self, timeout: float):
        """After ``prepare``: True once the standby has run its childReady
        listeners (at once if it has none), None if it has not yet said
        (``timeout`` passed or a signal came), or the line of their failure:
        they raised, the standby died, or they took more than
        ``ready_timeout`` (it is killed). The standby is then gone:
        ``prepare`` brings another."""
        while self.standby is None and self._asked:
            self._receive(block=True)
        if self.standby is None:
            self.prepare()
            while self.standby is None and self._asked:
                self._receive(block=True)
        if self.standby is None:   # (the forker died meanwhile)
            self.standby = self._fork_standby()
        standby = self.standby
        if standby.ready:
            return True
        left = standby.born + self.ready_timeout - time.monotonic()
        word = childready.read_word(standby.report_fd, [self.signals, *standby.output.open],
                                    max(0.0, min(timeout, left)))
        if word is None:
            standby.output.drain()   # its lines as they come: a full pipe would block it
            if time.monotonic() - standby.born < self.ready_timeout:
                return None
            signal_group(standby.pid, signal.SIGKILL)
            word = f"its childReady listeners did not finish in {self.ready_timeout:g}s (killed)"
        if word is True:
            standby.ready = True
        else:
            self.standby, self.last_failed = None, standby.pid
            standby.discard()
            self.reap()
        return word

    def start(self, job, target):
        """Start ``job`` in a fresh child; returns (pid, report fd, its
        stdout and stderr: a JobOutput), or None if no ready standby is
        here: the one here has not said that its childReady listeners
        succeeded (``ready`` waits for its word; the job must not go to a
        child that may be dying)."""
        if self.using_standby:
            message = job.queue.encode() + b"\n" + job.raw
            for attempt in range(3):
                standby = self._take_standby()
                if standby is None:
                    return None
                if self._hand_over(standby, message) or attempt == 2:
                    break  # (after three dead ones: a dirty exit, not a hang)
                # Dead before a byte of the job reached it (killed just now,
                # its exit not yet heard of): the job goes to another one.
                os.close(standby.report_fd)
                standby.output.close()
            # The caller asks for the next one with prepare(), while this job runs.
            standby.output.job_is(job)
            return standby.pid, standby.report_fd, standby.output
        read_fd, write_fd = os.pipe()
        output_r, output_w = output_pipes()
        pid = fork_job_child(lambda: child_main(job, target, write_fd, output_w, term_timeout=self.term_timeout),
                             (read_fd, *output_r), self.signals)
        for fd in (write_fd, *output_w):
            os.close(fd)
        own_group(pid)
        self.unreaped.add(pid)
        return pid, read_fd, JobOutput(output_r, job)

    @staticmethod
    def _hand_over(standby: Standby, message: bytes) -> bool:
        """Write the job to the standby; False if it was dead before any of it
        was written. Dying midway reads as a dirty exit, as any death does."""
        sent = 0
        try:
            while sent < len(message):
                sent += os.write(standby.job_fd, message[sent:])
        except BrokenPipeError:
            pass
        os.close(standby.job_fd)
        return sent > 0

    def _take_standby(self) -> Standby | None:
        """The standby, if it is ready; None while it has not said so (it
        stays, for ``ready``)."""
        self._receive(block=False)
        for _ in range(3):
            if self.standby is None and not self._asked and self._linked():
                self._asked = self._link.ask(rehearse=False)
            while self.standby is None and self._asked:
                self._receive(block=True)
            standby = self.standby
            if standby is None:
                break
            if not self._exited(standby.pid):
                if not standby.ready:
                    return None
                self.standby = None
                return standby
            # It died waiting (killed, say): a job must not be handed to it.
            self.standby = None
            self.reaped.pop(standby.pid, None)
            standby.discard()
        standby = self.standby = self._fork_standby()
        if not standby.ready:
            return None
        self.standby = None
        return standby   # (if it died already: a dirty exit, not a hang)

    def _exited(self, pid: int) -> bool:
        if pid in self.served:
            return False  # the forker has not said so (_receive has just read what it said)
        return pid not in self.unreaped or self._wait(pid, block=False) is not None

    def _fork_standby(self, rehearse: bool = False) -> Standby:
        """Fork a standby here, in the worker (no job forker)."""
        job_r, job_w = os.pipe()
        report_r, report_w = os.pipe()
        output_r, output_w = output_pipes()
        pid = fork_job_child(lambda: standby_main(job_r, report_w, output_w, self.registry, self.worker_id,
                                                  rehearse, term_timeout=self.term_timeout),
                             (job_w, report_r, *output_r), self.signals, self.standby_title)
        for fd in (job_r, report_w, *output_w):
            os.close(fd)
        own_group(pid)
        self.unreaped.add(pid)
        return Standby(pid, job_w, report_r, output_r, says=childready.has_listeners())

    # -- the job forker ----------------------------------------------------
    def _linked(self) -> bool:
        """Is there a job forker to ask (starting one if need be)?"""
        if self._link is None and not self._link_broken:
            try:
                self._link = JobForkerLink(self.signals, self.registry, self.worker_id, self.queues,
                                        self.term_timeout)
            except OSError as exc:
                log.error("worker %s: cannot start a job forker (%s): forking job children in the worker",
                          self.worker_id, exc)
                self._link_broken = True
        return self._link is not None

    def fileno(self):
        """Readable when the job forker has news (a child's exit); None
        without one."""
        return self._link.sock.fileno() if self._link else None

    def _receive(self, block: bool) -> None:
        """Read what the job forker has said; with ``block``, wait for at
        least one message."""
        while self._link is not None:
            if block and not wait_readable([self._link.sock], LINK_TIMEOUT):
                self._lose_link(f"it did not answer in {LINK_TIMEOUT:g}s")
                return
            try:
                message, fds = recv_with_fds(self._link.sock)
            except BlockingIOError:
                return
            except OSError:
                message, fds = b"", []
            if not message:
                self._lose_link("it died")
                return
            self._handle(message, fds)
            block = False

    def _handle(self, message: bytes, fds) -> None:
        try:
            news = decode_news(message, len(fds))
        except ForkerMessageRefused as exc:
            log.warning("worker %s: job forker %d: %s; ignored", self.worker_id, self._link.pid, exc)
            news = None
        if isinstance(news, StandbyForked):
            self.standby = Standby(news.pid, fds[0], fds[1], fds[2:], news.says)
            self.served.add(news.pid)
            self.unreaped.add(news.pid)
            self._asked = False
            return
        for fd in fds:
            os.close(fd)
        if isinstance(news, ChildExited):
            self.served.discard(news.pid)
            if news.pid in self.unreaped:
                self.unreaped.discard(news.pid)
                self.reaped[news.pid] = news.status
        elif isinstance(news, ForkerReady):
            self._link.ready = True

    def _lose_link(self, reason) -> None:
        link, self._link, self._asked = self._link, None, False
        if link.ready:
            log.warning("worker %s: job forker %d: %s; its children died with it; starting another",
                        self.worker_id, link.pid, reason)
        else:
            # Dead before it was ready: it would die again. Fork here instead.
            log.error("worker %s: job forker %d did not start (%s): forking job children in the worker",
                      self.worker_id, link.pid, reason)
            self._link_broken = True
        link.close()
        # Its children got SIGKILL when it died (PR_SET_PDEATHSIG).
        for pid in self.served:
            if pid in self.unreaped:
                self.unreaped.discard(pid)
                self.reaped[pid] = signal.SIGKILL
        self.served.clear()
        if self.standby is not None and self.standby.pid in self.reaped:
            self.standby.discard()
            self.reaped.pop(self.standby.pid, None)
            self.standby = None

    def wait_status(self, pid: int, block: bool):
        """The wait status of ``pid`` if it has exited (waiting if ``block``)."""
        if pid in self.served:
            self._receive(block=False)
            while block and pid in self.served:
                self._receive(block=True)
        if pid in self.reaped:
            return self.reaped.pop(pid)
        if pid in self.served:
            return None
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
        self._receive(block=False)
        for pid in list(self.unreaped - self.served):
            status = self._wait(pid, block=False)
            if status is not None:
                self.reaped[pid] = status
        while len(self.reaped) > 8:
            del self.reaped[next(iter(self.reaped))]

    def close(self) -> None:
        """Dismiss the standby, reap every child (at most a few seconds), and
        stop the job forker."""
        while self._asked:
            self._receive(block=True)  # the standby on its way, to dismiss it too
        if self.standby is not None:
            if not self.standby.ready:   # its childReady listeners may take long, for nothing now
                signal_group(self.standby.pid, signal.SIGKILL)
            self.standby.discard()
            self.standby = None
        # A job child that has reported may still be ending what its job left
        # running (jobchild.end_leftovers: TERM, term_timeout, then KILL):
        # killed sooner, those would escape to the master until it stops.
        deadline = time.monotonic() + max(2.0, self.term_timeout + KILL_WAIT + 1.0)
        while True:
            self.reap()
            if not self.unreaped:
                break
            if time.monotonic() >= deadline:
                break
            wait_readable([self.signals] + ([self._link.sock] if self._link else []), 0.01)
        if self.unreaped:
            for pid in list(self.unreaped):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.wait_status(pid, block=True)
        if self._link is not None:
            self._link.close()
            self._link, self._asked = None, False
