"""What runs in the processes the spawner forks for the master: a worker
(worker_main; the master's side is workerprocess.py) and a recovery run
(recovery_main; the master's side is recoveryruns.py).

Only the spawner imports this module, after its fork from the master: it
loads redis-py and the worker's code, which the master never does
(spawner.py says why).
"""

import logging
import os
import signal
from types import SimpleNamespace

from resqued.config.model import Config, PoolConfig
from resqued.exits import EX_TEMPFAIL, EXIT_BOOT_ERROR, EXIT_FAILURE, EXIT_OK
from resqued.jobs.allowlist import JobRegistry, RegistryError
from resqued.master import workerprocess
from resqued.process.signals import exit_on_parent_death
from resqued.process.title import set_raw_title, set_title
from resqued.resque.client import Resque
from resqued.supervise.lostworkers import LostWorkers
from resqued.worker.settings import for_pool
from resqued.worker.worker import Worker

log = logging.getLogger("resqued.master")


def worker_main(spec: dict, report_fd: int) -> int:
    """In the worker, forked by the spawner and adopted by the master."""
    config = Config(**{**spec["config"], "jobs": tuple(spec["config"]["jobs"]), "pools": ()})
    pool = PoolConfig(**{**spec["pool"], "queues": tuple(spec["pool"]["queues"])})
    try:
        return _worker_main(config, pool, spec["paused"], report_fd, spec["max_jobs"], spec["master_pid"])
    except BaseException:
        log.exception("worker for %s crashed", pool.name)
        return EXIT_FAILURE


def _worker_main(config, pool, paused, report_fd, max_jobs, master_pid) -> int:
    set_title("Starting")  # as Resque's; not the spawner's title we inherited
    os.setpgid(0, 0)  # Ctrl-C on the master's terminal must not reach workers directly
    exit_on_parent_death()
    try:
        registry = JobRegistry.build(config.jobs, config.aliases)
    except RegistryError as exc:
        log.error("worker for %s cannot start: %s", pool.name, exc)
        return EXIT_BOOT_ERROR
    resque = Resque(config.redis_url, config.namespace)
    settings = for_pool(config, pool, max_jobs=max_jobs, parent_pid=master_pid, report_fd=report_fd,
                        start_paused=paused, orphan_timeout=config.shutdown_timeout,
                        pidfile=workerprocess.worker_pidfile(config.pid_dir, pool, os.getpid()))
    worker = Worker(resque, registry, settings)
    return worker.work()


def recovery_main(spec: dict) -> int:
    """In the recovery run, forked by the spawner and adopted by the master:
    recover the jobs of the dead workers in ``spec`` (RecoveryRuns.start_due)."""
    exit_on_parent_death(signal.SIGKILL)  # each job is settled by one Lua call: safe to kill
    if os.getppid() != spec["master_pid"]:
        return EXIT_FAILURE
    set_raw_title(spec["title"])
    lost = LostWorkers(down=spec["down"])
    for worker_id, why in spec["workers"]:
        lost.add(worker_id, why)
    settings = SimpleNamespace(**{k: spec[k] for k in ("redis_url", "namespace", "on_lost", "max_lost")})
    return EXIT_OK if lost.recover(settings) else EX_TEMPFAIL
