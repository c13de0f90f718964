"""pool.yml: read it, check all of it, and resolve it into a frozen Config.

Two formats. The native one has ``pools:`` and the settings below; resque-pool's
(``"high,default": 4`` at the top level, optionally under environment sections)
is accepted unchanged for migrations. Every setting is declared once, next to
its validator, and every error is one line naming the file, the line and the
key (``pool.yml:12: pools[1].max_mem: unknown key; did you mean 'max_memory'?``).

YAML is composed into nodes (not loaded) so that each value keeps its line;
scalars are built by PyYAML's SafeLoader only, so no tag can run code.
"""

import difflib
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

import yaml

from resqued.envmode import variables
from resqued.resque.keys import check_queue_name
from resqued.redisio.connection import BadRedisURL, normalize_url, redact
from resqued.resque.outcome import ON_LOST
from resqued.resque.wire import HEARTBEAT_INTERVAL
from resqued.config.sizes import human_size, parse_size
from resqued.config.yamlnodes import LocatedError, NodeReader, read_text
from resqued.process.pidfile import socket_beside

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
# resque-pool picks its environment section from these, first set wins.
ENVIRONMENT_VARIABLES = ("RACK_ENV", "RAILS_ENV", "RESQUE_ENV")
# Ruby workers prune a registration whose heartbeat is 300 s old: beating at
# most every 150 s survives one late beat.
MAX_HEARTBEAT_INTERVAL = 150.0
# sun_path holds 108 bytes with the terminating NUL.
MAX_SOCKET_PATH = 107


class ConfigError(variables.ConfigError):
    """A bad config. ``str()`` is one line: ``<file>:<line>: <key path>: <problem>``;
    the parts are also kept as attributes (any of them may be None)."""

    def __init__(self, problem, *, file=None, line=None, path=None):
        self.file, self.line, self.path, self.problem = file, line, path, problem
        where = ":".join(str(part) for part in (file, line) if part is not None)
        text = ": ".join(part for part in (where, path, problem) if part)
        super().__init__(" ".join(text.splitlines()))


@dataclass(frozen=True)
class PoolConfig:
    queues: tuple[str, ...]
    count: int
    max_memory: int | None = None
    max_memory_hard: int | None = None
    max_jobs: int | None = None
    max_jobs_jitter: int = 0
    interval: float = 5.0
    fork: bool = True              # false: run jobs inside the worker (trusted, short jobs)
    job_forker: bool = True        # false: the worker forks its job children itself (jobforker.py)

    @property
    def name(self) -> str:
        return ",".join(self.queues)


@dataclass(frozen=True)
class Config:
    path: str
    redis_url: str
    namespace: str
    jobs: tuple[str, ...]
    aliases: dict
    pidfile: str | None            # None (env mode without PIDFILE): no pidfile,
    pid_dir: str | None            # no worker pidfiles,
    control_socket: str | None     # no control socket
    interval: float
    shutdown_timeout: float
    heartbeat_interval: float
    term_timeout: float
    log_level: str
    log_format: str
    pools: tuple[PoolConfig, ...]
    on_lost: str = "requeue"       # a dead worker's in-flight job: requeue | fail
    max_lost: int = 3              # fail a job after it was lost this many times


# -- settings: name -> validator(reader, node, path) -------------------------------

def _seconds(minimum=0.0, *, above=False, maximum=None):
    def check(r, node, path):
        return r.number(node, path, minimum, above=above, maximum=maximum)
    return check


def _size_or_none(r, node, path):
    if r.is_null(node):
        return None
    value = r.scalar(node, path)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise r.fail(node, path, f"expected a size such as 300MB, 1.5GiB or 512M, got {r.kind(node, path)}")
    try:
        return parse_size(value)
    except ValueError as exc:
        raise r.fail(node, path, str(exc)) from None


def _integer(minimum, nullable=False):
    def check(r, node, path):
        return None if nullable and r.is_null(node) else r.integer(node, path, minimum)
    return check


def _boolean(r, node, path):
    value = r.scalar(node, path)
    if not isinstance(value, bool):
        raise r.fail(node, path, f"expected true or false, got {node.value!r}")
    return value


def _path(r, node, path):
    return r.resolve(r.string(node, path, "a path"))


def _namespace(r, node, path):
    namespace = r.string(node, path, "a key prefix such as 'resque'")
    if any(char.isspace() for char in namespace):
        raise r.fail(node, path, f"{namespace!r} contains whitespace")
    return namespace


def _redis(r, node, path):
    try:
        return check_redis_url(r.string(node, path, "a Redis URL (redis://host:6379/0)"))
    except BadRedisURL as exc:
        raise r.fail(node, path, str(exc)) from None


