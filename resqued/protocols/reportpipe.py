"""The report pipe: what a worker tells its master, one JSON line at a time
(written by worker/reports.py and spawner/entrypoints.ErrorReports, read by
master/workerprocess.Child.read_reports).

Three messages, told apart by their keys:

    {"state": "busy", "job": {...}, "since": t, "child": pid,
     "pid": p, "jobs": n, "paused": false,
     "outcomes": [[queue, class, outcome, s, wait s], ...]}   StateReport
    {"error": "ValueError: ..."}                       ErrorReport
    {"state": "stopping", "exit": code, "settled": b}  ExitAnnouncement

The exit announcement carries "state" too, so that a master of an older
version (during `resquectl restart`) reads it as a state report. The bytes
are those of earlier versions, both ways: a master and the workers of the
version before it understand each other. Finished jobs (``outcomes``, the
master's metrics) ride on state reports, which an older master reads
without them; a line without them is byte for byte an earlier version's.

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
LABEL_LIMIT = 100               # characters of a queue or class name in an outcome record
OUTCOMES_ROOM = 2500            # bytes a state line leaves for outcomes at least (a record is < 2480)
UNKNOWN_CLASS = "(unknown)"     # a job whose class the registry did not resolve


class JobOutcome(StrEnum):
    """How a job ended, as resqued_jobs_total's ``outcome`` label says it."""
    DONE = "done"
    SKIPPED = "skipped"         # a before_perform hook said DontPerform
    FAILED = "failed"
    DIRTY_EXIT = "dirty_exit"   # its child died without reporting (SIGKILL, OOM, os._exit)
    REQUEUED = "requeued"       # a stop killed it and gave it back to its queue
    LOST = "lost"               # its worker died; a recovery run settled it (the master counts these)
    # Past its job_timeout (resqued.JobTimeout). Declared before workers sent
    # it, so that a master older than its workers (a hot restart) accepts it.
    TIMEOUT = "timeout"


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
    outcomes: tuple = ()         # jobs finished since the last line that carried some (outcome_record)

    def __post_init__(self):
        if type(self.state) is not WorkerState:   # decode gives one: no second conversion
            object.__setattr__(self, "state", WorkerState(self.state))

    def to_json(self) -> dict:
        return state_fields(self.__dict__)

    @classmethod
    def checked(cls, state: WorkerState, fields: dict, outcomes: tuple) -> "StateReport":
        """The report of ``fields`` (a decoded line's), each checked for its
        type (ReportRefused), built without __init__: a frozen dataclass's
        sets each field through object.__setattr__. One line per job: the
        check and the build are one pass over STATE_ORDER."""
        report = object.__new__(cls)
        values = report.__dict__
        values["state"] = state
        for name in STATE_ORDER:
            value = fields.get(name)
            # By exact type: JSON gives no subclasses, and bool is no number here.
            if value is not None and type(value) not in _FIELD_TYPES[name]:
                raise ReportRefused(f"a state report whose {name} is malformed")
            values[name] = value
        values["outcomes"] = outcomes
        return report

    def encode(self) -> bytes:
        return state_line(self.__dict__)


# A state report's fields in the order of earlier versions' lines.
STATE_ORDER = ("job", "since", "child", "error", "pid", "jobs", "paused")
_KNOWN = frozenset(("state", *STATE_ORDER, "outcomes"))


def state_fields(fields: dict) -> dict:
    """A state report's JSON object from its fields (StateReport's, as a
    dict): "state" first, then STATE_ORDER, None left out; outcomes are
    state_line_carrying's. TypeError for a field a state report lacks."""
    unknown = fields.keys() - _KNOWN
    if unknown:
        raise TypeError(f"a state report has no field {sorted(unknown)[0]!r}")
    ordered = {"state": fields["state"]}
    for name in STATE_ORDER:
        value = fields.get(name)
        if value is not None:
            ordered[name] = value
    return ordered


def state_line(fields: dict) -> bytes:
    """The line of a state report with ``fields``, built from the dict at
    once (no StateReport in between: a line per job)."""
    return report_line(state_fields(fields))


