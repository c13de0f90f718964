"""Ending the processes left under this one.

Two processes are child subreapers (PR_SET_CHILD_SUBREAPER), so that what
their descendants leave behind comes back to them instead of to init: the
master, whose workers and recovery runs its spawner forks, and each job
child, so that what a job starts stays its own even once it calls setsid()
and forks twice to get away (a daemon's way). When such a process is done,
whatever is still running under it is left behind: a job's helper that kept
its "Processing" title, a server it never stopped. It gets SIGTERM, and
SIGKILL if it is still running ``grace`` seconds later.
"""

import os
import signal
import time

import psutil

POLL = 0.01
KILL_WAIT = 1.0   # for SIGKILL to be done: the kernel's work, not the process's


def has_children() -> bool:
    """Any child at all, running or exited? (Cheap: no look at /proc, which
    a job child that left nothing behind, the common case, is spared.)"""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def running_descendants(pid: int | None = None) -> list[psutil.Process]:
    """Every process under ``pid`` (this one by default) that has not exited."""
    try:
        procs = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    return _running(procs)


def signal_all(procs, signum: int) -> None:
    for proc in procs:
        try:
            proc.send_signal(signum)   # psutil checks that the pid was not reused
        except psutil.Error:
            pass


def end_processes(procs, grace: float) -> list[int]:
    """SIGTERM ``procs``, SIGKILL those still running ``grace`` seconds later
    (and whatever they forked meanwhile), reaping what is ours. Returns the
    pids that needed SIGKILL."""
    signal_all(procs, signal.SIGTERM)
    left = _wait_gone(procs, grace)
    stubborn = list({p.pid: p for p in left + running_descendants()}.values())
    if stubborn:
        signal_all(stubborn, signal.SIGKILL)
        _wait_gone(stubborn, KILL_WAIT)
    reap_children()
    return sorted(p.pid for p in stubborn)


def reap_children() -> None:
    """Reap every child that has exited (ours to reap: nobody else waits for
    processes we adopted)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _wait_gone(procs, timeout: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while True:
        reap_children()   # an adopted one is a zombie until we reap it
        left = _running(procs)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(POLL)


def _running(procs) -> list[psutil.Process]:
    running = []
    for proc in procs:
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                running.append(proc)
        except psutil.Error:
            pass
    return running
