"""The report pipe: what a worker tells its master, one JSON line at a time
(written by worker/reports.py and spawner/entrypoints.ErrorReports, read by
master/workerprocess.Child.read_reports).

Three messages, told apart by their keys:

    {"state": "busy", "job": {...}, "since": t, "child": pid,
     "pid": p, "jobs": n, "paused": false}             StateReport
    {"error": "ValueError: ..."}                       ErrorReport
    {"state": "stopping", "exit": code, "settled": b}  ExitAnnouncement

The exit announcement carries "state" too, so that a master of an older
version (during `resquectl restart`) reads it as a state report. The bytes
are those of earlier versions, both ways: a master and the workers of the
version before it understand each other.

Every line fits in PIPE_BUF, which a pipe writes whole or not at all: a
longer one could be written in part, and its rest, lost, would merge with
the next line into one the master cannot read. What makes a line long is
text from a payload (a job id is whatever the enqueuer chose), so long
strings are cut, saying how long they were.
"""

import json
import select
from dataclasses import dataclass

from resqued.protocols.strenum import StrEnum

LINE_LIMIT = select.PIPE_BUF    # 4096 on Linux
TEXT_LIMIT = 200                # characters of one string in a report, at first


class WorkerState(StrEnum):
    """A worker's state, as its master shows it (resquectl status) and as
    Redis's worker list shows it (resquectl workers: idle, busy or paused)."""
    STARTING = "starting"      # no report yet
    IDLE = "idle"
    BUSY = "busy"
    PAUSED = "paused"
    REDIS_DOWN = "redis-down"
    STOPPING = "stopping"


class ReportRefused(ValueError):
    """A line that is no report: its reason, in one line."""


@dataclass(frozen=True)
class StateReport:
    state: WorkerState
    job: dict | None = None      # busy (and redis-down while busy): {"class", "id", "queue"} of its job
    since: float | None = None   # busy: when the job began; redis-down: when Redis went away
    child: int | None = None     # busy in a forked child: its pid
    error: str | None = None     # redis-down: why
    pid: int | None = None
    jobs: int | None = None      # jobs done so far
    paused: bool | None = None   # told to pause (a busy worker pauses after its job)

    def __post_init__(self):
        object.__setattr__(self, "state", WorkerState(self.state))

    def to_json(self) -> dict:
        # This order, None left out, is the order of earlier versions' lines.
        fields = {"state": self.state}
        for name in ("job", "since", "child", "error", "pid", "jobs", "paused"):
            if getattr(self, name) is not None:
                fields[name] = getattr(self, name)
        return fields

    def encode(self) -> bytes:
        return report_line(self.to_json())


@dataclass(frozen=True)
class ErrorReport:
    """An error the worker logged: a FAILED pool's reason (resquectl status,
    systemd's STATUS=)."""
    text: str

    def encode(self) -> bytes:
        return json.dumps({"error": self.text}).encode() + b"\n"


@dataclass(frozen=True)
class ExitAnnouncement:
    """The worker is about to exit with ``code`` of its own accord;
    ``settled``: it leaves nothing in its in-flight lists. Its last state
    report still says what it was doing."""
    code: int
    settled: bool

    def encode(self) -> bytes:
        # Far shorter than PIPE_BUF: written whole or not at all.
        return json.dumps({"state": WorkerState.STOPPING, "exit": self.code,
                           "settled": self.settled}).encode() + b"\n"


Report = StateReport | ErrorReport | ExitAnnouncement


def report_line(report: dict) -> bytes:
    """``report`` as one JSON line of at most LINE_LIMIT bytes."""
    line = json.dumps(report).encode() + b"\n"
    limit = TEXT_LIMIT
    while len(line) > LINE_LIMIT and limit:
        # Escaped, a character takes up to 12 bytes: halve until it fits.
        line = json.dumps(_shortened(report, limit)).encode() + b"\n"
        limit //= 2
    return line


def _shortened(value, limit: int):
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]}… ({len(value)} characters)"
    if isinstance(value, dict):
        return {key: _shortened(item, limit) for key, item in value.items()}
    if isinstance(value, list):
        return [_shortened(item, limit) for item in value]
    return value


def decode(line: bytes) -> Report:
    """The message on one line (without its newline); ReportRefused if it is
    none. Keys a message does not know are ignored."""
    try:
        fields = json.loads(line)
    except (ValueError, RecursionError):
        raise ReportRefused("not JSON") from None
    if not isinstance(fields, dict):
        raise ReportRefused("not a JSON object")
    if set(fields) == {"error"}:
        if not isinstance(fields["error"], str):
            raise ReportRefused("an error report whose error is not a string")
        return ErrorReport(fields["error"])
    if "exit" in fields:
        if not _is_int(fields["exit"]):
            raise ReportRefused("an exit announcement whose exit is not a number")
        # Without "settled" (or with anything but true): not settled.
        return ExitAnnouncement(fields["exit"], fields.get("settled") is True)
    try:
        state = WorkerState(fields.get("state"))
    except ValueError:
        raise ReportRefused(f"unknown state {str(fields.get('state'))[:40]!r}") from None
    for name, valid in _STATE_FIELDS.items():
        if fields.get(name) is not None and not valid(fields[name]):
            raise ReportRefused(f"a state report whose {name} is malformed")
    return StateReport(state, **{name: fields.get(name) for name in _STATE_FIELDS})


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_STATE_FIELDS = {"job": lambda v: isinstance(v, dict), "since": _is_number, "child": _is_int,
                 "error": lambda v: isinstance(v, str), "pid": _is_int, "jobs": _is_int,
                 "paused": lambda v: isinstance(v, bool)}
