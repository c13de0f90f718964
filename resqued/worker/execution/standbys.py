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
succeeded (childready.py, ``ready``).
"""

import array
import logging
import os
import signal
import socket
import time

from resqued.jobs import events
from resqued.worker.execution import childready, jobforker
from resqued.worker.execution.jobcapture import output_pipes
from resqued.jobs.job import warm
from resqued.worker.execution.jobchild import child_main, fork_job_child, standby_main
from resqued.process.descendants import KILL_WAIT
from resqued.process.signals import wait_readable
from resqued.protocols.forkersocket import (MAX_MESSAGE, STANDBY_FDS, ChildExited, ForkerMessageRefused,
                                             ForkerReady, StandbyForked, StandbyWanted, decode_news)

log = logging.getLogger("resqued.worker")

LINK_TIMEOUT = 10.0  # a job forker that takes longer to answer is taken for hung


class Standby:
    def __init__(self, pid: int, job_fd: int, report_fd: int, output_fds):
        self.pid = pid
        self.job_fd = job_fd
        self.report_fd = report_fd
        self.output_fds = tuple(output_fds)   # its stdout and stderr pipes' read ends (jobcapture.py)
        self.ready = not childready.has_listeners()   # else once it says so on report_fd

    def discard(self) -> None:
        """Close our ends: a standby that has no job yet then exits quietly."""
        for fd in (self.job_fd, self.report_fd, *self.output_fds):
            os.close(fd)


class JobForkerLink:
    """The worker's end of its job forker (jobforker.py): the process and
    the socket to it."""

    def __init__(self, signals, registry, worker_id: str, queues: str, term_timeout: float):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = jobforker.fork_forker(ours, theirs, signals, registry, worker_id, queues, term_timeout)
        theirs.close()
        _own_group(pid)  # a Ctrl-C meant for the worker is the worker's to act on
        self.pid = pid
        self.sock = ours
        self.ready = False

    def ask(self, rehearse: bool) -> bool:
        try:
            self.sock.send(StandbyWanted(rehearse).encode())
            return True
        except OSError:
            return False

    def close(self) -> None:
        self.sock.close()  # EOF: it exits, and anything it still has dies with it
        for _ in range(200):
            if os.waitpid(self.pid, os.WNOHANG)[0]:
                return
            time.sleep(0.01)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)


class Standbys:
    def __init__(self, signals, registry, worker_id: str, queues: str, term_timeout: float,
                 job_forker: bool = True):
        """``term_timeout``: how long what a job left running has after SIGTERM
        (jobchild.end_leftovers)."""
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

    def ready(self, timeout: float | None):
        """With childReady listeners, after ``prepare``: True once the standby
        has run them, None if it has not yet said (``timeout`` passed or a
        signal came), or the line of their failure (the standby is gone:
        ``prepare`` forks another)."""
        while self.standby is None and self._asked:
            self._receive(block=True)
        if self.standby is None:
            self.standby = self._fork_standby()
        standby = self.standby
        if standby.ready:
            return True
        word = childready.read_word(standby.report_fd, [self.signals], timeout)
        if word is True:
            standby.ready = True
        elif word is not None:
            self.standby, self.last_failed = None, standby.pid
            standby.discard()
            self.reap()
        return word

    def start(self, job, target):
        """Start ``job`` in a fresh child; returns (pid, report fd, its
        stdout and stderr pipes' read ends)."""
        if self.using_standby:
            message = job.queue.encode() + b"\n" + job.raw
            for attempt in range(3):
                standby = self._take_standby()
                if self._hand_over(standby, message) or attempt == 2:
                    break  # (after three dead ones: a dirty exit, not a hang)
                # Dead before a byte of the job reached it (killed just now,
                # its exit not yet heard of): the job goes to another one.
                for fd in (standby.report_fd, *standby.output_fds):
                    os.close(fd)
            # The caller asks for the next one with prepare(), while this job runs.
            return standby.pid, standby.report_fd, standby.output_fds
        read_fd, write_fd = os.pipe()
        output_r, output_w = output_pipes()
        pid = fork_job_child(lambda: child_main(job, target, write_fd, output_w, term_timeout=self.term_timeout),
                             (read_fd, *output_r), self.signals)
        for fd in (write_fd, *output_w):
            os.close(fd)
        _own_group(pid)
        self.unreaped.add(pid)
        return pid, read_fd, output_r

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

    def _take_standby(self) -> Standby:
        self._receive(block=False)
        for _ in range(3):
            if self.standby is None and not self._asked and self._linked():
                self._asked = self._link.ask(rehearse=False)
            while self.standby is None and self._asked:
                self._receive(block=True)
            standby, self.standby = self.standby, None
            if standby is None:
                break
            if not self._exited(standby.pid) and (standby.ready or childready.read_word(
                    standby.report_fd, [], None) is True):
                return standby
            # It died waiting (killed, say), or its childReady listeners
            # failed: a job must not be handed to it.
            self.reaped.pop(standby.pid, None)
            standby.discard()
        standby = self._fork_standby()
        if not standby.ready:   # (failed: the hand-over finds it dead)
            standby.ready = childready.read_word(standby.report_fd, [], None) is True
        return standby

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
        _own_group(pid)
        self.unreaped.add(pid)
        return Standby(pid, job_w, report_r, output_r)

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
                message, fds = _recv_with_fds(self._link.sock)
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
            self.standby = Standby(news.pid, fds[0], fds[1], fds[2:])
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


def _recv_with_fds(sock):
    """One message and the descriptors that came with it, without waiting
    (socket.recv_fds before Python 3.12 drops its ``flags``)."""
    fds = array.array("i")
    message, ancdata, _, _ = sock.recvmsg(MAX_MESSAGE, socket.CMSG_LEN(STANDBY_FDS * fds.itemsize),
                                          socket.MSG_DONTWAIT)
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
    return message, list(fds)


def _own_group(pid: int) -> None:
    try:
        os.setpgid(pid, pid)  # also done by the child; whichever runs first wins
    except OSError:
        pass
