"""What one worker runs with, as one frozen object: the pool's and the
config's settings that concern it (defaults from config/settings.py), and
its place among processes (a master's pid, the report pipe, a pidfile).
``for_pool`` is the one place a Config becomes a worker's settings, for the
master's workers and env mode's single worker alike."""

from dataclasses import dataclass

from resqued.config.settings import default


@dataclass(frozen=True)
class WorkerSettings:
    queues: tuple[str, ...]
    interval: float = default("interval")
    heartbeat_interval: float = default("heartbeat_interval")
    term_timeout: float = default("term_timeout")
    on_lost: str = default("on_lost")
    max_lost: int = default("max_lost")
    fork: bool = default("fork")                # false: jobs run in the worker (execution/inline.py)
    job_forker: bool = default("job_forker")    # job children forked beside the worker (execution/jobforker.py)
    max_jobs: int | None = None                 # recycle after this many jobs (jitter already added)
    max_memory: int | None = None               # recycle when its own processes pass this (recycle.py)
    max_memory_hard: int | None = None          # kill a running job child past this
    memory_check_interval: float = 1.0          # seconds between memory checks during a job
    # Its place among processes, set by whoever starts it:
    parent_pid: int | None = None       # its master: the worker stops after its job once that is gone
    report_fd: int | None = None        # a pipe to the master: state as JSON lines
    pidfile: str | None = None
    orphan_timeout: float | None = None  # once the master is gone, how long a running job may go on
    start_paused: bool = False


def for_pool(config, pool, **place) -> WorkerSettings:
    """A worker of ``pool`` (a PoolConfig of ``config``); ``place``: the
    fields that only the process starting it knows (and ``max_jobs`` with
    its jitter, drawn per worker)."""
    fields = dict(queues=tuple(pool.queues), interval=pool.interval, heartbeat_interval=config.heartbeat_interval,
                  term_timeout=config.term_timeout, on_lost=config.on_lost, max_lost=config.max_lost,
                  fork=pool.fork, job_forker=pool.job_forker, max_jobs=pool.max_jobs,
                  max_memory=pool.max_memory, max_memory_hard=pool.max_memory_hard)
    return WorkerSettings(**{**fields, **place})
