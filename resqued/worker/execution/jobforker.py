"""The job forker: a process beside a forking worker that forks the
worker's job children, so that the worker itself never forks.

Fork-per-job costs, besides the fork itself, copy-on-write faults on both
sides: after each fork every page the parent writes is copied, and the
worker writes a lot (Redis replies, the report, its heartbeat) while its
job runs. So a forking worker forks this process once, when it first
waits for a job: a copy of the worker (it shares the worker's pages,
imports and job table, so it costs ~2 MB of PSS), which forks the standby
children (jobchild.py) when the worker asks, on the other core. The worker
then only hands jobs over and records outcomes. BENCHMARKS.md has what it does for draining jobs.

It speaks protocols/forkersocket.py with the worker: the worker asks for
a standby, the forker answers with one (and its pipes), and says when a
child it forked exited; the worker closing its end means "stop". The
forker dies with the worker and its children die with it
(PR_SET_PDEATHSIG), so a job never outlives its worker. It ignores the
signals an operator sends to a worker's process group: the worker decides
what happens to a running job.
"""

import gc
import logging
import os
import select
import signal
import socket

from resqued.worker.execution import childready
from resqued.worker.execution.jobcapture import output_pipes
from resqued.worker.execution.jobchild import flush_and_exit, fork_job_child, standby_main
from resqued.process import logfile
from resqued.process.fork import fork_child
from resqued.protocols.forkersocket import (MAX_MESSAGE, ChildExited, ForkerMessageRefused, ForkerReady,
                                             StandbyForked, decode_ask)

log = logging.getLogger("resqued.worker")

# What an operator or a terminal sends to workers; a job child gets them back
# at their defaults (Reset below).
IGNORED = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)


class Reset:
    """What a standby forked here undoes before it becomes a job child."""

    def __init__(self, wakeup_fds):
        self.wakeup_fds = wakeup_fds

    def reset_in_child(self) -> None:
        signal.set_wakeup_fd(-1)
        for signum in IGNORED + (signal.SIGCHLD,):
            signal.signal(signum, signal.SIG_DFL)
        for fd in self.wakeup_fds:
            os.close(fd)


def fork_forker(ours, theirs, signals, registry, worker_id: str, queues: str, term_timeout: float) -> int:
    """Fork the job forker from the worker, speaking on ``theirs``; its pid.
    The worker's handlers and wakeup socket (``signals``) are the worker's;
    what an operator sends to the worker is for the worker to act on; out of
    the worker's group, a Ctrl-C is not for it. A worker that died before it
    asked to die with it: it leaves at once (exit 0)."""
    return fork_child(lambda: _run(theirs, registry, worker_id, queues, term_timeout), close=(ours,),
                      own_group=True, reset=signals, ignore=IGNORED, pdeathsig=signal.SIGKILL,
                      parent_pid=os.getpid(), orphan_code=0, title=f"Job forker for {queues}",
                      exit=flush_and_exit, on_crash=lambda: log.exception("job forker for worker %s failed",
                                                                          worker_id))


def _run(sock, registry, worker_id: str, queues: str, term_timeout: float) -> int:
    """The job forker's life, in the child fork_forker forked; its exit code."""
    try:
        return _loop(sock, registry, worker_id, f"Standby for {queues}", term_timeout)
    except BaseException:
        log.exception("job forker for worker %s failed", worker_id)
        return 1


def _loop(sock, registry, worker_id: str, title: str, term_timeout: float) -> int:
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    reset = Reset((wake_r, wake_w))
    # Everything imported so far is shared with the children: out of the
    # collector's sight, a full collection in a child (a job that allocates
    # a lot) does not write, and so copy, every page of it. No-op jobs never
    # collect: the bench shows no difference either way.
    gc.freeze()
    if not _send(sock, ForkerReady().encode()):
        return 0
    while True:
        ready, _, _ = select.select([sock, wake_r], [], [])
        if wake_r in ready:
            try:
                while os.read(wake_r, 4096):
                    pass
            except BlockingIOError:
                pass
        if not _report_exits(sock):
            return 0
        if sock in ready:
            try:
                message = sock.recv(MAX_MESSAGE)
            except ConnectionError:
                message = b""
            if not message:
                return 0  # the worker is done with us
            try:
                ask = decode_ask(message)
            except ForkerMessageRefused as exc:
                log.warning("job forker for worker %s: %s from the worker; ignored", worker_id, exc)
                continue
            if not _fork_standby(sock, reset, registry, worker_id, title, term_timeout,
                                 rehearse=ask.rehearse):
                return 0


def _fork_standby(sock, reset, registry, worker_id: str, title: str, term_timeout: float,
                  rehearse: bool) -> bool:
    logfile.follow()  # the master reopened its log (HUP): our lines, and the standby's, go there
    job_r, job_w = os.pipe()
    report_r, report_w = os.pipe()
    output_r, output_w = output_pipes()
    pid = fork_job_child(lambda: standby_main(job_r, report_w, output_w, registry, worker_id, rehearse,
                                              term_timeout=term_timeout),
                         (sock, job_w, report_r, *output_r), reset, title)
    for fd in (job_r, report_w, *output_w):
        os.close(fd)
    try:
        os.setpgid(pid, pid)  # also done by the child; whichever runs first wins
    except OSError:
        pass
    try:
        socket.send_fds(sock, [StandbyForked(pid, childready.has_listeners()).encode()], [job_w, report_r, *output_r])
        return True
    except OSError:
        return False
    finally:
        for fd in (job_w, report_r, *output_r):
            os.close(fd)


def _report_exits(sock) -> bool:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return True
        if not pid:
            return True
        if not _send(sock, ChildExited(pid, status).encode()):
            return False


def _send(sock, message: bytes) -> bool:
    try:
        sock.send(message)
        return True
    except OSError:
        return False
