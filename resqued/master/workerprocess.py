"""The master's workers: how one is started, what the master knows of it, and
how it hears from it.

Everything the worker needs is decided by the master (its pool, its job
limit with jitter, whether it starts paused) and sent to the spawner, which
forks it (spawner.py); the worker then leaves the spawner's process group,
arranges to hear of the master's death, and runs (entrypoints.worker_main).
Also here: the probe that checks a config's Redis URL and job modules in a
throwaway child before the master uses it.
"""

import dataclasses
import json
import logging
import os
import random
import re
import time
from dataclasses import dataclass, field

from resqued.config.sizes import format_size
from resqued.process.pidfile import Pidfile
from resqued.process.memory import approx_size, job_memory, tree_memory
from resqued.jobs.allowlist import JobRegistry, RegistryError
from resqued.config.redisurl import redact

log = logging.getLogger("resqued.master")


@dataclass
class Child:
    pid: int
    pool: object              # the PoolConfig it was started with
    settings: tuple           # the global settings it was started with
    report_fd: int
    recovery: dict = field(default_factory=dict)  # where its jobs are recovered if it dies
    started: float = field(default_factory=time.monotonic)
    started_wall: float = field(default_factory=time.time)
    stopping: bool = False
    stop_reason: str = ""
    generation: int = 0       # rolling restarts before its start (restart.py)
    last_error: str = ""      # the last error it logged: a FAILED pool's reason
    report: dict = field(default_factory=dict)
    exit_notice: dict | None = None   # its announced exit (worker/reports.announce_exit)
    buffer: bytes = b""

    @property
    def ready(self) -> bool:
        return bool(self.report)

    @property
    def paused(self) -> bool:
        return bool(self.report.get("paused"))

    @property
    def busy(self) -> bool:
        """Its last report said it runs a job."""
        return self.report.get("state") == "busy"

    def job_label(self) -> str:
        """The job it last said it runs, for a log line: "job <id> (<class>)"."""
        job = self.report.get("job")
        job = job if isinstance(job, dict) else {}
        return f"job {job.get('id') or '(no id)'} ({job.get('class')})"

    def announced(self, code: int) -> bool:
        """Did it announce that it exits with ``code``? Only then is the code
        the worker's own (supervise/states.judge_exit)."""
        return self.exit_notice is not None and self.exit_notice.get("exit") == code

    @property
    def settled(self) -> bool:
        """It announced that it left nothing in its in-flight lists."""
        return bool(self.exit_notice and self.exit_notice.get("settled") is True)

    def fileno(self) -> int:
        return self.report_fd

    def read_reports(self) -> None:
        """Take in what the worker wrote; the last complete line is its state."""
        # All of it: once reaped, what is left in the pipe is its last word.
        while True:
            try:
                data = os.read(self.report_fd, 65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                data = b""
            self.buffer += data
            if not data:
                break
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            try:
                report = json.loads(line)
            except ValueError:
                log.warning("worker %d sent an unreadable report: %r", self.pid, line[:200])
                continue
            if isinstance(report, dict) and set(report) == {"error"}:
                self.last_error = str(report["error"])   # an error it logged (entrypoints.ErrorReports)
            elif isinstance(report, dict) and "exit" in report:
                self.exit_notice = report   # not a state: its last state says what it was doing
            elif isinstance(report, dict):
                self.report = report

    def describe(self) -> dict:
        reported = self.report.get("state", "starting")
        state = "stopping" if self.stopping or self.exit_notice else reported
        # memory: the worker's own processes, the figure max_memory judges;
        # a forked job's child is job_memory, the figure max_memory_hard judges.
        child = self.report.get("child") if self.report.get("state") == "busy" else None
        # paused: told to pause (a busy worker pauses after its job), or
        # paused by Resque's pause-all-workers key. The job: also while it is
        # told to stop, until the job ends.
        return {"pid": self.pid, "queues": list(self.pool.queues), "state": state,
                "paused": self.paused or state == "paused",
                "job": self.report.get("job") if self.busy else None,
                "since": self.report.get("since") if reported in ("busy", "redis-down") else None,
                "error": self.report.get("error") if state == "redis-down" else None,
                "jobs_done": self.report.get("jobs", 0),
                "memory": tree_memory(self.pid, exclude={child} if child else ()),
                "job_memory": job_memory(self.pid, child),
                "started": self.started_wall, "stop_reason": self.stop_reason or None}



def worker_pidfile(pid_dir: str | None, pool, pid: int) -> str | None:
    if not pid_dir:
        return None    # env mode: php-resque writes no worker pidfiles either
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", pool.name)
    return os.path.join(pid_dir, f"{safe}.{pid}.pid")


def spawn(config, pool, paused: bool, spawner) -> Child:
    """Have the spawner (spawner.py) fork a worker for ``pool``; raises
    SpawnerError. Everything the worker needs is decided here and sent as
    JSON, so the spawner needs no copy of the current config."""
    read_fd, write_fd = os.pipe()
    max_jobs = pool.max_jobs + random.randint(0, pool.max_jobs_jitter) if pool.max_jobs else None
    settings = {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.name != "pools"}
    spec = {"config": settings, "pool": dataclasses.asdict(pool), "paused": paused,
            "max_jobs": max_jobs, "master_pid": os.getpid()}
    try:
        pid = spawner.spawn_worker(spec, write_fd)
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    os.set_blocking(read_fd, False)
    return Child(pid=pid, pool=pool, settings=global_settings(config), report_fd=read_fd,
                 recovery=recovery_settings(config))


def recovery_settings(config) -> dict:
    """Where and how a dead worker's jobs are recovered: from the Redis it was
    started with, which a reload may since have changed."""
    return {"redis_url": config.redis_url, "namespace": config.namespace,
            "on_lost": config.on_lost, "max_lost": config.max_lost}


def global_settings(config) -> tuple:
    """The settings outside the pools that a running worker depends on: a
    reload that changes any of them replaces every worker."""
    return (config.redis_url, config.namespace, config.jobs, tuple(sorted(config.aliases.items())),
            config.heartbeat_interval, config.term_timeout, config.pid_dir, config.on_lost, config.max_lost)


def remove_worker_pidfile(config, child: Child) -> None:
    if config.pid_dir:
        Pidfile(worker_pidfile(config.pid_dir, child.pool, child.pid)).remove(child.pid)


def probe(config) -> str | None:
    """In a throwaway child, check the Redis URL's options with redis-py and
    import the job modules and aliases, so that a broken URL or job module is
    reported at start (or refuses a reload) instead of making every worker
    die at boot. Returns the error as "<key>: <problem>", or None. The master
    itself stays free of redis-py and of the application's code and memory."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_fd)
            code = 0 if _probe_in_child(config, write_fd) else 1
        except BaseException as exc:
            os.write(write_fd, f"jobs: {type(exc).__name__}: {exc}".encode()[:60000])
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        message = pipe.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        return message or f"jobs: job modules could not be loaded (exit status {status})"
    return None


def runtime_warnings(config, timeout: float = 2.0) -> list[str]:
    """What ``--check`` warns of, found in a throwaway child (the master never
    loads redis-py or the application): Redis cannot be reached (a master
    started would wait for it), and a pool's max_memory below what an idle
    worker of this config uses: such a worker would be recycled after every
    job. The estimate is the measure status shows and max_memory judges, PSS
    (recycle.tree_memory), of a child that imports what a worker imports. A
    worker's job forker and standby share its pages, so they add little; but
    workers share their imports with each other (and the spawner), so a
    running worker's figure shrinks as more workers share pages."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            _warn_in_child(config, timeout, write_fd)
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        lines = pipe.read().decode(errors="replace").splitlines()
    os.waitpid(pid, 0)
    return lines


def _warn_in_child(config, timeout, write_fd) -> None:
    def warn(text):
        os.write(write_fd, " ".join(text.split())[:2000].encode() + b"\n")

    try:
        from resqued.redisio.connection import connect  # in this child only: see runtime_warnings
        client = connect(config.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout)
        client.ping()
    except BaseException as exc:
        warn(f"cannot reach Redis at {redact(config.redis_url)}: {exc}")
    else:
        from resqued.redisio.permissions import missing_commands  # in this child only, as connect
        missing = missing_commands(client, config.namespace)
        if missing:
            warn(f"the Redis user may not run what workers need: {', '.join(missing)}; its workers would "
                 f"fail at start (grant it, e.g. ACL SETUSER <user> {' '.join('+' + m for m in missing if ' ' not in m)})")
    try:
        import resqued.worker.worker  # noqa: F401  (in this child only: what a worker imports)
        JobRegistry.build(config.jobs, config.aliases)
        idle = tree_memory(os.getpid())
    except BaseException:
        return   # the start's own check (probe) reports job modules that do not import
    for index, pool in enumerate(config.pools):
        if pool.max_memory and pool.max_memory < idle * 1.1:
            warn(f"pools[{index}].max_memory ({format_size(pool.max_memory)}) is below what an idle worker "
                 f"of this config uses (about {approx_size(idle)}, an estimate: the figure resquectl status "
                 "shows shrinks as more workers share pages): its workers would be recycled after every job")


def _probe_in_child(config, write_fd) -> bool:
    from redis.connection import parse_url  # in the probe's child only: the master never loads redis-py
    try:
        parse_url(config.redis_url)
    except ValueError as exc:
        os.write(write_fd, f"redis: redis URL {redact(config.redis_url)!r}: {exc}".encode())
        return False
    try:
        JobRegistry.build(config.jobs, config.aliases)
    except RegistryError as exc:
        os.write(write_fd, f"jobs: {exc}".encode()[:60000])
        return False
    return True
