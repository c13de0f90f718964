"""What bounds a running job child, and the watch's decisions about it as
pure functions (childwatch.py acts on them): when to wake next, whether
the master's death has left the job too long, whether the job is past
max_memory_hard or its timeout.

``JobBounds`` is taken from the worker's spec (config/workerspec.py), so
that the watch is given the settings it needs rather than the worker.
"""

from dataclasses import dataclass

MIN_WAIT = 0.001   # a wait never shorter: a deadline just passed is acted on at once


@dataclass(frozen=True)
class JobBounds:
    term_timeout: float                    # TERM, then KILL this long after
    max_memory_hard: int | None = None     # the job child's tree past it is killed
    parent_pid: int | None = None          # the master: the job is orphaned once it is gone
    orphan_timeout: float | None = None    # how long an orphaned job may still run (None: no limit)
    job_timeout: float | None = None       # the pool's; a job's class may set its own (jobs/timeouts.limit_for)

    @classmethod
    def of(cls, spec) -> "JobBounds":
        return cls(spec.term_timeout, spec.max_memory_hard, spec.parent_pid, spec.orphan_timeout,
                   spec.job_timeout)

    def over_hard_limit(self, memory: int) -> bool:
        """Whether the job child's tree (tree_memory of the child) is past max_memory_hard."""
        return bool(self.max_memory_hard) and memory > self.max_memory_hard

    def orphan_step(self, parent_pid: int, orphaned_at: float | None, killing: bool, now: float) -> str | None:
        """What the master's death means for the running job now: None
        (nothing: no limit, the master is there, or the job is being killed
        already), "gone" (just seen gone: the job's time starts now), or
        "overdue" (gone for orphan_timeout: kill the job)."""
        if self.orphan_timeout is None or killing or parent_pid == self.parent_pid:
            return None
        if orphaned_at is None:
            return "gone"
        return "overdue" if now - orphaned_at >= self.orphan_timeout else None


def timed_out(now: float, deadline: float | None, killing: bool) -> bool:
    """Is the job past its deadline (and not being killed already, for a stop, say)?"""
    return deadline is not None and not killing and now >= deadline


def wait_for(now: float, heartbeat_in: float, standby_at=None, memory_at=None, kill_at=None,
             orphan_deadline=None, job_deadline=None) -> float:
    """How long the watch may wait for the child before it has something to
    do: the heartbeat, forking the standby, a memory check, the KILL after
    TERM, or else the end of an orphaned job's time or of the job's timeout."""
    ends = (kill_at,) if kill_at is not None else (orphan_deadline, job_deadline)
    due = [at - now for at in (standby_at, memory_at, *ends) if at is not None]
    return max(min([heartbeat_in, *due]), MIN_WAIT)