def check_redis_url(url: str | None) -> str:
    """The normalized URL, or BadRedisURL for a URL redis-py would misread.
    Its query options are checked by redis-py itself, in children.probe():
    the master process does not import redis-py."""
    url = normalize_url(url)
    parts = urlsplit(url)
    try:
        parts.port
    except ValueError as exc:
        raise BadRedisURL(f"redis URL {redact(url)!r}: {exc}") from None
    database = parts.path.strip("/")
    if parts.scheme != "unix" and (not parts.hostname or (database and not database.isdigit())):
        raise BadRedisURL(f"redis URL {redact(url)!r}: expected redis://[user:password@]host[:port][/db]")
    return url


def _jobs(r, node, path):
    items = [(node, path)] if r.is_string(node) else r.items(node, path, "a module, a .py file or a list of them")
    return tuple(_job(r, item, item_path) for item, item_path in items)


def _job(r, node, path):
    job = r.string(node, path, "a module (myapp.jobs) or a .py file")
    if job.endswith(".py"):
        return r.resolve(job)
    if not all(part.isidentifier() for part in job.split(".")):
        raise r.fail(node, path, f"{job!r} is neither a Python module name (myapp.jobs) nor a .py file")
    return job


def _aliases(r, node, path):
    aliases = {}
    for name, (_, value, value_path) in r.mapping(node, path).items():
        target = r.string(value, value_path, "a Python job name (myapp.jobs.MailJob)")
        if not all(part.isidentifier() for part in target.split(".")):
            raise r.fail(value, value_path, f"{target!r} is not a Python name (myapp.jobs.MailJob)")
        aliases[name] = target
    return aliases


def _choice(choices):
    def check(r, node, path):
        value = r.string(node, path, " or ".join(choices)).lower()
        if value not in choices:
            raise r.fail(node, path, f"{value!r} is not one of {', '.join(choices)}")
        return value
    return check


def _located(r, node, path, table):
    """{key: (value, node, path)} for a mapping whose keys must all be in ``table``."""
    found = {}
    for key, (key_node, value, value_path) in r.mapping(node, path).items():
        if key not in table:
            raise r.unknown(key_node, value_path, key, table)
        found[key] = (table[key](r, value, value_path), value, value_path)
    return found


def _queues(r, node, path):
    if r.is_string(node):
        text = r.string(node, path, "queue names")
        located = [(name.strip(), node, path) for name in text.split(",")]
    else:
        located = [(r.name(item, item_path), item, item_path)
                   for item, item_path in r.items(node, path, "a list of queue names or 'a,b'")]
    if not located:
        raise r.fail(node, path, "empty queue list")
    return _check_queues(r, located)


def _check_queues(r, located):
    seen = set()
    for index, (queue, node, path) in enumerate(located):
        if queue == "*" and index != len(located) - 1:
            raise r.fail(node, path, "'*' (every queue) must be the last queue")
        try:
            check_queue_name(queue)
        except ValueError as exc:
            raise r.fail(node, path, str(exc)) from None
        if queue in seen:
            raise r.fail(node, path, f"queue {queue!r} is listed twice")
        seen.add(queue)
    return tuple(queue for queue, _, _ in located)


def _pools(r, node, path):
    pools = r.items(node, path, "a list of pools")
    if not pools:
        raise r.fail(node, path, "empty: define at least one pool (a count of 0 is fine)")
    parsed = []
    for item, item_path in pools:
        settings = _located(r, item, item_path, _POOL)
        for required in ("queues", "count"):
            if required not in settings:
                raise r.fail(item, item_path, f"missing {required!r}")
        parsed.append((item, item_path, settings))
    return parsed


_LIMITS = {
    "max_memory": _size_or_none,             # recycle a worker whose RSS (with its job child) passes this
    "max_memory_hard": _size_or_none,        # kill the running job child past this
    "max_jobs": _integer(1, nullable=True),  # recycle a worker after this many jobs
    "max_jobs_jitter": _integer(0),          # plus 0..jitter per worker, so a pool does not restart at once
    "interval": _seconds(0.0),               # seconds between polls
    "fork": _boolean,                        # false: run jobs in the worker itself
    "job_forker": _boolean,                  # false: the worker forks job children itself, not its job forker
}
_FIELDS = {"redis": "redis_url"}  # setting name -> Config field, where they differ
_LOG = {"level": _choice(LOG_LEVELS), "format": _choice(LOG_FORMATS)}
_POOL = {"queues": _queues, "count": _integer(0), **_LIMITS}
_TOP = {
    "redis": _redis,
    "namespace": _namespace,
    "jobs": _jobs,
    "aliases": _aliases,
    "pidfile": _path,
    "pid_dir": _path,
    "control_socket": _path,
    "interval": _seconds(0.0),
    "shutdown_timeout": _seconds(0.0, above=True),
    "heartbeat_interval": _seconds(0.0, above=True, maximum=MAX_HEARTBEAT_INTERVAL),
    "term_timeout": _seconds(0.0),
    "on_lost": _choice(ON_LOST),
    "max_lost": _integer(1),
    "log": lambda r, node, path: _located(r, node, path, _LOG),
    "defaults": lambda r, node, path: _located(r, node, path, _LIMITS),
    "pools": _pools,
}


