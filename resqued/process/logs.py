"""Logging for resqued processes: one line per event on stderr, as text or JSON.

A log call that matters to an operator names its event and fields with
``extra=event("job_done", job_id=..., duration_ms=...)``: the text line is
the message alone; a JSON line carries them as fields beside it. Every
other line's event is "log".
"""

import json
import logging
import os
import signal
import time

from resqued.process import appoutput, logfile

DEFAULT_EVENT = "log"


def event(name: str, **fields) -> dict:
    """``extra=`` for a log call: its event and fields (JSON format only).
    ``job_class`` is written as ``class`` (a Python keyword); None is left out."""
    return {"event": name, "event_fields": {"class" if k == "job_class" else k: v
                                            for k, v in fields.items() if v is not None}}


def job_event(name: str, job, **fields) -> dict:
    """``event()`` for a line about ``job`` (a jobs.job.Job): its id, class and queue."""
    return event(name, job_id=job.id, job_class=job.job_class, queue=job.queue, **fields)


def exited(code: int) -> dict:
    """The fields of a process's exit, ``code`` as subprocess gives it
    (negative: the signal that killed it): exit_code, or signal."""
    if code >= 0:
        return {"exit_code": code}
    try:
        return {"signal": signal.Signals(-code).name}
    except ValueError:
        return {"signal": str(-code)}


def utc_time(created: float, msecs: float) -> str:
    """ISO 8601, UTC, to the millisecond: 2026-12-06T09:53:54.123Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + ".%03dZ" % int(msecs)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, pid, event, message, then
    the event's fields; with a traceback, ``exception`` (its type, unless
    the fields say) and ``traceback``. json.dumps escapes every control
    character, so a value from a payload cannot break the line."""

    def format(self, record):
        entry = {"time": utc_time(record.created, record.msecs), "level": record.levelname.lower(),
                 "logger": record.name, "pid": record.process,
                 "event": getattr(record, "event", DEFAULT_EVENT), "message": record.getMessage()}
        fields = getattr(record, "event_fields", None)
        if fields:
            entry.update(fields)
        if record.exc_info:
            entry.setdefault("exception", record.exc_info[0].__name__ if record.exc_info[0] else None)
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """One event, one line: the message's control characters are escaped
    (printable), so that a job id, class, queue or error taken from a payload
    cannot forge a line or send escape sequences to whoever reads the log. A
    traceback keeps its newlines, and loses its other control characters.
    A record's ``text_prefix`` (a job's output: "job 42 MyJob: ") comes
    before its message here; JSON has it as fields instead."""

    def formatMessage(self, record):
        record.message = printable(getattr(record, "text_prefix", "") + record.message)
        return super().formatMessage(record)

    def formatException(self, ei):
        return "\n".join(printable(line) for line in super().formatException(ei).split("\n"))


def printable(value) -> str:
    """``str(value)`` with each control (or other unprintable) character
    escaped as repr() writes it: ``\\n``, ``\\x1b``, ``\\u202e``."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def counted(n: int, noun: str) -> str:
    """"1 job", "2 jobs": log lines and titles read as English."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


class OwnStderr:
    """Where a process's own log lines go: its real stderr. That is fd 2,
    except in a job's process while its output is captured (fds 1 and 2 are
    then pipes: worker/execution/jobcapture.py), where it is the copy of the
    real one that logfile keeps: resqued's lines must not read as the job's."""

    def write(self, text: str) -> None:
        data = text.encode("utf-8", "backslashreplace")
        fd = logfile.real_stderr()
        while data:
            data = data[os.write(fd, data):]

    def flush(self) -> None:
        """Nothing is buffered: each line is one write."""


def setup(level: str | int = "warning", fmt: str = "text", stream=None) -> None:
    handler = logging.StreamHandler(stream or OwnStderr())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter(
            "%(asctime)s resqued[%(process)d] %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    logger = logging.getLogger("resqued")
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper() if isinstance(level, str) else level)
    logger.propagate = False



# -- a process of ours started by exec (process/interpreter.py) logs as its parent does

def exec_arguments() -> list[str]:
    """The arguments that tell an exec'd process (the spawner, the probe)
    how this one logs: level and format, and the daemon's log file that it
    follows (logfile.py). None of the first two before setup()."""
    logger = logging.getLogger("resqued")
    found = []
    if logger.handlers:
        fmt = "json" if any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers) else "text"
        found += ["--log-level", logging.getLevelName(logger.getEffectiveLevel()), "--log-format", fmt]
    if logfile.PATH:
        found += ["--log-file", logfile.PATH]
    return found


def add_exec_arguments(parser) -> None:
    parser.add_argument("--log-level", help="as the parent logs (none: as Python does by default)")
    parser.add_argument("--log-format", default="text")
    parser.add_argument("--log-file", help="the daemon's log file (process/logfile.py), followed")


def apply_exec_arguments(args, app_code: bool = False) -> None:
    """``app_code``: this process imports the app's code (the spawner, the
    probe), whose output must come out as JSON lines too."""
    if args.log_level:
        setup(args.log_level, args.log_format)
        if app_code and args.log_format == "json":
            appoutput.route()
    if args.log_file:
        logfile.inherit(args.log_file)
