"""A job's output as log lines: its stdout, stderr and ``logging`` records
come out as resqued's lines, each carrying the job's id, class and queue.

Captured at the fd level, so that what a C extension or a subprocess
writes to fd 1 or 2 is the job's output too: in the job's process, fds 1
and 2 are pipes (``capture_in_child``; logfile keeps the real ones for
resqued's own lines, which must not read as the job's). The worker holds
their read ends and logs each line as it arrives (``JobOutput``): it waits
for the job child anyway (childwatch.py), the lines come out in order
before the job's done or failed line, and what a job wrote before it was
killed is not lost with it. A standby sets all this up while it waits,
off its job's path. An inline job (``fork: false``) runs in the worker
itself, so a thread of the worker reads its pipes (``InlineCapture``).

A line longer than MAX_LINE bytes is cut into pieces of that size, each a
line of its own, so that a job writing megabytes without a newline costs a
bounded buffer and never blocks on a full pipe. Each piece's text is then
cut to TEXT_ROOM bytes, escaped, saying "(cut: N bytes)" (shown_text). A last partial line is
logged when the job ends. Output written after the job's outcome (by what
it left running) is not read. In an inline worker, a thread the job
started and left running writes, after the job's end, to the worker's own
fds 1 and 2: its output comes out raw, as no job's.

The app's ``logging`` records that no handler of its own takes (its root
logger is not configured: Python would print them to stderr through its
last-resort handler) come out as "job_log" lines with their logger and
level (``JobRecords``). An app that configured its own handlers keeps
them; what they write to stderr comes out as the job's stderr lines.
"""

import json
import logging
import os
import select
import sys
import threading

from resqued.process import appoutput, logfile
from resqued.process.logs import job_event

log = logging.getLogger("resqued.worker")

MAX_LINE = 16384     # bytes: a longer line is cut into pieces this long
# Bytes of a line's text, once escaped, in its log line: the whole log line
# then stays under PIPE_BUF (4096), which a write to a shared stderr needs
# so that it is not interleaved with another process's line.
TEXT_ROOM = 3000
CHUNK = 65536        # bytes read at a time
DRAIN_LIMIT = 1 << 20   # bytes read from a pipe once its job has ended (a full pipe holds 64 KiB)
STREAMS = (("stdout", logging.INFO), ("stderr", logging.WARNING))


def output_pipes() -> tuple[tuple[int, int], tuple[int, int]]:
    """A job's stdout and stderr pipes: (read ends, write ends). The read
    ends are non-blocking: the worker reads only what is there."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    os.set_blocking(out_r, False)
    os.set_blocking(err_r, False)
    return (out_r, err_r), (out_w, err_w)


# -- in the job's process ------------------------------------------------------

class JobRecords(logging.Handler):
    """Python's last-resort handler in a job's process: the app's records
    that no handler of its own took, written by resqued's handlers as
    "job_log" lines. Its level is the last-resort handler's (WARNING), so
    what is logged is what Python would have printed."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.job = None

    def emit(self, record):
        resqued = logging.getLogger("resqued")
        if record.levelno < resqued.getEffectiveLevel():
            return   # log.level applies to a job's lines as to resqued's
        job = self.job
        record.event = "job_log"
        record.event_fields = job_event("job_log", job)["event_fields"] if job else {}
        record.text_prefix = f"job {job.label} {job.job_class}: {record.name}: " if job else f"{record.name}: "
        for handler in resqued.handlers:
            if record.levelno >= handler.level:
                handler.handle(record)


JOB_RECORDS = JobRecords()


def capture_in_child(write_fds) -> None:
    """In a job child (or a standby, before its job comes): fds 1 and 2
    to the output pipes' write ends, the app's unhandled records to
    JOB_RECORDS."""
    appoutput.real_streams()
    logfile.capture(*write_fds)
    for fd in write_fds:
        os.close(fd)
    _line_buffered()
    logging.lastResort = JOB_RECORDS


def _line_buffered() -> None:
    # On a pipe, print() would otherwise reach the log only every 8 KB or at
    # the job's end; line by line is what a terminal shows.
    for stream in {id(s): s for s in (sys.stdout, sys.__stdout__)}.values():
        try:
            stream.reconfigure(line_buffering=True)
        except (AttributeError, ValueError):
            pass   # replaced (by the app, or appoutput), or closed


def job_begins(job) -> None:
    JOB_RECORDS.job = job


