"""The master's workers: how one is started, what the master knows of it, and
how it hears from it.

Everything the worker needs is decided by the master (its pool's and the
config's settings, its job limit with jitter, whether it starts paused) as
one WorkerSpec (config/workerspec.py), sent to the spawner as JSON, which
forks it (spawnerlink.py); the worker then leaves the spawner's process group,
arranges to hear of the master's death, and runs (spawner/entrypoints.worker_main).
"""

import logging
import os
import random
import socket
import time
from dataclasses import dataclass, field

from resqued.config.settings import WORKER
from resqued.config.workerspec import for_pool
from resqued.master import reportpipesize
from resqued.process import logs
from resqued.process.pidfile import Pidfile, worker_pidfile
from resqued.protocols import reportpipe
from resqued.protocols.controlsocket import WorkerStatus
from resqued.protocols.reportpipe import ErrorReport, ExitAnnouncement, StateReport, WorkerState
from resqued.process.memory import job_memory, tree_memory

log = logging.getLogger("resqued.master")

READ_SIZE = 65536   # bytes of a report pipe read at a time


# eq=False: a worker is the process, not its fields. A generated __eq__
# compared every field of two children each time the master's loop asked
# "is this one among the ready?" (64 workers: ~160 whole-record compares
# a turn, a third of the master's CPU between its waits).
@dataclass(eq=False)
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
    report: StateReport | None = None          # its last state report
    exit_notice: ExitAnnouncement | None = None   # its announced exit (worker/reports.announce_exit)
    buffer: bytes = b""
    tally: object = None      # a metricstally.Tally: the outcomes of its jobs are counted there

    @property
    def ready(self) -> bool:
        return self.report is not None

    @property
    def paused(self) -> bool:
        return bool(self.report and self.report.paused)

    @property
    def busy(self) -> bool:
        """Its last report said it runs a job (Redis away meanwhile, or not)."""
        return self.reported == WorkerState.BUSY or (self.reported == WorkerState.REDIS_DOWN
                                                     and bool(self.report.job))

    @property
    def reported(self) -> WorkerState:
        """The state its last report gave."""
        return self.report.state if self.report else WorkerState.STARTING

    def job_label(self) -> str:
        """The job it last said it runs, for a log line: "job <id> (<class>)"."""
        job = (self.report and self.report.job) or {}
        return f"job {job.get('id') or '(no id)'} ({job.get('class')})"

    def event(self, name: str, **fields) -> dict:
        """``extra=`` for a log line about this worker (logs.event): its id,
        as the worker's own lines give it, and its pool."""
        return logs.event(name, worker=f"{socket.gethostname()}:{self.pid}:{self.pool.name}", pool=self.pool.name,
                          **fields)

    def announced(self, code: int) -> bool:
        """Did it announce that it exits with ``code``? Only then is the code
        the worker's own (supervise/states.judge_exit)."""
        return self.exit_notice is not None and self.exit_notice.code == code

    @property
    def settled(self) -> bool:
        """It announced that it left nothing in its in-flight lists."""
        return bool(self.exit_notice and self.exit_notice.settled)

    def fileno(self) -> int:
        return self.report_fd

    def read_reports(self) -> int:
        """Take in what the worker wrote; the last complete line is its state.
        Returns how many bytes it had written (reportpace.py: how busy it is)."""
        # All of it: once reaped, what is left in the pipe is its last word.
        taken = 0
        while True:
            try:
                data = os.read(self.report_fd, READ_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                data = b""
            self.buffer += data
            taken += len(data)
            # A pipe's read hands over all it holds, up to READ_SIZE: less
            # means it is empty now (no second read to hear EAGAIN, which
            # was a system call and an exception per worker per turn).
            if len(data) < READ_SIZE:
                break
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            try:
                report = reportpipe.decode(line)
            except reportpipe.ReportRefused as exc:
                log.warning("worker %d sent a line that is no report (%s): %r", self.pid, exc, line[:200])
                continue
            if isinstance(report, ErrorReport):
                self.last_error = report.text   # an error it logged (spawner/entrypoints.ErrorReports)
            elif isinstance(report, ExitAnnouncement):
                self.exit_notice = report   # not a state: its last state says what it was doing
            else:
                self.report = report
                if report.outcomes and self.tally is not None:
                    for record in report.outcomes:
                        self.tally.add(record)
        return taken

    def describe_state(self) -> WorkerState:
        """Its state as status shows it: stopping once told to stop or announced."""
        return WorkerState.STOPPING if self.stopping or self.exit_notice else self.reported

    def describe(self, memory: bool = True) -> WorkerStatus:
        """``memory``: read each worker's memory (PSS, from /proc: the costly
        part of a status; the fleet advertiser asks every 2 s without it)."""
        reported = self.reported
        state = self.describe_state()
        report = self.report or StateReport(WorkerState.STARTING)
        # memory: the worker's own processes, the figure max_memory judges;
        # a forked job's child is job_memory, the figure max_memory_hard judges.
        child = report.child if self.busy else None
        # paused: told to pause (a busy worker pauses after its job), or
        # paused by Resque's pause-all-workers key. The job: also while it is
        # told to stop, until the job ends.
        return {"pid": self.pid, "queues": list(self.pool.queues), "state": state,
                "paused": self.paused or state == WorkerState.PAUSED,
                "job": report.job if self.busy else None,
                "since": report.since if reported in (WorkerState.BUSY, WorkerState.REDIS_DOWN) else None,
                "error": report.error if state == WorkerState.REDIS_DOWN else None,
                "jobs_done": report.jobs or 0,
                "memory": tree_memory(self.pid, exclude={child} if child else ()) if memory else None,
                "job_memory": job_memory(self.pid, child) if memory else None,
                "started": self.started_wall, "stop_reason": self.stop_reason or None}


def spawn(config, pool, paused: bool, spawner, tally=None) -> Child:
    """Have the spawner (spawner/main.py) fork a worker for ``pool``; raises
    SpawnerError. Everything the worker needs is decided here, as its
    WorkerSpec (config/workerspec.py), and sent as JSON, so the spawner needs
    no copy of the current config."""
    max_jobs = pool.max_jobs + random.randint(0, pool.max_jobs_jitter) if pool.max_jobs else None
    spec = for_pool(config, pool, max_jobs=max_jobs, start_paused=paused, parent_pid=os.getpid(),
                    orphan_timeout=config.shutdown_timeout)
    read_fd, write_fd = os.pipe()
    reportpipesize.enlarge(read_fd, sum(p.count for p in config.pools))   # room for a pace's reports
    try:
        pid = spawner.spawn_worker(spec.to_json(), write_fd)
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    os.set_blocking(read_fd, False)
    return Child(pid=pid, pool=pool, settings=global_settings(config), report_fd=read_fd,
                 recovery=recovery_settings(config), tally=tally)


def recovery_settings(config) -> dict:
    """Where and how a dead worker's jobs are recovered: from the Redis it was
    started with, which a reload may since have changed."""
    return {"redis_url": config.redis_url, "namespace": config.namespace,
            "on_lost": config.on_lost, "max_lost": config.max_lost}


def global_settings(config) -> tuple:
    """The settings outside the pools that a running worker runs with
    (settings.py's ``worker=True``): a reload that changes any of them
    replaces every worker."""
    return tuple(getattr(config, s.attribute) for s in WORKER.values() if not s.pool)


def remove_worker_pidfile(config, child: Child) -> None:
    if config.pid_dir:
        try:
            Pidfile(worker_pidfile(config.pid_dir, child.pool, child.pid)).remove(child.pid)
        except OSError as exc:   # pid_dir replaced or unreadable: a reap must not end the master
            log.warning("cannot remove worker %d's pidfile: %s", child.pid, exc)
