"""What runs in the processes the spawner forks for the master: a worker
(worker_main; the master's side is master/workerprocess.py) and a recovery
run (recovery_main; the master's side is master/recoveryruns.py).

Only the spawner imports this module (spawner/main.py): it loads redis-py
and the worker's code, which the master never does.
"""

import dataclasses
import json
import logging
import os
import signal

import redis

from resqued.config.workerspec import WorkerSpec
from resqued.exits import EX_TEMPFAIL, EXIT_BOOT_ERROR, EXIT_FAILURE, EXIT_OK
from resqued.jobs.allowlist import JobRegistry, RegistryError
from resqued.process.logs import event, printable
from resqued.process.pidfile import worker_pidfile
from resqued.protocols.reportpipe import ErrorReport
from resqued.process.signals import exit_on_parent_death
from resqued.process.title import set_raw_title, set_title
from resqued.redisio.connection import connect
from resqued.redisio import refusals
from resqued.resque.client import Resque
from resqued.resque.presence import unregister_commands
from resqued.resque.dirtyexit import DirtyExits, jobs_done
from resqued.resque.recovery import Recovery
from resqued.worker.reports import announce_exit, write_whole
from resqued.worker.worker import Worker

log = logging.getLogger("resqued.master")   # test_architecture.LOGGER_OF says why


class ErrorReports(logging.Handler):
    """Each error a worker logs, as one line on its report pipe: the master
    keeps the last (Child.last_error), which is what a pool that keeps
    dying at boot shows as its reason (resquectl status, systemd STATUS=),
    instead of a traceback only in the log."""

    def __init__(self, report_fd: int):
        super().__init__(logging.ERROR)
        self.report_fd = report_fd

    def emit(self, record) -> None:
        try:
            exc = record.exc_info[1] if record.exc_info else None
            text = f"{type(exc).__name__}: {exc}" if exc is not None else record.getMessage()
            # Shown by resquectl status and in systemd's STATUS=: one line, escaped.
            line = ErrorReport(printable(" ".join(text.split()))[:500]).encode()
            write_whole(self.report_fd, line)
        except Exception:
            pass  # a closed pipe, a full one: the log still has it


def worker_main(spec_json: str, report_fd: int) -> int:
    """In the worker, forked by the spawner and adopted by the master;
    ``spec_json``: its WorkerSpec, as the master wrote it (workerprocess.spawn)."""
    logging.getLogger("resqued").addHandler(ErrorReports(report_fd))
    code, settled = EXIT_FAILURE, False
    try:
        unknown = []
        spec = WorkerSpec.from_json(spec_json, unknown)
        if unknown:
            log.warning("worker: settings of another resqued version ignored: %s", ", ".join(unknown))
        code, settled = _worker_main(spec, report_fd)
    except BaseException:
        log.exception("worker crashed")
    # Last, just before the process exits: the master trusts the code only
    # when announced (a job running inline could end the process with it).
    announce_exit(report_fd, code, settled)
    return code


def _worker_main(spec, report_fd) -> tuple[int, bool]:
    """The worker's exit code, and whether it left nothing in its in-flight lists."""
    set_title("Starting")  # as Resque's; not the spawner's title we inherited
    os.setpgid(0, 0)  # Ctrl-C on the master's terminal must not reach workers directly
    exit_on_parent_death()
    try:
        registry = JobRegistry.build(spec.jobs, spec.aliases)
    except RegistryError as exc:
        log.error("worker for %s cannot start: %s", spec.name, exc,
                  extra=event("worker_boot_failed", pool=spec.name, error=str(exc)))
        return EXIT_BOOT_ERROR, True   # it never reserved a job
    resque = Resque(spec.redis_url, spec.namespace, connect_wait=None)   # it waits out outages itself (outage.py)
    # What only this process knows: its report pipe's fd and its own pid.
    spec = dataclasses.replace(spec, report_fd=report_fd,
                               pidfile=worker_pidfile(spec.pid_dir, spec, os.getpid()))
    worker = Worker(resque, registry, spec)
    return worker.work(), worker.settled


def recovery_main(spec: dict) -> int:
    """In the recovery run, forked by the spawner and adopted by the master:
    recover the jobs of the dead workers in ``spec`` (RecoveryRuns.start_due)."""
    exit_on_parent_death(signal.SIGKILL)  # each job is settled by one Lua call: safe to kill
    if os.getppid() != spec["master_pid"]:
        return EXIT_FAILURE
    set_raw_title(spec["title"])
    resque = Resque(spec["redis_url"], spec["namespace"],
                    redis=connect(spec["redis_url"], socket_timeout=2, socket_connect_timeout=2))
    recovery = Recovery(resque.redis, resque.keys, spec["on_lost"], spec["max_lost"])
    # A command pool's worker (php-resque, Ruby) keeps no in-flight list: its
    # job is in its working-on record (dirtyexit.py).
    dirty = DirtyExits(resque.redis, resque.keys, spec["on_lost"], spec["max_lost"]) if spec.get("command") else None
    try:
        for worker_id, why in spec["workers"]:
            if dirty is not None:
                dirty.settle(worker_id, why, spec.get("started"))
                continue
            recovery.recover(worker_id, why)
            pipe = resque.redis.pipeline(transaction=False)
            unregister_commands(pipe, resque.keys, worker_id)
            pipe.execute()
    except redis.RedisError as exc:
        if not refusals.is_outage(exc):
            raise
        # Away, or refusing (OOM, READONLY): the master runs us again in a
        # second (EX_TEMPFAIL); say so once per outage.
        if not spec["down"]:
            log.error("cannot recover the jobs of %d dead workers yet: Redis unavailable (%s); retrying",
                      len(spec["workers"]), refusals.describe(exc),
                      extra=event("recovery_redis_down", error=refusals.describe(exc)))
        return EX_TEMPFAIL
    if spec["down"]:
        log.warning("Redis is back: lost jobs recovered", extra=event("recovery_redis_back"))
    return EXIT_OK


def count_jobs_main(spec: dict, answer_fd: int) -> int:
    """In a child of the spawner (not adopted: it answers on its pipe): the
    job counts of the command workers in ``spec`` (master/jobcounts.py), as
    JSON {"counts": {pid: jobs}}, or {"error": why} when Redis is away."""
    set_raw_title(spec["title"])
    resque = Resque(spec["redis_url"], spec["namespace"],
                    redis=connect(spec["redis_url"], socket_timeout=2, socket_connect_timeout=2))
    try:
        answer = {"counts": {str(pid): jobs_done(resque.redis, resque.keys, worker_id, started)
                             for pid, worker_id, started in spec["workers"]}}
    except redis.RedisError as exc:
        answer = {"error": refusals.describe(exc)}
    data = json.dumps(answer).encode()
    while data:   # the master reads it to EOF, whatever its size
        data = data[os.write(answer_fd, data):]
    return EXIT_OK
