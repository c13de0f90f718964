"""When a worker should be replaced: after enough jobs, or when it (with its
job child) uses too much memory — what operators used monit for.

A recycled worker leaves with an exit code that says why (resqued/exits.py),
so every recycle is logged with its reason and counted.
"""

import psutil

from resqued.exits import EXIT_RECYCLE_JOBS, EXIT_RECYCLE_MEMORY


def tree_rss(pid: int, exclude=(), idle_titles=()) -> int:
    """Resident memory of ``pid`` and its descendants, in bytes, leaving out
    ``exclude`` and the processes whose title starts with one of
    ``idle_titles`` (a worker's job forker and standby: no job, and mostly
    the worker's own pages, which would count twice)."""
    try:
        proc = psutil.Process(pid)
        procs = [proc] + [p for p in proc.children(recursive=True)
                          if p.pid not in exclude and not _titled(p, idle_titles)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def _titled(proc, titles) -> bool:
    if not titles:
        return False
    try:
        return " ".join(proc.cmdline()).startswith(titles)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return True  # gone: nothing to count


def approx_size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return str(n)


class RecyclePolicy:
    def __init__(self, max_jobs: int | None = None, max_memory: int | None = None,
                 max_memory_hard: int | None = None):
        self.max_jobs = max_jobs
        self.max_memory = max_memory
        self.max_memory_hard = max_memory_hard

    @property
    def watches_memory(self) -> bool:
        return bool(self.max_memory or self.max_memory_hard)

    def after_job(self, jobs_done: int, rss: int | None) -> int | None:
        """The exit code to leave with now, or None to keep working."""
        if self.max_jobs and jobs_done >= self.max_jobs:
            return EXIT_RECYCLE_JOBS
        if self.max_memory and rss is not None and rss > self.max_memory:
            return EXIT_RECYCLE_MEMORY
        return None

    def over_hard_limit(self, rss: int) -> bool:
        return bool(self.max_memory_hard) and rss > self.max_memory_hard

    def over_soft_limit(self, rss: int) -> bool:
        return bool(self.max_memory) and rss > self.max_memory
