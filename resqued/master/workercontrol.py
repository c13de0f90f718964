"""What the master does to its children as processes: signal its workers,
retire some (a QUIT: each finishes its job), kill those that outlived a
stop, and reap whatever ended. When and which is decided elsewhere: a stop's
mode and deadlines by supervise/states.Stop, the workers to retire by
reconcile.plan, restart.py and reloads, what an exit means by workerexits.py."""

import logging
import os
import signal

from resqued.process.signals import describe, kill_tree

log = logging.getLogger("resqued.master")


def signal_workers(children, signum: int) -> None:
    """``signum`` to each of ``children`` (workerprocess.Child) still there."""
    for child in list(children):
        try:
            os.kill(child.pid, signum)
        except ProcessLookupError:
            pass


def retire(children, reason: str) -> None:
    """Tell each to QUIT (it finishes its job), marked as stopping for ``reason``."""
    for child in children:
        log.info("retiring worker %d (%s): %s", child.pid, child.pool.name, reason,
                 extra=child.event("worker_retiring", reason=reason))
        child.stopping, child.stop_reason = True, reason
        signal_workers([child], signal.SIGQUIT)


def kill_stragglers(children) -> None:
    """A stop's last deadline passed: SIGKILL to each and to what it runs."""
    for child in list(children):
        log.error("worker %d did not stop: SIGKILL to it and its jobs", child.pid, extra=child.event("worker_killed"))
        kill_tree(child.pid)


def reaped():
    """Each child that has ended, reaped: (pid, exit code), the code as
    os.waitstatus_to_exitcode gives it (negative: the signal)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, os.waitstatus_to_exitcode(status)


def describe_exit(code: int) -> str:
    """An exit code as reaped() gives it, for a log line."""
    return f"exit code {code}" if code >= 0 else f"signal {describe(-code)}"
