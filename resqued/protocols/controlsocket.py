"""The control socket's protocol: what resquectl asks a running master and
what the master answers (master/control.py and master/requests.py serve it,
ctl/masterclient.py and ctl/mastercommands.py ask).

Framing: one request per connection, one JSON object on one line
(``{"command": "pause", "wait": 30}``, at most MAX_REQUEST bytes); one JSON
line back, ``{"ok": true, ...}`` with the master's status, or
``{"ok": false, "error": "..."}``. Keys a request does not use are ignored.

``metrics`` is the metrics exporter's (resqued/exporter/), not resquectl's:
its answer carries the master's part of the metrics (``Metrics``) instead
of the status, and is answered even while the master stops.
"""

import json
import math
from dataclasses import dataclass, field
from typing import NotRequired, TypedDict

from resqued.protocols.strenum import StrEnum

MAX_REQUEST = 64 * 1024


class ControlError(RuntimeError):
    """The socket cannot be served (master) or the master cannot be asked (resquectl)."""


class BadRequest(ValueError):
    """What is wrong with a request line, in one line: the error answered."""


class Command(StrEnum):
    STATUS = "status"
    PAUSE = "pause"
    RESUME = "resume"
    RELOAD = "reload"
    RESTART = "restart"
    STOP = "stop"
    METRICS = "metrics"


COMMANDS = tuple(Command)


@dataclass(frozen=True)
class Request:
    command: Command
    wait: float | None = None     # pause: also until running jobs finish, this many seconds at most
    pools: tuple[str, ...] = ()   # restart: these pools only (none: every pool)
    now: bool = False             # stop: at once, not after the running jobs
    memory: bool = True           # status: each worker's memory too (reading /proc: the costly part)
    workers: bool = True          # status: each worker's record; False: per pool, how many in each state

    def __post_init__(self):
        object.__setattr__(self, "command", Command(self.command))
        object.__setattr__(self, "pools", tuple(self.pools))

    def encode(self) -> bytes:
        # Each command with the arguments it takes: the line resquectl has always sent.
        fields = {"command": self.command}
        if self.command == Command.PAUSE and self.wait is not None:
            fields["wait"] = self.wait
        elif self.command == Command.RESTART:
            fields["pools"] = list(self.pools)
        elif self.command == Command.STOP:
            fields["now"] = self.now
        elif self.command == Command.STATUS:
            if not self.memory:
                fields["memory"] = False
            if not self.workers:
                fields["workers"] = False
        return json.dumps(fields).encode() + b"\n"


def decode_request(line: bytes) -> Request:
    """The request on one line; BadRequest says what is wrong with it."""
    try:
        fields = json.loads(line)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"request is not JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("request is nested too deeply to be a command") from None
    if not isinstance(fields, dict):
        raise BadRequest("request is not a JSON object")
    command = fields.get("command")
    if command not in COMMANDS:
        raise BadRequest(f"unknown command {_shown(command)}; commands are {', '.join(COMMANDS)}")
    pools = fields.get("pools", [])
    if command == Command.RESTART and not (isinstance(pools, list) and all(isinstance(p, str) for p in pools)):
        raise BadRequest("restart: pools must be a list of pool names")
    wait = fields.get("wait")
    if command == Command.PAUSE and wait is not None and (isinstance(wait, bool) or not isinstance(wait, (int, float))
                                                          or not 0 < wait < math.inf):   # NaN too: JSON allows it
        raise BadRequest("pause: wait must be a number of seconds above 0")
    memory = fields.get("memory", True)
    if command == Command.STATUS and not isinstance(memory, bool):
        raise BadRequest("status: memory must be true or false")
    workers = fields.get("workers", True)
    if command == Command.STATUS and not isinstance(workers, bool):
        raise BadRequest("status: workers must be true or false")
    return Request(command, wait=wait if command == Command.PAUSE else None,
                   pools=tuple(pools) if command == Command.RESTART else (),
                   now=bool(fields.get("now")) if command == Command.STOP else False,
                   memory=memory if command == Command.STATUS else True,
                   workers=workers if command == Command.STATUS else True)


def _shown(command) -> str:
    # Never the repr of whatever arrived: it can be 64 KiB long, or nested
    # deeper than repr can go.
    if isinstance(command, str):
        return repr(command) if len(command) <= 60 else f"{command[:60]!r}… ({len(command)} characters)"
    kinds = {type(None): "(none given)", bool: "(a boolean)", int: "(a number)", float: "(a number)",
             list: "(an array)", dict: "(an object)"}
    return kinds.get(type(command), "(not a string)")


