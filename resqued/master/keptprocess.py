"""A helper process the master keeps running while its config asks for it:
a fresh interpreter (process/interpreter.py) started when due, restarted
with backoff when it dies, stopped with the master, and replaced (or
stopped) by a reload that changes (or removes) what it runs with. The
metrics exporter (exporterlink.py), the scheduler (schedulerlink.py) and
the fleet advertiser (advertiserlink.py) are three; each says only what it
runs with and how it starts.

What it runs with is one value (``wanted``, compared whole): a reload that
changes any part of it restarts the process; one that changes nothing
leaves it running.
"""

import logging
import os
import signal
import time

from resqued.process import logs
from resqued.process.interpreter import start_module
from resqued.supervise.backoff import Backoff

log = logging.getLogger("resqued.master")

# A process that ran this long before it died was not crash-looping: it is
# restarted after the first, short wait, not after its earlier failures' longer one.
SETTLED = 10.0
KILL_POLL = 0.01    # how often a final stop looks whether a TERMed process left


class KeptProcess:
    what = "a helper process"   # in log lines

    def __init__(self, title: str):
        self.title = title
        self.pid = None
        self.serves = None          # what it runs with (``wanted``'s value); None: not running
        self.backoff = Backoff()    # restarts after it died
        self.started = 0.0          # time.monotonic() of the last start
        self.grace = None           # seconds between TERM and KILL when stopped; None: KILL at once
        self.leaving = {}           # pid -> time.monotonic() to KILL it: told to stop, not reaped yet
        self.enabled = False        # the config wants it (as of the last start_due)

    # -- what a kind says ---------------------------------------------------
    def wanted(self, config):
        """What it runs with under ``config`` (a comparable value); None: it should not run."""
        raise NotImplementedError

    def launch(self, serves) -> int:
        """Start it with ``serves``; its pid. OSError if it cannot start."""
        raise NotImplementedError

    def grace_for(self, config) -> float | None:
        """Seconds it has to finish after TERM; None: it has nothing to finish (KILL)."""
        return None

    def died(self, serves, code: int, how: str, delay: float) -> None:
        log.error("%s died (%s); a new one starts in %.1fs", self.what, how, delay,
                  extra=logs.event("helper_died", helper=self.what, reason=how))

    def state(self) -> str:
        """In one word, for resquectl status: running, stopping (TERMed, not
        gone yet), down (dead: starts again after its backoff) or off."""
        if self.pid is not None:
            return "running"
        if self.leaving:
            return "stopping"
        return "down" if self.enabled else "off"

    def status(self) -> dict:
        return {"pid": self.pid, "state": self.state()}

    def launch_module(self, module: str, fd_option: str, secret: bytes, args=()) -> int:
        """Start ``python -m module fd_option N *args`` with ``secret`` on
        descriptor N, a memfd: what a command line holds, anyone running
        ``ps`` reads, and ``secret`` may hold the Redis password. Its pid."""
        fd = os.memfd_create(self.title.partition("[")[0], os.MFD_CLOEXEC)   # as in /proc/PID/fd
        try:
            os.write(fd, secret)
            os.lseek(fd, 0, os.SEEK_SET)
            # In a group of its own: Ctrl-C on the master's terminal is the master's to handle.
            return start_module(module, [fd_option, str(fd), *args], pass_fds=[fd], new_group=True)
        finally:
            os.close(fd)

    # -- as a HelperProcess (helperprocess.py) --------------------------
    def waitables(self) -> list:
        return []   # it only exits: the master's SIGCHLD wakes it

    def on_readable(self, waitable) -> None:
        pass

    def deadline(self):
        """While it is down: when it starts again; while one is leaving: when it is killed."""
        times = list(self.leaving.values())
        if self.pid is None and self.backoff.failures:
            times.append(self.backoff.until)
        return min(times) if times else None

    def owns(self, pid: int) -> bool:
        return pid == self.pid or pid in self.leaving

    def on_exit(self, pid: int, code: int, how: str) -> None:
        if self.leaving.pop(pid, None) is not None:
            return   # it was told to stop
        serves, self.pid, self.serves = self.serves, None, None
        if time.monotonic() - self.started >= SETTLED:
            self.backoff.succeeded()
        self.died(serves, code, how, self.backoff.failed())

    # -- the master's loop --------------------------------------------------
    def start_due(self, config) -> None:
        """Start it if ``config`` wants it and it is not running (nor backing
        off, nor a previous one still leaving); stop it if a reload changed or
        removed what it runs with."""
        now = time.monotonic()
        for pid, kill_at in self.leaving.items():
            if now >= kill_at:
                _signal(pid, signal.SIGKILL)   # reaped by the master: on_exit forgets it
                self.leaving[pid] = float("inf")
        serves = self.wanted(config)
        self.enabled = serves is not None
        if self.pid is not None and self.serves != serves:
            self.stop(wait=False)
            self.backoff.succeeded()
        if serves is None:
            self.backoff.succeeded()   # turned off: no earlier death delays it when turned on again
            return
        if self.pid is not None or self.leaving or self.backoff.waiting():
            return
        try:
            self.pid, self.serves, self.started = self.launch(serves), serves, now
            self.grace = self.grace_for(config)
        except OSError as exc:   # exec failed (the interpreter gone): try again later, live on
            log.error("cannot start %s: %s; trying again in %.1fs", self.what, exc, self.backoff.failed(),
                      extra=logs.event("helper_start_failed", helper=self.what, error=str(exc)))

    def stop(self, wait: bool = True) -> None:
        """Stop it: KILL at once (and reap it) when it has nothing to finish;
        else TERM, and KILL after its grace. ``wait``: the master is leaving,
        so wait for it here (reaping it); else the master reaps it later."""
        if self.pid is not None:
            if self.grace is None:
                _signal(self.pid, signal.SIGKILL)
                _reap(self.pid, None)
            else:
                _signal(self.pid, signal.SIGTERM)
                self.leaving[self.pid] = time.monotonic() + self.grace
            self.pid, self.serves = None, None
        if wait:
            self.enabled = False
            for pid, kill_at in list(self.leaving.items()):
                if not _reap(pid, kill_at):
                    log.warning("%s did not stop within %gs of TERM: killed", self.what, self.grace or 0,
                                extra=logs.event("helper_killed", helper=self.what))
                    _signal(pid, signal.SIGKILL)
                    _reap(pid, None)
                del self.leaving[pid]


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _reap(pid: int, until: float | None) -> bool:
    """Wait for ``pid`` to exit (until time.monotonic() ``until``; None: for
    as long as it takes); whether it did (or was reaped already)."""
    while True:
        try:
            done, _ = os.waitpid(pid, 0 if until is None else os.WNOHANG)
        except ChildProcessError:
            return True
        if done:
            return True
        if time.monotonic() >= until:
            return False
        time.sleep(KILL_POLL)
