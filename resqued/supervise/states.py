"""What a supervisor decides when one of its workers exits, and what it keeps
of a pool across its workers' lives (PoolSupervision), as pure code (no processes, no clock of its own): the
master's arbiter, which env mode runs too, acts on it.

A pool (a pool.yml entry, config/model.PoolConfig) is RUNNING, in BACKOFF after its workers died at boot (each start
waits longer), or FATAL after its start_retries (pool.yml) boot deaths in a row were retried, until
a reload: Supervisor's STARTING/BACKOFF/FATAL, per pool.
"""

import enum
from dataclasses import dataclass, field

from resqued.exits import CLEAN_EXITS, EXIT_BOOT_ERROR, EXIT_RECYCLE_JOBS, EXIT_RECYCLE_MEMORY
from resqued.supervise.backoff import Backoff

# A worker that exits with an error sooner than this after its start did not
# really start (Supervisor's startsecs): e.g. an ACL user without a command
# it needs, which it finds at its first reserve, after reporting for work.
MIN_UPTIME = 5.0


class Exit(enum.Enum):
    """Why a worker exited, as its supervisor judges it."""
    STOPPED = "stopped"            # it was told to stop
    RECYCLED = "recycled"          # it left to be replaced (max_jobs, max_memory)
    BOOT_FAILURE = "boot failure"  # it died before it ever reported for work
    DIED = "died"                  # it died while working


def judge_exit(code: int, *, stopping: bool, ready: bool, busy: bool = False, announced: bool = False,
               uptime: float = MIN_UPTIME) -> Exit:
    """``code``: exit code, or minus the signal number; ``stopping``: it was
    told to stop; ``ready``: it had reported for work; ``busy``: its last
    report said it was running a job; ``announced``: it said on its report
    pipe that it exits with ``code`` (reports.announce_exit); ``uptime``:
    seconds since its start. A code is the worker's own only when announced:
    a job running inside the worker can end the process with any code
    (os._exit(4) is no max_jobs recycle)."""
    if stopping:
        return Exit.STOPPED
    if busy and not announced:
        return Exit.DIED   # mid-job, whatever its code: the job's dirty exit, not the pool's boot
    if announced and code in (EXIT_RECYCLE_JOBS, EXIT_RECYCLE_MEMORY):
        return Exit.RECYCLED
    if not ready or (announced and code == EXIT_BOOT_ERROR):
        return Exit.BOOT_FAILURE
    # An error exit (not a signal: a kill from outside says nothing of its boot).
    if code > 0 and uptime < MIN_UPTIME:
        return Exit.BOOT_FAILURE
    return Exit.DIED


def left_jobs_behind(code: int, *, announced: bool, settled: bool) -> bool:
    """Must its in-flight jobs be recovered? Not after an exit it announced
    with its in-flight lists emptied (``settled``); after any other, whatever
    the code (see judge_exit)."""
    return not (announced and settled and code in CLEAN_EXITS)


class SupervisionState(enum.Enum):
    RUNNING = "running"
    BACKOFF = "backoff"
    FATAL = "failed"


@dataclass
class PoolSupervision:
    """A pool's supervision record, kept across the lives of its workers."""
    backoff: Backoff = field(default_factory=Backoff)
    failed: bool = False      # FATAL: no more starts until a reload
    adjust: int = 0           # TTIN/TTOU
    recycles: int = 0
    restarts: int = 0
    last_exit: str = ""       # how its last worker that died or failed to boot exited
    last_error: str = ""      # and the last error that worker logged

    @property
    def reason(self) -> str:
        """Why the pool is FATAL, in one line ("" when it is not)."""
        if not self.failed:
            return ""
        # Without last_error: this line goes to systemd's STATUS=, which any
        # local user can read; the error (resquectl status) may hold secrets.
        last = f" (last: {self.last_exit})" if self.last_exit else ""
        return f"its workers died at boot {self.backoff.failures} times in a row{last}"

    def state(self, now: float) -> SupervisionState:
        if self.failed:
            return SupervisionState.FATAL
        return SupervisionState.BACKOFF if self.backoff.waiting(now) else SupervisionState.RUNNING

    def may_start(self, now: float) -> bool:
        return self.state(now) is SupervisionState.RUNNING

    def worker_exited(self, verdict: Exit, now: float, start_retries: int) -> float | None:
        """Record a worker's exit. Returns the backoff delay after a boot
        failure (None when the pool just turned FATAL, after ``start_retries``
        boot failures in a row were retried, or for other exits)."""
        if verdict is Exit.RECYCLED:
            self.recycles += 1
        elif verdict is Exit.BOOT_FAILURE:
            self.restarts += 1
            if self.backoff.failures >= start_retries:
                self.backoff.failures += 1
                self.failed = True
                return None
            return self.backoff.failed(now)
        elif verdict is Exit.DIED:
            self.restarts += 1
            self.backoff.succeeded()
        return None


@dataclass
class Stop:
    """A supervisor's stop in progress, in one place: how (graceful: jobs
    finish; immediate: jobs are killed) and its deadlines (time.monotonic()),
    each None until it applies."""
    mode: str                                  # "graceful" or "immediate"
    turn_immediate_at: float | None = None     # a bounded graceful stop kills the jobs then
    kill_at: float | None = None               # workers still there then get SIGKILL
    give_up_recovery_at: float | None = None   # lost jobs left for the next prune then

    @property
    def graceful(self) -> bool:
        return self.mode == "graceful"

    def escalates_to(self, mode: str) -> bool:
        """Is ``mode`` a stronger stop than this one (only graceful -> immediate)?"""
        return self.graceful and mode == "immediate"

    def deadlines(self) -> list[float]:
        return [t for t in (self.turn_immediate_at, self.kill_at, self.give_up_recovery_at) if t]

    def begin(self, mode: str, bounded: bool, now: float, shutdown_timeout: float, term_timeout: float) -> None:
        """Stop in ``mode`` from ``now`` (the first stop, or graceful turned
        immediate): graceful and ``bounded`` turns immediate after
        shutdown_timeout; immediate kills what is left after term_timeout
        and 5 s more."""
        self.mode = mode
        if mode == "immediate":
            self.turn_immediate_at, self.kill_at = None, now + term_timeout + 5.0
        elif bounded:
            self.turn_immediate_at = now + shutdown_timeout

    def due(self, now: float) -> tuple[bool, bool]:
        """(turn immediate now, kill the workers left now); each is due once."""
        turn = bool(self.turn_immediate_at and now >= self.turn_immediate_at)
        kill = bool(self.kill_at and now >= self.kill_at)
        if kill:
            self.kill_at = None
        return turn, kill

    def give_up_recovery(self, now: float, timeout: float) -> bool:
        """Once nothing but Redis is left to wait for (lost jobs to recover,
        no worker): give up ``timeout`` seconds later, not hang forever."""
        if self.give_up_recovery_at is None:
            self.give_up_recovery_at = now + timeout
            return False
        return now >= self.give_up_recovery_at
