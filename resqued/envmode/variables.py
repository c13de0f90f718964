"""php-resque's environment-variable mode: QUEUE, COUNT, INTERVAL, … or the
equivalent flags (a flag beats its variable), read into the same Config as
pool.yml, with one pool. Which variable and flag set what, and how each value
is checked, comes from config/settings.py: a bad INTERVAL gets the very
message a bad ``interval:`` gets in pool.yml.
"""

import os

from resqued.config import checks, limits
from resqued.config.loader import INLINE_TIMEOUT, MAX_SOCKET_PATH
from resqued.config.model import ENV_MODE_PATH, Config, ConfigError, PoolConfig
from resqued.config.settings import LOG, POOL, REQUIRED, SETTINGS, TOP, Setting
from resqued.config.yamlnodes import LocatedError, NodeReader
from resqued.process.pidfile import socket_beside
from resqued.config.redisurl import BadRedisURL, normalize_url

OFF = ("0", "false", "no", "off", "")


def _truthy(text: str | None) -> bool:
    return bool(text) and text.strip().lower() not in OFF


def add_flags(parser) -> None:
    """``resqued``'s env-mode flags, one per setting that has one."""
    for s in SETTINGS:
        if not s.flag:
            continue
        also = f" (env {s.env})" if s.env else ""
        if s.kind == "switch":   # a --no-... flag; the help says what false means
            parser.add_argument(s.flag, dest=s.attribute, action="store_false", default=None,
                                help=f"{s.help.removeprefix('false: ')}{also.replace(')', '=false)')}")
        elif s.kind == "list":
            parser.add_argument(s.flag, dest=s.attribute, action="append", metavar=s.env,
                                help=f"{s.help}; repeatable{also}")
        else:
            parser.add_argument(s.flag, dest=s.attribute, metavar=s.env, help=f"{s.help}{also}")


def load(args, environ) -> Config:
    """The Config that the flags (``args``, an argparse namespace) and the
    environment describe; ConfigError names the variable."""
    special = {"redis_url": _redis_url, "log_level": _log_level}
    with NodeReader("", base_dir=os.getcwd()) as reader:
        values = {s.attribute: special[s.attribute](args, environ) if s.attribute in special
                  else _value(reader, s, args, environ) for s in SETTINGS}
    if values["queues"] is REQUIRED:
        raise ConfigError("no queues: set QUEUE (e.g. QUEUE=high,default or QUEUE=*) or pass --queue")
    if values["count"] < 1:
        raise ConfigError(f"must be at least 1, got {values['count']}", path="COUNT")
    if values["job_timeout"] is not None and not values["fork"]:
        raise ConfigError(f"{INLINE_TIMEOUT}; unset it, or FORK_PER_JOB", path="JOB_TIMEOUT")
    limits.check_worker_count(values["count"], values["max_workers"], "COUNT", "RESQUED_MAX_WORKERS")
    # As pool.yml: a tenth of max_jobs, so COUNT workers do not recycle at once.
    values["max_jobs_jitter"] = values["max_jobs"] // 10 if values["max_jobs"] else 0
    pool = PoolConfig(**{s.attribute: values[s.attribute] for s in POOL.values()})
    pidfile = os.path.abspath(values["pidfile"]) if values["pidfile"] else None
    if pidfile and len(os.fsencode(socket_beside(pidfile))) > MAX_SOCKET_PATH:
        raise ConfigError(f"{pidfile}: the control socket beside it would be longer than {MAX_SOCKET_PATH} bytes",
                          path="PIDFILE")
    top = {s.attribute: values[s.attribute] for s in (*TOP.values(), *LOG.values())}
    top.update(pidfile=pidfile, control_socket=socket_beside(pidfile) if pidfile else None)
    return Config(path=ENV_MODE_PATH, pools=(pool,), **top)


def supervised(config: Config) -> bool:
    """Run the master's arbiter over the workers (COUNT > 1; a recycle limit:
    a lone worker that exits to be recycled needs someone to start the next;
    PIDFILE: resquectl --pidfile answers through the control socket beside
    it; METRICS: the master starts the metrics exporter; SCHEDULER: the
    master starts the scheduler), rather than one worker in this process,
    as php-resque does. The
    master takes the worker's signals to the pid in PIDFILE as php-resque's
    worker does (QUIT, TERM, INT, USR1, USR2, CONT)."""
    pool = config.pools[0]
    return (pool.count > 1 or bool(pool.max_jobs or pool.max_memory)
            or bool(config.pidfile or config.metrics or config.scheduler_enabled))


def _value(reader, setting: Setting, args, environ):
    flag = getattr(args, setting.attribute, None) if setting.flag else None
    text = environ.get(setting.env) if setting.env else None
    if setting.kind == "switch":
        # A flag turns it off (--no-fork); so does FORK_PER_JOB=false, and
        # SCHEDULER=1 turns on one that is off by default.
        if flag is False:
            return False
        return setting.default_for_env() if text is None else _truthy(text)
    if flag is None and not text:
        return setting.default_for_env()
    where = setting.flag if flag is not None else setting.env
    value = str(flag if flag is not None else text).strip()
    if setting.kind == "list":
        node = reader.plain_list(flag if flag is not None else [item.strip() for item in text.split(",") if item.strip()])
    elif setting.key == "queues":
        # As php-resque: "high, default," names two queues.
        node = reader.plain(",".join(q.strip() for q in value.split(",") if q.strip()), as_text=True)
        if not node.value:
            return setting.default_for_env()
    else:
        node = reader.plain(value, as_text=setting.kind == "text")
    try:
        return setting.check(reader, node, where)
    except LocatedError as exc:
        raise ConfigError(exc.problem, path=where) from None


def _redis_url(args, environ) -> str:
    # REDIS_URL beats php-resque's REDIS_BACKEND (as it beats pool.yml's
    # redis:); REDIS_BACKEND_DB picks the database of a host:port.
    backend = getattr(args, "redis_url", None) or environ.get("REDIS_URL") or environ.get("REDIS_BACKEND")
    try:
        return checks.check_redis_url(normalize_url(backend, environ.get("REDIS_BACKEND_DB")))
    except BadRedisURL as exc:
        raise ConfigError(str(exc)) from None


def _log_level(args, environ) -> str:
    # php-resque is quiet unless VERBOSE (or LOGGING) or VVERBOSE is set.
    if args.verbose >= 2 or _truthy(environ.get("VVERBOSE")):
        return "debug"
    if args.verbose == 1 or _truthy(environ.get("VERBOSE")) or _truthy(environ.get("LOGGING")):
        return "info"
    return LOG["level"].default_for_env()
