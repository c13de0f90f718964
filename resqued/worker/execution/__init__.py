"""How a worker runs its jobs: two strategies behind one interface
(``Execution``). ForkingExecution (forking) runs each job in a fresh child,
forked ahead as a standby (standbys) by a job forker beside the worker
(jobforker), and watches it until it reports (childwatch); the child's own
side is jobchild. InlineExecution (inline) runs the job inside the worker.
"""

from typing import Protocol


class Execution(Protocol):
    """What the worker asks of its execution strategy (``worker.execution``)."""

    busy: bool                      # a job is running that kill() can reach
    last_child: int | None          # the last job child's pid (None: jobs run inline)

    def prepare(self, idle: bool = False) -> bool:
        """Before each reserve (``idle``) or held job: get ready to run it.
        False: take no job now (childReady listeners fail: childready.py)."""

    def run(self, job, target) -> tuple:
        """Run one job; returns (Failure or None, skipped)."""

    def kill(self, reason: str | None = None) -> None:
        """Kill the running job (on TERM, INT or USR1), if it can be reached."""

    def close(self) -> None:
        """The worker is stopping: end whatever helper processes it has."""