def state_line_carrying(fields: dict, outcomes, plain: bytes | None = None) -> tuple[bytes, int]:
    """The line of a state report with ``fields`` that carries the first
    of the encoded ``outcomes`` (outcome_record's) that fit under
    LINE_LIMIT, and how many it carries (at least one). ``plain``: the
    line of ``fields`` without records (state_line's), if the caller has
    it: not encoded again when it leaves room for a record (a line per job)."""
    # Room for one record at least: a long job id is cut sooner.
    if plain is not None and len(plain) <= LINE_LIMIT - OUTCOMES_ROOM:
        line = plain
    else:
        line = report_line(state_fields(fields), LINE_LIMIT - OUTCOMES_ROOM)
    room = LINE_LIMIT - len(line) - len(_OUTCOMES_OPEN) - 2
    taken = []
    for record in outcomes:
        room -= len(record) + 2
        if room < 0 and taken:
            break
        taken.append(record)
    return line[:-2] + _OUTCOMES_OPEN + b", ".join(taken) + b"]}\n", len(taken)


_OUTCOMES_OPEN = b', "outcomes": ['


def outcome_record(queue: str, job_class: str, outcome: JobOutcome, duration: float,
                   wait: float | None) -> bytes:
    """One finished job, encoded once (state_line joins them): its queue,
    its class (UNKNOWN_CLASS unless the registry resolved it), how it ended,
    seconds it ran, seconds it waited in its queue (None: its payload had
    no queue_time)."""
    return json.dumps([queue[:LABEL_LIMIT], job_class[:LABEL_LIMIT], outcome,
                       round(duration, 6), None if wait is None else round(wait, 6)]).encode()


@dataclass(frozen=True)
class ErrorReport:
    """An error the worker logged: a FAILED pool's reason (resquectl status,
    systemd's STATUS=)."""
    text: str

    def encode(self) -> bytes:
        # Cut by encoded bytes, not characters: JSON escapes a non-ASCII
        # character to up to 12 bytes, and a line past PIPE_BUF is no
        # longer written whole or not at all.
        return report_line({"error": self.text})


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


def report_line(report: dict, size: int = LINE_LIMIT) -> bytes:
    """``report`` as one JSON line of at most ``size`` bytes."""
    line = json.dumps(report).encode() + b"\n"
    limit = TEXT_LIMIT
    while len(line) > size and limit:
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
        # Decoded to text first: json.loads of bytes guesses their encoding
        # on every line (the worker's encoder writes ASCII JSON, as every
        # version's did).
        fields = _JSON.decode(line.decode())
    except (ValueError, RecursionError):   # UnicodeDecodeError is a ValueError
        raise ReportRefused("not JSON") from None
    if not isinstance(fields, dict):
        raise ReportRefused("not a JSON object")
    if len(fields) == 1 and "error" in fields:
        if not isinstance(fields["error"], str):
            raise ReportRefused("an error report whose error is not a string")
        return ErrorReport(fields["error"])
    if "exit" in fields:
        if not _is_int(fields["exit"]):
            raise ReportRefused("an exit announcement whose exit is not a number")
        # Without "settled" (or with anything but true): not settled.
        return ExitAnnouncement(fields["exit"], fields.get("settled") is True)
    # A dict's lookup, not WorkerState(): an enum's call costs a line a microsecond.
    state = _STATES.get(fields.get("state")) if type(fields.get("state")) is str else None
    if state is None:
        raise ReportRefused(f"unknown state {str(fields.get('state'))[:40]!r}")
    outcomes = fields.get("outcomes")
    if outcomes is not None and not (isinstance(outcomes, list) and all(map(_is_outcome, outcomes))):
        raise ReportRefused("a state report whose outcomes are malformed")
    return StateReport.checked(state, fields, tuple(outcomes) if outcomes else ())


_STATES = {state.value: state for state in WorkerState}
_JSON = json.JSONDecoder()


def _is_int(value) -> bool:
    return type(value) is int


_NUMBER = frozenset((int, float))
_OUTCOMES = frozenset(JobOutcome)


def _is_outcome(record) -> bool:
    """[queue, class, outcome, duration, wait or null]: label values of
    bounded length, an outcome of JobOutcome's (a line must not create
    label values at will). Types compared exactly, as checked() does."""
    return (type(record) is list and len(record) == 5 and type(record[0]) is str
            and type(record[1]) is str and len(record[0]) <= LABEL_LIMIT and len(record[1]) <= LABEL_LIMIT
            and type(record[2]) is str and record[2] in _OUTCOMES and type(record[3]) in _NUMBER
            and (record[4] is None or type(record[4]) in _NUMBER))


# What each of a state report's fields may be, when present (None: absent).
_FIELD_TYPES = {"job": frozenset((dict,)), "since": _NUMBER, "child": frozenset((int,)),
                "error": frozenset((str,)), "pid": frozenset((int,)), "jobs": frozenset((int,)),
                "paused": frozenset((bool,))}