# -- answers -------------------------------------------------------------------

class MasterInfo(TypedDict):
    pid: int
    config: str
    state: str            # running, paused, restarting, winched, stopping
    rss: int
    worker_count: int     # its worker processes, those retiring after a reload too (not in an older master's)


class SpawnerInfo(TypedDict):
    pid: int | None
    state: str            # ready, starting, down
    rss: int | None


class KeptInfo(TypedDict):
    """A process the master keeps beside its workers when enabled: the scheduler, the exporter."""
    pid: int | None
    state: str            # running, stopping, down (starts again after a backoff), off
    rss: int | None


class PoolStatus(TypedDict):
    queues: list[str]
    count: int
    alive: int
    failed: bool
    reason: str | None
    last_exit: str | None
    last_error: str | None
    recycles: int
    restarts: int
    max_memory: int | None
    max_jobs: int | None
    kind: str             # python, or command: its workers run ``command`` (not in an older master's answer)
    command: list[str] | None
    states: NotRequired[dict[str, int]]   # asked without workers: state -> how many of its workers are in it


class WorkerStatus(TypedDict):
    pid: int
    queues: list[str]
    state: str            # a reportpipe.WorkerState
    paused: bool
    job: dict | None      # {"class", "id", "queue"}
    since: float | None
    error: str | None     # redis-down: why
    jobs_done: int
    memory: int
    job_memory: int | None
    started: float
    stop_reason: str | None


class Status(TypedDict):
    master: MasterInfo
    spawner: SpawnerInfo
    scheduler: KeptInfo   # (not in an older master's answer)
    exporter: KeptInfo
    pools: list[PoolStatus]
    workers: list[WorkerStatus]   # empty when asked without workers (the fleet advertiser: the pools' states)


STATUS_KEYS = tuple(Status.__annotations__)


class MetricsTally(TypedDict):
    """What the master counted (master/metricstally.py)."""
    buckets: list[float]    # the histograms' upper bounds, seconds (+Inf follows)
    jobs: list              # [queue, class, outcome, count]
    durations: dict         # queue -> {"counts": per bucket, not cumulative, +Inf last; "sum"}
    waits: dict             # the same, for the seconds jobs waited in their queue
    exits: list             # [pool, reason, count]
    reloads: dict           # result (ok, refused) -> count


class PoolMetrics(TypedDict):
    name: str
    failed: bool
    workers: list           # [pid, state, job child's pid or None] of each worker (the exporter reads their memory)


class Metrics(TypedDict):
    tally: MetricsTally
    pools: list[PoolMetrics]


@dataclass(frozen=True)
class Answer:
    """``ok``: the request was done; with the master's status as it was then."""
    status: dict = field(default_factory=dict)   # a Status, or nothing
    pid: int | None = None        # stop: the master's pid, to wait for its end
    message: str | None = None    # what was done: paused, resumed, applied, restarted, stopping
    metrics: dict | None = None   # metrics: a Metrics, instead of the status

    def encode(self) -> bytes:
        fields = {"ok": True}
        if self.pid is not None:
            fields["pid"] = self.pid
        if self.message is not None:
            fields["message"] = self.message
        if self.metrics is not None:
            fields["metrics"] = self.metrics
        return json.dumps({**fields, **self.status}).encode() + b"\n"


@dataclass(frozen=True)
class Refusal:
    """The request was not done, and why."""
    error: str
    unsupported: bool = False         # never in this mode (reload in env mode)
    config_error: bool | None = None  # refused for the config or the code (resquectl exits 78)

    def encode(self) -> bytes:
        fields = {"ok": False}
        if self.unsupported:
            fields["unsupported"] = True
        fields["error"] = self.error
        if self.config_error is not None:
            fields["config_error"] = self.config_error
        return json.dumps(fields).encode() + b"\n"


def decode_answer(data: bytes) -> dict:
    """The JSON object on an answer line; ValueError if there is none."""
    fields = json.loads(data)
    if not isinstance(fields, dict):
        raise ValueError("not a JSON object")
    return fields


def typed_answer(fields: dict) -> Answer | Refusal:
    """A decoded answer as the message it is."""
    if not fields.get("ok"):
        return Refusal(str(fields.get("error")), unsupported=bool(fields.get("unsupported")),
                       config_error=bool(fields["config_error"]) if "config_error" in fields else None)
    return Answer({key: fields[key] for key in STATUS_KEYS if key in fields},
                  pid=fields.get("pid"), message=fields.get("message"), metrics=fields.get("metrics"))
