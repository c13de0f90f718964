"""Logging for resqued processes: one line per event on stderr, as text or JSON."""

import json
import logging
import sys
import time

from resqued.process import logfile


class JsonFormatter(logging.Formatter):
    def format(self, record):
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(record.created)),
                 "level": record.levelname.lower(), "pid": record.process,
                 "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class TextFormatter(logging.Formatter):
    """One event, one line: the message's control characters are escaped
    (printable), so that a job id, class, queue or error taken from a payload
    cannot forge a line or send escape sequences to whoever reads the log. A
    traceback keeps its newlines, and loses its other control characters."""

    def formatMessage(self, record):
        record.message = printable(record.message)
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


def setup(level: str | int = "warning", fmt: str = "text", stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
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


def apply_exec_arguments(args) -> None:
    if args.log_level:
        setup(args.log_level, args.log_format)
    if args.log_file:
        logfile.inherit(args.log_file)
