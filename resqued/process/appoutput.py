"""The app's own output as log lines, in a process that imports app code
(the spawner, its workers, the config probe) and logs JSON: what job
modules print at import, what beforeFirstFork/beforeFork hooks print,
``warnings`` and the app's unhandled ``logging`` records would otherwise
be raw text among the JSON lines, which a log shipper refuses.

At the Python level: ``sys.stdout`` and ``sys.stderr`` become line
writers that log "app_output" lines (no job), warnings go through
``logging`` (captureWarnings), and Python's last-resort handler writes
"app_log" lines through resqued's handlers. What a C extension or a
subprocess writes to fds 1 and 2 still comes out raw there: those
processes run no job, and a pipe-reading thread in each is not worth it.
A job's own output is captured apart (worker/execution/jobcapture.py),
which puts the real streams back for the job (``real_streams``).
"""

import io
import logging
import sys

log = logging.getLogger("resqued.process")

MAX_LINE = 16384   # characters kept before a line without its end is logged


class AppStream(io.TextIOBase):
    """A text stream whose lines are logged as "app_output" lines."""

    def __init__(self, stream: str, level: int, fd: int):
        super().__init__()
        self.stream, self.level, self.fd = stream, level, fd
        self._pending = ""
        # As logs.event() builds it (logs imports this module: not the other way).
        self.extra = {"event": "app_output", "event_fields": {"stream": stream}}

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.fd   # faulthandler and subprocess ask: the real fd

    def write(self, text) -> int:
        text = str(text)
        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            self._log(line)
        if len(self._pending) > MAX_LINE:
            self.flush()
        return len(text)

    def flush(self) -> None:
        if self._pending:
            line, self._pending = self._pending, ""
            self._log(line)

    def _log(self, line: str) -> None:
        log.log(self.level, "%s", line.rstrip("\r"), extra=self.extra)


class AppRecords(logging.Handler):
    """Python's last-resort handler here: the app's records that no handler
    of its own took (and warnings), as "app_log" lines of resqued's format."""

    def __init__(self):
        super().__init__(logging.WARNING)

    def emit(self, record):
        resqued = logging.getLogger("resqued")
        if record.levelno < resqued.getEffectiveLevel():
            return
        record.event, record.event_fields = "app_log", {}
        record.text_prefix = f"{record.name}: "
        for handler in resqued.handlers:
            if record.levelno >= handler.level:
                handler.handle(record)


def route() -> None:
    """From now on, the app's output in this process is log lines."""
    records = AppRecords()
    logging.captureWarnings(True)
    # Its own handler: captureWarnings gives "py.warnings" a NullHandler
    # when it has none, which the last-resort handler would never see past.
    logging.getLogger("py.warnings").addHandler(records)
    logging.lastResort = records
    sys.stdout = AppStream("stdout", logging.INFO, 1)
    sys.stderr = AppStream("stderr", logging.WARNING, 2)


def real_streams() -> None:
    """In a job's process: the real streams again, whose fds 1 and 2 the
    job's capture makes its pipes (a job's lines must carry its id)."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, AppStream):
            stream.flush()
    if isinstance(sys.stdout, AppStream):
        sys.stdout = sys.__stdout__
    if isinstance(sys.stderr, AppStream):
        sys.stderr = sys.__stderr__
