"""Every setting, declared once: its pool.yml key, check, default, env mode's
variable and flag, and what it means. pool.yml (loader.py), env mode
(envmode/variables.py), ``resqued``'s flags and a worker's spec
(workerspec.py) all read this table; nothing else states a default.
(gunicorn's ``Setting`` classes are the model.)

A pool setting (``pool=True``) may stand in a pool, under ``defaults:``, or
(``interval`` only) at the top level, where it is the default of every pool.
A worker setting (``worker=True``) reaches each worker as it stands; max_jobs
reaches it with its jitter added, drawn by the master per worker.
"""

from dataclasses import dataclass
from typing import Any, Callable

from resqued.config import checks
from resqued.resque.outcome import DEFAULT_MAX_LOST, ON_LOST
from resqued.resque.wire import HEARTBEAT_INTERVAL, MIN_HEARTBEAT_INTERVAL

REQUIRED = object()     # no default: pool.yml (or env mode) must set it
SAME = object()         # env mode's default is pool.yml's

# Ruby workers prune a registration whose heartbeat is 300 s old: beating at
# most every 150 s survives one late beat.
MAX_HEARTBEAT_INTERVAL = 150.0
ON_HUP = ("reload", "restart")


def _one_of(choices) -> str:
    """The choices as "a, b or c", for a setting's doc_type."""
    *rest, last = choices
    return f"{', '.join(rest)} or {last}" if rest else last


@dataclass(frozen=True)
class Setting:
    key: str                        # in pool.yml
    check: Callable                 # check(reader, node, path) -> value (checks.py)
    default: Any                    # REQUIRED, or the value when unset (paths: relative to pool.yml)
    help: str                       # what it means
    pool: bool = False              # a pool's setting (also under defaults:)
    env: str | None = None          # env mode's variable
    flag: str | None = None         # env mode's flag for ``resqued`` (a flag beats its variable)
    env_default: Any = SAME         # env mode's default, where it differs
    kind: str = "value"             # how env mode reads its text: value (a decimal is a number) |
                                    # text | list (comma separated) | switch
    field: str | None = None        # the Config attribute, where it differs from the key
    worker: bool = False            # a worker runs with it as it stands: it is in each worker's
                                    # WorkerSpec (config/workerspec.py), and a reload that changes
                                    # it replaces the worker
    # For the docs (docs/configuration.md, docs/envmode.md), which config/describe.py renders:
    doc_type: str = ""              # what a value may be
    default_doc: str | None = None  # the default in words, where the value alone says too little

    @property
    def attribute(self) -> str:
        return self.field or self.key.replace(".", "_")

    def default_for_env(self):
        return self.default if self.env_default is SAME else self.env_default


