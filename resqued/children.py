"""The master's workers: how one is forked, what the master knows of it, and
how it hears from it.

Everything the child needs is decided before the fork (its pool, its job
limit with jitter, whether it starts paused); after the fork the child resets
signals, leaves the master's process group, arranges to hear of the master's
death, and never returns into the master's code.
"""

import json
import logging
import os
import random
import re
import time
from dataclasses import dataclass, field

from .pidfile import Pidfile
from .proctitle import PREFIX
from .recycle import EXIT_BOOT_ERROR, RecyclePolicy, tree_rss
from .registry import JobRegistry, RegistryError
from .signals import blocked_for_fork, exit_on_parent_death

log = logging.getLogger("resqued.master")


@dataclass
class Child:
    pid: int
    pool: object              # the PoolConfig it was started with
    settings: tuple           # the global settings it was started with
    report_fd: int
    started: float = field(default_factory=time.monotonic)
    started_wall: float = field(default_factory=time.time)
    stopping: bool = False
    stop_reason: str = ""
    report: dict = field(default_factory=dict)
    buffer: bytes = b""

    @property
    def ready(self) -> bool:
        return bool(self.report)

    @property
    def paused(self) -> bool:
        return bool(self.report.get("paused"))

    def fileno(self) -> int:
        return self.report_fd

    def read_reports(self) -> None:
        """Take in what the worker wrote; the last complete line is its state."""
        try:
            data = os.read(self.report_fd, 65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            try:
                self.report = json.loads(line)
            except ValueError:
                log.warning("worker %d sent an unreadable report: %r", self.pid, line[:200])

    def describe(self) -> dict:
        state = "stopping" if self.stopping else self.report.get("state", "starting")
        return {"pid": self.pid, "queues": list(self.pool.queues), "state": state,
                "paused": self.paused, "job": self.report.get("job") if state == "busy" else None,
                "since": self.report.get("since") if state == "busy" else None,
                "jobs_done": self.report.get("jobs", 0), "rss": tree_rss(self.pid, idle_titles=IDLE_TITLES),
                "started": self.started_wall, "stop_reason": self.stop_reason or None}


# A worker's helpers that hold no job: what the worker's own memory checks
# leave out (childwatch.py), by their titles, which the master can see.
IDLE_TITLES = (f"{PREFIX}: Job forker for ", f"{PREFIX}: Standby for ")


def worker_pidfile(pid_dir: str, pool, pid: int) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", pool.name)
    return os.path.join(pid_dir, f"{safe}.{pid}.pid")


def spawn(config, pool, paused: bool, in_child) -> Child:
    """Fork a worker for ``pool``. ``in_child()`` runs first in the child: it
    drops what belongs to the master (signal handlers, control socket, the
    other workers' pipes)."""
    read_fd, write_fd = os.pipe()
    max_jobs = pool.max_jobs + random.randint(0, pool.max_jobs_jitter) if pool.max_jobs else None
    master_pid = os.getpid()
    with blocked_for_fork():
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_fd)
            in_child()
            code = _worker_main(config, pool, paused, write_fd, max_jobs, master_pid)
        except BaseException:
            log.exception("worker for %s crashed", pool.name)
        finally:
            os._exit(code)
    os.close(write_fd)
    os.set_blocking(read_fd, False)
    return Child(pid=pid, pool=pool, settings=global_settings(config), report_fd=read_fd)


def global_settings(config) -> tuple:
    """The settings outside the pools that a running worker depends on: a
    reload that changes any of them replaces every worker."""
    return (config.redis_url, config.namespace, config.jobs, tuple(sorted(config.aliases.items())),
            config.heartbeat_interval, config.term_timeout, config.pid_dir, config.on_lost, config.max_lost)


def _worker_main(config, pool, paused, report_fd, max_jobs, master_pid) -> int:
    # Imported here: the master itself never needs the worker's code paths.
    from .client import Resque
    from .worker import Worker

    os.setpgid(0, 0)  # Ctrl-C on the master's terminal must not reach workers directly
    exit_on_parent_death()
    random.seed()
    try:
        registry = JobRegistry.build(config.jobs, config.aliases)
    except RegistryError as exc:
        log.error("worker for %s cannot start: %s", pool.name, exc)
        return EXIT_BOOT_ERROR
    resque = Resque(config.redis_url, config.namespace)
    worker = Worker(resque, registry, pool.queues, interval=pool.interval,
                    heartbeat_interval=config.heartbeat_interval, term_timeout=config.term_timeout,
                    parent_pid=master_pid,
                    recycle=RecyclePolicy(max_jobs, pool.max_memory, pool.max_memory_hard),
                    start_paused=paused, report_fd=report_fd, orphan_timeout=config.shutdown_timeout,
                    on_lost=config.on_lost, max_lost=config.max_lost, fork=pool.fork, job_forker=pool.job_forker,
                    pidfile=worker_pidfile(config.pid_dir, pool, os.getpid()))
    return worker.work()


def remove_worker_pidfile(config, child: Child) -> None:
    Pidfile(worker_pidfile(config.pid_dir, child.pool, child.pid)).remove(child.pid)


def probe_jobs(config) -> str | None:
    """Import the job modules and aliases in a throwaway child, so that a
    broken job module is reported at start (or refuses a reload) instead of
    making every worker die at boot. Returns the error, or None. The master
    itself stays free of the application's code and memory."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(read_fd)
            JobRegistry.build(config.jobs, config.aliases)
        except RegistryError as exc:
            os.write(write_fd, str(exc).encode()[:60000])
            code = 1
        except BaseException as exc:
            os.write(write_fd, f"{type(exc).__name__}: {exc}".encode()[:60000])
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        message = pipe.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        return message or f"job modules could not be loaded (exit status {status})"
    return None