def job_ends() -> None:
    """Before the job's outcome is reported: what its streams buffer goes
    to the pipes, so that the worker reads it before the report."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


# -- in the worker ---------------------------------------------------------------

class Lines:
    """Bytes in, one log line per complete line out (cut at MAX_LINE)."""

    def __init__(self, stream: str, level: int):
        self.stream = stream
        self.level = level
        self.job = None
        self.extra = None    # built at the first line: most jobs write none
        self.buffer = bytearray()

    def job_is(self, job) -> None:
        self.job, self.extra = job, None

    def feed(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        start = 0
        while True:
            end = buffer.find(b"\n", start, start + MAX_LINE + 1)
            if end >= 0:
                self._emit(buffer[start:end])
                start = end + 1
            elif len(buffer) - start > MAX_LINE:
                self._emit(buffer[start:start + MAX_LINE])
                start += MAX_LINE
            else:
                break
        del buffer[:start]

    def flush(self) -> None:
        if self.buffer:
            self._emit(self.buffer)
            self.buffer = bytearray()

    def _emit(self, line) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        if self.extra is None:
            job = self.job
            self.extra = job_event("job_output", job, stream=self.stream) if job else \
                {"event": "job_output", "event_fields": {"stream": self.stream}}
            self.extra["text_prefix"] = f"job {job.label} {job.job_class}: " if job else ""
        log.log(self.level, "%s", shown_text(bytes(line)), extra=self.extra)


def shown_text(line: bytes) -> str:
    """``line`` as its log line's text, cut so that it takes at most
    TEXT_ROOM bytes once escaped. JSON's escaping (up to 12 bytes a
    character) is the measure for both formats: the text format's (UTF-8,
    printable's escapes) never takes more."""
    text = line.decode("utf-8", "backslashreplace")
    if len(line) * 12 <= TEXT_ROOM or len(json.dumps(text)) <= TEXT_ROOM:
        return text
    low, high = 0, min(len(line), TEXT_ROOM)   # the longest prefix that fits: in [low, high]
    while low < high:
        middle = (low + high + 1) // 2
        if len(json.dumps(line[:middle].decode("utf-8", "backslashreplace"))) <= TEXT_ROOM:
            low = middle
        else:
            high = middle - 1
    while 0 < low < len(line) and line[low] & 0xC0 == 0x80:
        low -= 1   # not in the middle of a UTF-8 character
    return f"{line[:low].decode('utf-8', 'backslashreplace')}… (cut: {len(line) - low} bytes)"


class JobOutput:
    """The worker's end of a job's output pipes: ``read(fd)`` when one is
    readable, ``close()`` once the job has ended (what is left is read,
    partial lines logged, the pipes closed)."""

    def __init__(self, read_fds, job=None):
        self.lines = {fd: Lines(stream, level) for fd, (stream, level) in zip(read_fds, STREAMS)}
        self.open = list(read_fds)
        self.job_is(job)

    def job_is(self, job) -> None:
        """Whose lines these are (inline: each job's in turn)."""
        for lines in self.lines.values():
            lines.job_is(job)

    def read(self, fd: int, limit: int = CHUNK) -> bool:
        """Read what ``fd`` has (at most ``limit`` bytes); False if nothing
        (or it is closed: it is then left out of ``open``)."""
        try:
            data = os.read(fd, limit)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            if fd in self.open:
                self.open.remove(fd)
            return False
        self.lines[fd].feed(data)
        return True

    def drain(self) -> None:
        """Read what the pipes hold now (at most DRAIN_LIMIT bytes each: not
        all that a process the job left running keeps adding)."""
        for fd in self.readable():
            left = DRAIN_LIMIT
            while left > 0 and self.read(fd):
                left -= CHUNK

    def readable(self) -> list[int]:
        """The pipes that hold something (or are closed), without waiting."""
        return select.select(self.open, [], [], 0)[0] if self.open else []

    def flush(self) -> None:
        for lines in self.lines.values():
            lines.flush()

    def partial(self) -> bool:
        return any(lines.buffer for lines in self.lines.values())

    def close(self) -> None:
        self.drain()
        self.flush()
        for fd in self.lines:
            os.close(fd)
        self.open = []


class InlineCapture:
    """An inline job's output (``fork: false``): the worker's fds 1 and 2
    are the pipes while the job runs, and a thread logs their lines. At
    the job's end, the worker waits until the thread has logged what the
    job wrote (most often nothing: no wait)."""

    DRAIN_TIMEOUT = 5.0   # seconds: a thread that takes longer is not waited for

    def __init__(self):
        read_fds, self.write_fds = output_pipes()
        self.output = JobOutput(read_fds)
        self._wake_r, self._wake_w = os.pipe()
        self._drained = threading.Event()
        self._busy = False
        self._previous_last_resort = None
        self._app_streams = sys.stdout, sys.stderr
        _line_buffered()
        threading.Thread(target=self._run, name="job output", daemon=True).start()

    def begin(self, job) -> None:
        self.output.job_is(job)
        JOB_RECORDS.job = job
        self._app_streams = sys.stdout, sys.stderr
        appoutput.real_streams()
        logfile.capture(*self.write_fds)
        self._previous_last_resort, logging.lastResort = logging.lastResort, JOB_RECORDS

    def end(self) -> None:
        job_ends()
        logfile.release()
        sys.stdout, sys.stderr = self._app_streams
        logging.lastResort = self._previous_last_resort
        JOB_RECORDS.job = None
        # Asked in this order, nothing is left unlogged when all say so: the
        # thread marks itself busy before it takes bytes out of a pipe.
        if self.output.readable() or self._busy or self.output.partial():
            self._drained.clear()
            os.write(self._wake_w, b".")
            self._drained.wait(self.DRAIN_TIMEOUT)

    def _run(self) -> None:
        output = self.output
        while output.open:
            ready, _, _ = select.select(output.open + [self._wake_r], [], [])
            self._busy = True
            for fd in ready:
                if fd != self._wake_r:
                    output.read(fd)
            if self._wake_r in ready:
                os.read(self._wake_r, 64)
                output.drain()
                output.flush()
                self._drained.set()
            self._busy = False
