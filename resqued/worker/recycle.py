"""When a worker should be replaced: after enough jobs, or when it (with its
job child) uses too much memory — what operators used monit for.

A recycled worker leaves with an exit code that says why (resqued/exits.py),
so every recycle is logged with its reason and counted.
"""

import os

import psutil

from resqued.exits import EXIT_RECYCLE_JOBS, EXIT_RECYCLE_MEMORY


def tree_memory(pid: int, exclude=()) -> int:
    """What killing worker ``pid`` would free, in bytes: the proportional set
    size (PSS) of the worker and every process under it (its job forker,
    standby and job child). A page shared by n processes counts 1/n in each,
    so the copy-on-write pages a worker shares with its forker, standby and
    child count once, not four times as RSS would; memory a job leaks counts
    in full. Read from /proc/PID/smaps_rollup (one small read per process;
    RSS where the kernel has no smaps_rollup). ``exclude``: pids left out
    (a job child that has reported and is exiting)."""
    return sum(process_memory(p) for p in descendants(pid, include_self=True) if p not in exclude)


def descendants(pid: int, include_self: bool = False) -> list[int]:
    """``pid``'s descendants, from the kernel's per-task children lists
    (a few small reads), not a scan of every process as psutil's
    children() does: with 64 workers that was most of a check's cost.
    A process or thread that ends while it is read is simply gone: the
    tree changes under every read (job children, threads of a job)."""
    found, todo = ([pid] if include_self else []), [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except (FileNotFoundError, ProcessLookupError):
            continue
        except PermissionError:
            return _descendants_by_scan(pid, include_self)
        for task in tasks:
            children = _task_children(parent, task)
            if children is None:
                return _descendants_by_scan(pid, include_self)
            found += children
            todo += children
    return found


def _task_children(parent: int, task: str) -> list[int] | None:
    """The children of one task ([] if it has ended), or None when this
    kernel cannot say (no CONFIG_PROC_CHILDREN, or no permission)."""
    path = f"/proc/{parent}/task/{task}"
    try:
        with open(f"{path}/children") as f:
            return [int(c) for c in f.read().split()]
    except FileNotFoundError:
        # Gone (ENOENT once it is reaped), or a kernel without the file.
        return None if os.path.isdir(path) else []
    except ProcessLookupError:
        return []   # ESRCH: it ended between the listing and the read
    except PermissionError:
        return None


def _descendants_by_scan(pid: int, include_self: bool) -> list[int]:
    try:
        children = [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:   # gone, or not ours to read
        return []
    return ([pid] if include_self else []) + children


def process_memory(pid: int) -> int:
    """One process's PSS in bytes (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except FileNotFoundError:
        if not os.path.exists(f"/proc/{pid}"):
            return 0
    except (ProcessLookupError, PermissionError):
        pass
    try:
        return psutil.Process(pid).memory_info().rss
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0


def approx_size(n: int | None) -> str:
    """Memory as resqued shows it everywhere (logs, resquectl): MB, the unit
    of max_memory's examples (300MB = 300,000,000 bytes)."""
    if n is None:
        return "-"
    return f"{n / 1e6:.1f}MB"


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
