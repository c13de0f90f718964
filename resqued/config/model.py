"""What a configuration resolves to, from pool.yml or from env mode's
variables alike: a frozen Config of PoolConfigs. Each field's default,
validator, variable, flag and meaning are declared once, in settings.py;
these are the shapes the master and the workers read."""

from dataclasses import dataclass

from resqued.config.settings import default


# Config.path in env mode, which has no file: the master's title says
# resqued-master[env], and a reload has nothing to re-read.
ENV_MODE_PATH = "env"


class ConfigError(ValueError):
    """A bad config. ``str()`` is one line: ``<file>:<line>: <key path>: <problem>``
    (env mode: ``<VARIABLE>: <problem>``); the parts are also kept as
    attributes (any of them may be None)."""

    def __init__(self, problem, *, file=None, line=None, path=None):
        self.file, self.line, self.path, self.problem = file, line, path, problem
        where = ":".join(str(part) for part in (file, line) if part is not None)
        text = ": ".join(part for part in (where, path, problem) if part)
        super().__init__(" ".join(text.splitlines()))


@dataclass(frozen=True)
class PoolConfig:
    queues: tuple[str, ...]
    count: int
    max_memory: int | None = default("max_memory")
    max_memory_hard: int | None = default("max_memory_hard")
    max_jobs: int | None = default("max_jobs")
    max_jobs_jitter: int = 0          # resolved: settings' default depends on max_jobs
    interval: float = default("interval")
    fork: bool = default("fork")
    job_forker: bool = default("job_forker")
    job_timeout: float | None = default("job_timeout")
    retry: dict | None = default("retry")
    command: tuple[str, ...] | None = default("command")   # a command pool's argv (docs/command-pools.md)
    env: dict | None = default("env")                      # ... its environment variables
    directory: str | None = default("directory")           # ... and working directory

    @property
    def name(self) -> str:
        return ",".join(self.queues)

    @property
    def kind(self) -> str:
        """"command": its workers run ``command``; "python": resqued's own."""
        return "python" if self.command is None else "command"


@dataclass(frozen=True)
class Config:
    path: str                      # the pool.yml, or ENV_MODE_PATH
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
    on_lost: str = default("on_lost")
    max_lost: int = default("max_lost")
    on_hup: str = default("on_hup")
    max_workers: int | None = default("max_workers")   # None: derived (config/limits.py)
    metrics: str | None = default("metrics")           # the exporter's HOST:PORT (None: no metrics)
    schedule: tuple = ()           # recurring jobs: config/schedule.py's ScheduleEntry
    scheduler: bool = default("scheduler")             # as set; whether it runs: scheduler_enabled

    @property
    def scheduler_enabled(self) -> bool:
        """Whether the master runs the scheduler (master/schedulerlink.py):
        ``scheduler: true``, or recurring jobs to enqueue."""
        return self.scheduler or bool(self.schedule)
