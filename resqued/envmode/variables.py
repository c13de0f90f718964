"""php-resque's environment-variable mode: everything a worker needs from
QUEUE, COUNT, INTERVAL, … or the equivalent flags (a flag beats its variable)."""

from dataclasses import dataclass, field

from resqued.config.sizes import parse_size
from resqued.resque.keys import check_queue_name
from resqued.redisio.connection import BadRedisURL, normalize_url
from resqued.resque.wire import HEARTBEAT_INTERVAL


class ConfigError(ValueError):
    """A bad setting; the message names it."""


@dataclass
class EnvSettings:
    queues: list[str]
    count: int = 1
    interval: float = 5.0
    namespace: str = "resque"
    redis_url: str = ""
    pidfile: str | None = None
    apps: list[str] = field(default_factory=list)
    log_level: str = "warning"
    heartbeat_interval: float = HEARTBEAT_INTERVAL
    term_timeout: float = 4.0
    fork: bool = True
    job_forker: bool = True
    max_jobs: int | None = None      # recycle a worker after this many jobs (MAX_JOBS)
    max_memory: int | None = None    # ... or past this much memory (MAX_MEMORY)

    @property
    def supervised(self) -> bool:
        """Run the master's arbiter over the workers (COUNT > 1, or a recycle
        limit: a lone worker that exits to be recycled needs someone to start
        the next), rather than one worker in this process, as php-resque."""
        return self.count > 1 or bool(self.max_jobs or self.max_memory)


def _number(name: str, text: str, kind=float, minimum=0):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={text!r} is not a {'whole ' if kind is int else ''}number") from None
    if value < minimum:
        raise ConfigError(f"{name}={text!r} must be at least {minimum}")
    return value


def _truthy(text: str | None) -> bool:
    return bool(text) and text.strip().lower() not in ("0", "false", "no", "off", "")


def load(args, environ) -> EnvSettings:
    """Merge flags (``args``, an argparse namespace) over environment variables."""
    queue_text = args.queue if args.queue is not None else environ.get("QUEUE", "")
    queues = [q.strip() for q in queue_text.split(",") if q.strip()]
    if not queues:
        raise ConfigError("no queues: set QUEUE (e.g. QUEUE=high,default or QUEUE=*) or pass --queue")
    for q in queues:
        if q != "*":
            try:
                check_queue_name(q)
            except ValueError as exc:
                raise ConfigError(f"QUEUE: {exc}") from None
    settings = EnvSettings(queues=queues)

    count = args.count if args.count is not None else environ.get("COUNT")
    if count not in (None, ""):
        settings.count = _number("COUNT", str(count), int, 1)
    interval = args.interval if args.interval is not None else environ.get("INTERVAL")
    if interval not in (None, ""):
        # Unlike php-resque, INTERVAL=0 means "no wait", not "the default 5 s".
        settings.interval = _number("INTERVAL", str(interval))
    if environ.get("RESQUED_HEARTBEAT_INTERVAL"):
        settings.heartbeat_interval = _number("RESQUED_HEARTBEAT_INTERVAL",
                                              environ["RESQUED_HEARTBEAT_INTERVAL"], float, 0.1)
    if environ.get("MAX_JOBS"):
        settings.max_jobs = _number("MAX_JOBS", environ["MAX_JOBS"], int, 1)
    if environ.get("MAX_MEMORY"):
        try:
            settings.max_memory = parse_size(environ["MAX_MEMORY"])
        except ValueError as exc:
            raise ConfigError(f"MAX_MEMORY={environ['MAX_MEMORY']!r}: {exc}") from None
    if environ.get("RESQUE_TERM_TIMEOUT"):
        settings.term_timeout = _number("RESQUE_TERM_TIMEOUT", environ["RESQUE_TERM_TIMEOUT"])

    # Ruby Resque's FORK_PER_JOB=false: run jobs inside the worker.
    settings.fork = not args.no_fork and not (
        "FORK_PER_JOB" in environ and not _truthy(environ["FORK_PER_JOB"]))
    settings.job_forker = not args.no_job_forker and not (
        "JOB_FORKER" in environ and not _truthy(environ["JOB_FORKER"]))
    settings.namespace = (args.prefix if args.prefix is not None else environ.get("PREFIX")) or "resque"
    backend = args.redis or environ.get("REDIS_URL") or environ.get("REDIS_BACKEND")
    try:
        settings.redis_url = normalize_url(backend, environ.get("REDIS_BACKEND_DB"))
    except BadRedisURL as exc:
        raise ConfigError(str(exc)) from None
    settings.pidfile = args.pidfile or environ.get("PIDFILE") or None
    settings.apps = list(args.app or []) or [a for a in environ.get("APP_INCLUDE", "").split(",") if a.strip()]

    if args.verbose >= 2 or _truthy(environ.get("VVERBOSE")):
        settings.log_level = "debug"
    elif args.verbose == 1 or _truthy(environ.get("VERBOSE")) or _truthy(environ.get("LOGGING")):
        settings.log_level = "info"
    return settings