# -- loading ------------------------------------------------------------------------

def load_config(path, environment: str | None = None, environ=os.environ) -> Config:
    """Read and check ``path``; raise ConfigError (one line, with file and line) if anything is wrong."""
    path = os.fspath(path)
    try:
        text = read_text(path)
        if "<%" in text:
            raise LocatedError("ERB templates ('<%') are not supported: render the file first",
                               line=text.count("\n", 0, text.index("<%")) + 1)
        with NodeReader(text, base_dir=os.path.dirname(os.path.abspath(path))) as r:
            root = r.root()
            top = r.mapping(root, "", allow_null=False)
            if any(key in _TOP for key in top):
                fields = _native(r, root, top)
            else:
                fields = _resque_pool(r, root, top, environment, environ)
    except LocatedError as exc:
        raise ConfigError(exc.problem, file=path, line=exc.line, path=exc.path) from None
    redis_url = environ.get("REDIS_URL")
    if redis_url:
        try:
            fields["redis_url"] = check_redis_url(redis_url)
        except BadRedisURL as exc:
            raise ConfigError(str(exc), file=path, path="REDIS_URL (environment)") from None
    return Config(path=os.path.abspath(path), **fields)


def _defaults(r) -> dict:
    pidfile = r.resolve("var/run/resqued.pid")
    return dict(redis_url=check_redis_url(None), namespace="resque", jobs=(), aliases={},
                pidfile=pidfile, pid_dir=r.resolve("var/run/workers"), control_socket=socket_beside(pidfile),
                interval=5.0, shutdown_timeout=30.0, heartbeat_interval=HEARTBEAT_INTERVAL,
                term_timeout=4.0, log_level="info", log_format="text")


def _native(r, root, top) -> dict:
    found = {}
    for key, (key_node, value, value_path) in top.items():
        if key not in _TOP:
            raise r.unknown(key_node, value_path, key, _TOP,
                            hint=" (resque-pool's 'queues: count' entries cannot be mixed with "
                                 "resqued settings: use pools:)" if r.is_integer(value) else "")
        found[key] = (_TOP[key](r, value, value_path), value, value_path)
    if "pools" not in found:
        raise r.fail(root, "pools", "missing: define at least one pool (a count of 0 is fine)")
    fields = _defaults(r)
    fields.update((_FIELDS.get(key, key), value) for key, (value, _, _) in found.items()
                  if key not in ("log", "defaults", "pools"))
    fields.update((f"log_{key}", value) for key, (value, _, _) in found.get("log", ({},))[0].items())
    if "control_socket" not in found:
        fields["control_socket"] = socket_beside(fields["pidfile"])
    if len(os.fsencode(fields["control_socket"])) > MAX_SOCKET_PATH:
        _, node, path = found.get("control_socket") or found.get("pidfile") or (None, root, "control_socket")
        raise r.fail(node, path, f"control socket path {fields['control_socket']!r} is longer than "
                                 f"{MAX_SOCKET_PATH} bytes; set a shorter control_socket")
    # A pool's setting beats defaults:, whose interval beats the top-level one.
    defaults = {"interval": found.get("interval", (5.0, root, "interval")), **found.get("defaults", ({},))[0]}
    pools, lines = [], {}
    for node, path, settings in found["pools"][0]:
        pool = _resolve_pool(r, settings, defaults)
        if pool.name in lines:
            raise r.fail(node, path, f"duplicate pool {pool.name!r} (first at line {lines[pool.name]}): "
                                     "raise its count instead")
        lines[pool.name] = node.start_mark.line + 1
        pools.append(pool)
    fields["pools"] = tuple(pools)
    return fields


