"""COUNT workers in php-resque's environment mode, kept by the master's own
arbiter: one pool built from the variables, so env mode has the master's
supervision exactly (boot-failure backoff and give-up, lost-job recovery,
memory and job-count recycling, the spawner, signals) rather than a second,
smaller supervisor with rules of its own.

php-resque's launcher forks COUNT workers and exits, orphaning them (its issue
#294): nothing restarts a dead worker and no signal reaches them all. Here
the process started stays as their master. With PIDFILE set, a control
socket beside it lets ``resquectl --pidfile PIDFILE status`` (and pause,
resume, stop) reach it; without PIDFILE there is neither.
"""

import os

from resqued.config.loader import Config, PoolConfig
from resqued.master.arbiter import Master
from resqued.process.pidfile import socket_beside
from resqued.resque.outcome import DEFAULT_MAX_LOST, ON_LOST

NAME = "env"                  # as the master's title shows it: resqued-master[env]
SHUTDOWN_TIMEOUT = 30.0       # pool.yml's default: a bounded stop, an orphan's wait


def pool_config(settings) -> Config:
    """The one-pool config that the variables describe."""
    pool = PoolConfig(queues=tuple(settings.queues), count=settings.count, max_memory=settings.max_memory,
                      max_jobs=settings.max_jobs, interval=settings.interval, fork=settings.fork,
                      job_forker=settings.job_forker)
    pidfile = os.path.abspath(settings.pidfile) if settings.pidfile else None
    return Config(path=NAME, redis_url=settings.redis_url, namespace=settings.namespace,
                  jobs=tuple(settings.apps), aliases={}, pidfile=pidfile, pid_dir=None,
                  control_socket=socket_beside(pidfile) if pidfile else None,
                  interval=settings.interval, shutdown_timeout=SHUTDOWN_TIMEOUT,
                  heartbeat_interval=settings.heartbeat_interval, term_timeout=settings.term_timeout,
                  log_level=settings.log_level, log_format="text", pools=(pool,),
                  on_lost=ON_LOST[0], max_lost=DEFAULT_MAX_LOST)


def run(config) -> int:
    # TERM and INT kill running jobs, as they do to a php-resque or Resque
    # worker; QUIT lets them finish. The variables cannot change under a
    # running process, so a HUP re-applies the same config.
    return Master(config, loader=lambda: config, term_mode="immediate").run()
