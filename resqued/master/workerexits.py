"""What a reaped worker's exit means to its pool, decided, then acted on:
``judge`` reads plain facts (``ExitFacts``, taken from the master's Child)
and returns an ``ExitDecision``: supervise/states.judge_exit's verdict, and
whether its in-flight jobs must be recovered. ``record`` writes the verdict
into the pool's supervision record (its backoff, FATAL, counters), and
``report`` says what became of it in one log line. The arbiter applies them
(``Arbiter._account``): it hands the lost jobs to its recovery runs, logs
the line, and stops when every pool has failed in env mode. No process, no
clock (test_architecture.PURE_DECISIONS): tests/master/test_workerexits.py
drives them with plain values.
"""

import logging
from dataclasses import dataclass

from resqued.exits import EXIT_OK, EXIT_REASONS
from resqued.process import logs
from resqued.supervise.states import Exit, judge_exit, left_jobs_behind


@dataclass(frozen=True)
class ExitFacts:
    """What the master knew of a worker when it reaped it."""
    pid: int
    pool: str                 # its pool's name
    code: int                 # exit code, or minus the signal number
    announced: bool = False   # it said it exits with ``code`` (reports.announce_exit)
    settled: bool = False     # ... with its in-flight lists emptied
    ready: bool = True        # it had reported for work
    busy: bool = False        # its last report said it runs a job
    stopping: bool = False    # the master told it to stop
    uptime: float = 60.0      # seconds since its start
    job: str = ""             # the job it last said it runs, for the log (Child.job_label)
    last_error: str = ""      # the last error it logged
    how: str = ""             # the code in words, for the log: workercontrol.describe_exit

    @classmethod
    def of(cls, child, code: int, now: float, how: str) -> "ExitFacts":
        """From the master's workerprocess.Child."""
        return cls(child.pid, child.pool.name, code, child.announced(code), child.settled, child.ready,
                   child.busy, child.stopping, now - child.started, child.job_label() if child.busy else "",
                   child.last_error, how)


@dataclass(frozen=True)
class ExitDecision:
    verdict: Exit
    lost: str | None          # its in-flight jobs are recovered, for this reason; None: nothing left


def judge(facts: ExitFacts, hostname: str, pool_known: bool = True) -> ExitDecision:
    """``pool_known``: its pool is still in the config (a reload removed it: it was stopped)."""
    lost = None
    if left_jobs_behind(facts.code, announced=facts.announced, settled=facts.settled):
        lost = f"worker {worker_id(facts, hostname)} died ({facts.how}) while processing it"
    verdict = judge_exit(facts.code, stopping=facts.stopping or not pool_known, ready=facts.ready,
                         busy=facts.busy, announced=facts.announced, uptime=facts.uptime)
    return ExitDecision(verdict, lost)


def worker_id(facts: ExitFacts, hostname: str) -> str:
    """Its Resque worker id: where its in-flight jobs are."""
    return f"{hostname}:{facts.pid}:{facts.pool}"


def record(decision: ExitDecision, facts: ExitFacts, pool, now: float, start_retries: int) -> float | None:
    """Write the exit into ``pool`` (its supervision record; None when a
    reload removed it; ``start_retries``: its pool.yml setting). Returns the
    backoff delay after a boot failure."""
    if decision.verdict is Exit.STOPPED:
        return None
    if decision.verdict is not Exit.RECYCLED:
        pool.last_exit, pool.last_error = facts.how, facts.last_error
    return pool.worker_exited(decision.verdict, now, start_retries)


def report(decision: ExitDecision, facts: ExitFacts, pool, delay: float | None) -> tuple[int, str]:
    """The log line (level, text) for the exit, once recorded."""
    name, verdict = f"worker {facts.pid} ({facts.pool})", decision.verdict
    if verdict is Exit.STOPPED:
        return logging.INFO, f"{name} stopped ({facts.how})"
    if verdict is Exit.RECYCLED:
        return logging.INFO, f"{name} {EXIT_REASONS[facts.code]}; replacing it"
    if verdict is Exit.DIED and facts.code == EXIT_OK and facts.announced:
        # Not a death: someone stopped it (a TERM or QUIT sent to the worker itself).
        return logging.INFO, f"{name} exited on its own ({facts.how}) after {facts.uptime:.0f}s; replacing it"
    if verdict is Exit.DIED:
        running = f" running {facts.job}" if facts.busy and not facts.announced else ""
        return logging.WARNING, f"{name} died ({facts.how}){running} after {facts.uptime:.0f}s; replacing it"
    if pool.failed:
        last = f"; last error: {pool.last_error}" if pool.last_error else ""
        return logging.ERROR, f"pool {facts.pool} failed: {pool.reason}{last}; not restarting until a reload"
    return logging.WARNING, f"{name} died at boot ({facts.how}); next start in {delay:.1f}s"


def log_event(decision: ExitDecision, facts: ExitFacts, pool, hostname: str) -> dict:
    """``extra=`` for report's line (process/logs.py): the exit's event
    name and its worker, pool and exit code or signal, for JSON logs."""
    verdict, fields = decision.verdict, {"worker": worker_id(facts, hostname), "pool": facts.pool,
                                         **logs.exited(facts.code)}
    if verdict is Exit.STOPPED:
        return logs.event("worker_stopped", **fields)
    if verdict is Exit.RECYCLED:
        return logs.event("worker_recycled", reason=EXIT_REASONS[facts.code], **fields)
    if verdict is Exit.DIED:
        return logs.event("worker_replaced" if facts.code == EXIT_OK and facts.announced else "worker_died",
                          **fields)
    if pool.failed:
        return logs.event("pool_failed", reason=pool.reason, error=pool.last_error or None, **fields)
    return logs.event("worker_boot_failed", **fields)
