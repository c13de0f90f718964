"""The childReady listeners: the app's warm-up of each job child (open
connections, fill caches), run as soon as the child exists, before its job
is known, as gunicorn's ``post_fork`` and Resque's ``after_fork`` let an
app reconnect. In a standby they run while it waits (jobchild.py), off
the job's path; in a child forked on demand (beforeFork listeners) just
before ``afterFork``; in an inline worker (``fork: false``) once, before
its first job (inline.py). resqued's own client is connected after them
(jobs/ownclient.py).

A standby with listeners tells the worker how they went, on its report
pipe, before its job is handed over: ``READY``, or ``FAILED`` and one line
(the exception's last traceback line and where it was raised) before it
exits. The worker hands a job only to a ready standby: while the listeners
fail, it takes no job (a job taken with the last outcome goes back to the
head of its queue), tries a new standby after a growing delay, and logs
the failure once a minute (``Failures``). Jobs wait in their queue rather
than run without what the listeners set up, as a gunicorn worker whose
``post_fork`` fails serves no request.
"""

import logging
import os
import time
import traceback

from resqued.jobs import events, ownclient
from resqued.process.logs import event
from resqued.process.signals import wait_readable

log = logging.getLogger("resqued.worker")

READY = b"+"
FAILED = b"!"
FIRST_DELAY = 0.25     # seconds before a new standby after a failure; doubled each time
MAX_DELAY = 10.0
LOG_EVERY = 60.0       # seconds: one line per minute while the listeners keep failing


def has_listeners() -> bool:
    return events.has_listeners("childReady")


def run() -> None:
    """The childReady listeners, then resqued's client, in this process."""
    events.trigger("childReady")
    ownclient.open_ahead()


def describe_failure(exc: BaseException) -> str:
    """The traceback's last line, and where it was raised."""
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name})" if frames else ""
    return (last + where)[:2000]


def prepare_standby(report_fd: int) -> bool:
    """In a standby: run the listeners and say how it went on ``report_fd``
    (only when there are listeners: the worker then waits for the word);
    False if they failed (the standby exits)."""
    if not has_listeners():
        ownclient.open_ahead()
        return True
    try:
        run()
    except BaseException as exc:  # SystemExit too: the standby cannot serve
        line = describe_failure(exc).encode("utf-8", "replace").replace(b"\n", b" ")
        _say(report_fd, FAILED + line + b"\n")
        return False
    _say(report_fd, READY)
    return True


def _say(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def read_word(fd: int, wake, timeout: float | None):
    """In the worker: a standby's word on its report pipe. True (ready),
    None (nothing yet: ``timeout`` passed or ``wake`` became readable), or
    the failure's line (a str) when it failed or died before saying."""
    if not wait_readable([fd], 0):
        if not wait_readable([fd, *wake], timeout) or not wait_readable([fd], 0):
            return None
    first = os.read(fd, 1)
    if first == READY:
        return True
    if first != FAILED:
        return "the standby died before its childReady listeners finished"
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(fd, 4096)   # it exits right after the line
        if not chunk:
            break
        line += chunk
    return line.decode("utf-8", "replace").strip() or "(no message)"


class Failures:
    """The worker's account of failed childReady listeners: when to try
    again, and one log line per LOG_EVERY seconds, not one per attempt."""

    def __init__(self, worker_id: str):
        self.worker_id = worker_id
        self.count = 0            # failures in a row
        self.unlogged = 0         # since the last line
        self.logged_at = None

    def failed(self, where: str, text: str) -> float:
        """Note a failure in ``where`` ("job child 1234", "the worker"); the
        seconds to wait before the next attempt."""
        self.count += 1
        delay = min(MAX_DELAY, FIRST_DELAY * 2 ** (self.count - 1))
        now = time.monotonic()
        if self.logged_at is not None and now - self.logged_at < LOG_EVERY:
            self.unlogged += 1
            return delay
        more = f"; {self.unlogged} more failure(s) since the last line" if self.unlogged else ""
        log.error("worker %s: childReady listener failed in %s: %s; no job is taken until they "
                  "succeed (next try in %gs%s)", self.worker_id, where, text, delay, more,
                  extra=event("child_ready_failed", worker=self.worker_id, error=text, failures=self.count))
        self.logged_at, self.unlogged = now, 0
        return delay

    def succeeded(self) -> None:
        if self.count:
            log.warning("worker %s: childReady listeners succeeded after %d failure(s): taking jobs again",
                        self.worker_id, self.count,
                        extra=event("child_ready_recovered", worker=self.worker_id, failures=self.count))
        self.count, self.unlogged, self.logged_at = 0, 0, None
