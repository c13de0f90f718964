"""When a worker should be replaced: after enough jobs, or when its own
processes use too much memory — what operators used monit for — and when a
running job child is killed for its memory.

The rule (docs/operations.md): ``max_memory`` judges a worker between jobs
by its own processes (the worker, and in a forking pool its job forker and
standby), not by the job child it just served: that memory died with the
child. ``max_memory_hard`` (jobbounds.JobBounds, not here) judges a running job child (and what it started),
every second (childwatch.MEMORY_CHECK_INTERVAL). In an inline pool (fork:
false) the job runs in the worker, so its memory stays the worker's and
counts between jobs.

A recycled worker leaves with an exit code that says why (resqued/exits.py),
so every recycle is logged with its reason and counted.
"""

from resqued.exits import EXIT_RECYCLE_JOBS, EXIT_RECYCLE_MEMORY
from resqued.process.memory import approx_size


class RecyclePolicy:
    """A pool's limits, and what each judges (the module's docstring)."""

    def __init__(self, max_jobs: int | None = None, max_memory: int | None = None):
        self.max_jobs = max_jobs
        self.max_memory = max_memory

    def after_job(self, jobs_done: int, own_memory) -> tuple[int, str] | None:
        """The exit code to leave with now and why, or None to keep working.
        ``own_memory``: called for the figure of the worker's own processes
        only when max_memory asks for it (it costs a few /proc reads)."""
        if self.max_jobs and jobs_done >= self.max_jobs:
            return EXIT_RECYCLE_JOBS, ""
        if self.max_memory:
            memory = own_memory()
            if memory > self.max_memory:
                return EXIT_RECYCLE_MEMORY, (f"its own processes use {approx_size(memory)}, "
                                             f"over max_memory {approx_size(self.max_memory)}")
        return None