SETTINGS = (
    # -- where and what ------------------------------------------------------
    Setting("redis", checks.redis_url, checks.check_redis_url(None),
            "Redis URL: redis://, rediss://, unix:// or redis+sentinel:// (env mode: also host:port)",
            env="REDIS_BACKEND", flag="--redis", field="redis_url", doc_type="URL", worker=True),
    Setting("namespace", checks.namespace, "resque", "key prefix, php-resque's PREFIX",
            env="PREFIX", flag="--prefix", kind="text", doc_type="text", worker=True),
    Setting("jobs", checks.job_modules, (), "modules or .py files whose job classes may run (the allow-list)",
            env="APP_INCLUDE", flag="--app", kind="list", doc_type="list of modules or .py files",
            default_doc="required", worker=True),
    Setting("aliases", checks.aliases, {}, "foreign class names (PHP, Ruby) -> a Python job",
            doc_type="mapping: name -> job", default_doc="none", worker=True),
    # -- files ---------------------------------------------------------------
    Setting("pidfile", checks.file_path, "var/run/resqued.pid",
            "pidfile; resquectl --pidfile finds the master's control socket beside it (.sock)",
            env="PIDFILE", flag="--pidfile", env_default=None, kind="text", doc_type="path"),
    Setting("pid_dir", checks.file_path, "var/run/workers",
            "one pidfile per worker here (a directory, not a symlink)", env_default=None, doc_type="path",
            worker=True),
    Setting("control_socket", checks.file_path, None, "resquectl's socket",
            doc_type="path", default_doc="beside the pidfile"),
    # -- timing --------------------------------------------------------------
    Setting("interval", checks.seconds(0.0), 5.0,
            "seconds a worker's wait for a job lasts before it looks again (0: no wait)",
            pool=True, env="INTERVAL", flag="--interval", doc_type="seconds, >= 0", worker=True),
    Setting("shutdown_timeout", checks.seconds(0.0, above=True), 30.0,
            "seconds a bounded stop (TERM) waits for running jobs before killing them", doc_type="seconds, > 0"),
    Setting("heartbeat_interval", checks.seconds(MIN_HEARTBEAT_INTERVAL, maximum=MAX_HEARTBEAT_INTERVAL),
            HEARTBEAT_INTERVAL, "seconds between heartbeats; a worker is pruned after 5 missed",
            env="RESQUED_HEARTBEAT_INTERVAL", worker=True,
            doc_type=f"seconds, >= {MIN_HEARTBEAT_INTERVAL:g} and <= {MAX_HEARTBEAT_INTERVAL:g}"),
    Setting("term_timeout", checks.seconds(0.0), 4.0,
            "seconds a job child (and what a job left running) has after TERM before KILL",
            env="RESQUE_TERM_TIMEOUT", doc_type="seconds, >= 0", worker=True),
    # -- limits ----------------------------------------------------------------
    Setting("max_workers", checks.integer(1, nullable=True), None,
            "the most workers the master runs, all pools together: a config above it is refused "
            "and TTIN stops there", env="RESQUED_MAX_WORKERS", doc_type="integer, >= 1, or null",
            default_doc="derived from the descriptor limit and the memory (32 MB a worker)"),
    # -- lost jobs -----------------------------------------------------------
    Setting("on_lost", checks.choice(ON_LOST), ON_LOST[0],
            "a dead worker's job: requeue (at the head of its queue) or fail", doc_type=_one_of(ON_LOST),
            worker=True),
    Setting("max_lost", checks.integer(1), DEFAULT_MAX_LOST, "fail a job lost this many times instead",
            doc_type="integer, >= 1", worker=True),
    # -- deploys --------------------------------------------------------------
    Setting("on_hup", checks.choice(ON_HUP), "reload",
            "what HUP does: reload pool.yml, or also restart every worker with the code on disk "
            "(resque-pool's HUP), as resquectl reload and resquectl restart", doc_type=_one_of(ON_HUP)),
    # -- logs ----------------------------------------------------------------
    Setting("log.level", checks.choice(checks.LOG_LEVELS), "info", "the least severe level logged",
            env_default="warning", doc_type=_one_of(checks.LOG_LEVELS)),
    Setting("log.format", checks.choice(checks.LOG_FORMATS), "text", "text lines, or one JSON object a line with the event's fields; "
            "a job's output comes out as lines carrying its id either way (docs/logging.md)",
            doc_type=_one_of(checks.LOG_FORMATS)),
    # -- metrics -------------------------------------------------------------
    Setting("metrics", checks.listen_address, None,
            "serve Prometheus metrics at http://HOST:PORT/metrics (docs/metrics.md); env mode: runs a master",
            env="METRICS", kind="text", doc_type="HOST:PORT or null", default_doc="none: off"),
    # -- delayed jobs ----------------------------------------------------------
    Setting("scheduler", checks.boolean, False,
            "run the scheduler, which moves delayed jobs to their queues when due (docs/delayed.md); "
            "env mode: SCHEDULER=1 runs a master", env="SCHEDULER", kind="switch", doc_type="boolean"),
    # -- a pool --------------------------------------------------------------
    Setting("queues", checks.queue_list, REQUIRED,
            "queues in priority order, comma separated; '*' (last) is every queue",
            pool=True, env="QUEUE", flag="--queue", kind="text", doc_type="list of queue names, or 'a,b'",
            worker=True),
    Setting("count", checks.integer(0), REQUIRED, "workers in the pool", pool=True, env="COUNT",
            flag="--count", env_default=1, doc_type="integer, >= 0"),
    Setting("max_memory", checks.size_or_none, None,
            "recycle a worker whose own memory passes this between jobs, e.g. 300MB", pool=True,
            env="MAX_MEMORY", worker=True,
            doc_type="size (300MB, 1.5GiB, 512M) or null", default_doc="none: no limit"),
    Setting("max_memory_hard", checks.size_or_none, None, "kill the running job child past this", pool=True,
            doc_type="size or null", default_doc="none: no limit", worker=True),
    Setting("job_timeout", checks.seconds_or_none(0.0, above=True), None,
            "seconds a job may run: past it, TERM (KILL term_timeout later) and a resqued.JobTimeout "
            "failure; a job class's own timeout wins; not with fork: false", pool=True, env="JOB_TIMEOUT",
            doc_type="seconds, > 0, or null", default_doc="none: no limit", worker=True),
    Setting("retry", checks.retry_policy, None,
            "retry a failed job: attempts (in all), or {attempts, backoff, base, max, jitter, dirty_exit, "
            "timeout}, as a job class's own retry, which wins (docs/jobs.md#retries)", pool=True,
            doc_type="integer >= 1, mapping or null", default_doc="none: no retries", worker=True),
    Setting("max_jobs", checks.integer(1, nullable=True), None, "recycle a worker after this many jobs",
            pool=True, env="MAX_JOBS", doc_type="integer, >= 1, or null", default_doc="none: no limit"),
    Setting("max_jobs_jitter", checks.integer(0), None,
            "plus 0..jitter jobs per worker, so a pool does not recycle at once",
            pool=True, doc_type="integer, >= 0", default_doc="max_jobs / 10"),
    Setting("fork", checks.boolean, True, "false: run jobs inside the worker (trusted, short jobs)",
            pool=True, env="FORK_PER_JOB", flag="--no-fork", kind="switch", doc_type="boolean", worker=True),
    Setting("job_forker", checks.boolean, True,
            "false: the worker forks its job children itself, not a job forker beside it",
            pool=True, env="JOB_FORKER", flag="--no-job-forker", kind="switch", doc_type="boolean", worker=True),
    # -- a command pool: a non-Python Resque worker (docs/command-pools.md) ----
    Setting("command", checks.command_argv, None,
            "run this Resque worker command (php-resque's, Ruby's) COUNT times instead of Python workers: "
            "the program and its arguments, no shell", pool=True, doc_type="list of strings",
            default_doc="none: Python workers"),
    Setting("env", checks.environment, None,
            "a command pool's environment variables, over the master's and over QUEUE, COUNT, INTERVAL, "
            "PREFIX, REDIS_BACKEND and REDIS_URL, which the pool's settings give", pool=True,
            doc_type="mapping: name -> text", default_doc="none"),
    Setting("directory", checks.directory, None, "a command pool's working directory", pool=True,
            doc_type="path", default_doc="the master's"),
)

BY_KEY = {s.key: s for s in SETTINGS}
# Top-level keys; interval is also every pool's default there.
TOP = {s.key: s for s in SETTINGS if (not s.pool or s.key == "interval") and "." not in s.key}
LOG = {s.key.split(".", 1)[1]: s for s in SETTINGS if s.key.startswith("log.")}
POOL = {s.key: s for s in SETTINGS if s.pool}
# What a worker runs with, as it stands (config/workerspec.py).
WORKER = {s.key: s for s in SETTINGS if s.worker}
# A command pool's own keys: only a pool may set them, never defaults:.
COMMAND = ("command", "env", "directory")
# A pool's limits, which defaults: may set for every pool.
LIMITS = {key: s for key, s in POOL.items() if key not in ("queues", "count", *COMMAND)}


def default(key: str):
    return BY_KEY[key].default