def _resolve_pool(r, settings, defaults) -> PoolConfig:
    merged = {**defaults, **settings}
    value = {key: located[0] for key, located in merged.items()}
    soft, hard = value.get("max_memory"), value.get("max_memory_hard")
    if soft is not None and hard is not None and hard <= soft:
        (_, hard_node, hard_path), (_, soft_node, soft_path) = merged["max_memory_hard"], merged["max_memory"]
        node, path = (soft_node, soft_path) if soft_path.startswith("pools") and \
            not hard_path.startswith("pools") else (hard_node, hard_path)
        raise r.fail(node, path, f"max_memory_hard ({human_size(hard)}, line {hard_node.start_mark.line + 1}) "
                                 f"must be greater than max_memory ({human_size(soft)}, "
                                 f"line {soft_node.start_mark.line + 1})")
    max_jobs = value.get("max_jobs")
    if "max_jobs_jitter" in merged and "max_jobs" not in merged:
        _, node, path = merged["max_jobs_jitter"]
        raise r.fail(node, path, "max_jobs_jitter has no effect without max_jobs")
    jitter = 0 if max_jobs is None else value.get("max_jobs_jitter", max_jobs // 10)
    return PoolConfig(queues=value["queues"], count=value["count"], max_memory=soft, max_memory_hard=hard,
                      max_jobs=max_jobs, max_jobs_jitter=jitter, interval=float(value["interval"]),
                      fork=value.get("fork", True), job_forker=value.get("job_forker", True))


def _resque_pool(r, root, top, environment, environ) -> dict:
    """resque-pool's file: top-level "queues: count", overridden by the environment's section."""
    base, sections = {}, {}
    for key, (key_node, value, value_path) in top.items():
        if isinstance(value, yaml.MappingNode):
            sections[key] = _resque_pool_counts(r, r.mapping(value, value_path).values())
        elif not r.is_integer(value) and difflib.get_close_matches(key, _TOP, n=1):
            raise r.unknown(key_node, value_path, key, _TOP)  # a misspelt setting, not a queue list
        else:
            base.update(_resque_pool_counts(r, [(key_node, value, value_path)], base))
    chosen = environment or next((environ[name] for name in ENVIRONMENT_VARIABLES if environ.get(name)), None)
    if environment and environment not in sections:
        known = ", ".join(sections) or "none"
        raise r.fail(root, None, f"environment {environment!r} has no section in this file (sections: {known})")
    counts = {**base, **sections.get(chosen, {})}
    if not counts:
        why = f"environment {chosen!r} adds none" if chosen else \
            "no environment is chosen (--environment, RACK_ENV, RAILS_ENV or RESQUE_ENV)"
        raise r.fail(root, None, f"no pools: the top level has only environment sections "
                                 f"({', '.join(sections) or 'none'}) and {why}")
    fields = _defaults(r)
    fields["pools"] = tuple(PoolConfig(queues=queues, count=count) for queues, count in counts.values())
    return fields


def _resque_pool_counts(r, entries, already=None) -> dict:
    """{pool name: (queues, count)} from "a,b: N" entries; a name seen twice is an error."""
    counts = {}
    for key_node, value, path in entries:
        if isinstance(value, yaml.MappingNode):
            raise r.fail(value, path, "expected a worker count; environment sections cannot be nested")
        if r.is_null(value):
            raise r.fail(value, path, "expected a worker count (an integer) or an environment section (a mapping)")
        located = [(name.strip(), key_node, path) for name in r.name(key_node, path).split(",")]
        queues = _check_queues(r, located)
        name = ",".join(queues)
        if name in counts or (already and name in already):
            raise r.fail(key_node, path, f"duplicate pool {name!r}")
        counts[name] = (queues, r.integer(value, path, minimum=0))
    return counts


# -- describe -----------------------------------------------------------------------

def describe(config: Config) -> str:
    """The resolved config as text, for ``resqued --check``; the Redis password is redacted."""
    def seconds(value):
        return f"{value:g}s"

    lines = [
        f"config          {config.path}",
        f"redis           {redact(config.redis_url)}",
        f"namespace       {config.namespace}",
        f"jobs            {', '.join(config.jobs) or '(none)'}",
    ]
    lines += [f"alias           {name} -> {target}" for name, target in config.aliases.items()]
    lines += [
        f"pidfile         {config.pidfile}",
        f"pid_dir         {config.pid_dir}",
        f"control_socket  {config.control_socket}",
        f"timing          interval {seconds(config.interval)}, shutdown_timeout "
        f"{seconds(config.shutdown_timeout)}, heartbeat_interval {seconds(config.heartbeat_interval)}, "
        f"term_timeout {seconds(config.term_timeout)}",
        f"lost jobs       on_lost {config.on_lost}, max_lost {config.max_lost}",
        f"log             {config.log_level}, {config.log_format}",
        f"pools           {len(config.pools)} ({sum(p.count for p in config.pools)} workers)",
    ]
    for pool in config.pools:
        memory = f"max_memory {human_size(pool.max_memory)}" if pool.max_memory else "max_memory none"
        if pool.max_memory_hard:
            memory += f", max_memory_hard {human_size(pool.max_memory_hard)}"
        jobs = f"max_jobs {pool.max_jobs} (+0..{pool.max_jobs_jitter})" if pool.max_jobs else "max_jobs none"
        inline = ("" if pool.job_forker else "; job_forker false") if pool.fork else \
            "; fork false (jobs run in the worker)"
        lines.append(f"  {pool.name}: count {pool.count}; {memory}; {jobs}; interval {seconds(pool.interval)}{inline}")
    return "\n".join(lines)
