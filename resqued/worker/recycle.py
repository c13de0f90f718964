"""When a worker should be replaced: after enough jobs, or when its own
processes use too much memory — what operators used monit for — and when a
running job child is killed for its memory.

The rule (docs/operations.md): ``max_memory`` judges a worker between jobs
by its own processes (the worker, and in a forking pool its job forker and
standby), not by the job child it just served: that memory died with the
child. ``max_memory_hard`` judges a running job child (and what it started),
every second (childwatch.MEMORY_CHECK_INTERVAL). In an inline pool (fork:
false) the job runs in the worker, so its memory stays the worker's and
counts between jobs.

A recycled worker leaves with an exit code that says why (resqued/exits.py),
so every recycle is logged with its reason and counted.
"""

import os

import psutil

from resqued.exits import EXIT_RECYCLE_JOBS, EXIT_RECYCLE_MEMORY


def tree_memory(pid: int, exclude=()) -> int:
    """What killing process ``pid`` would free, in bytes: the proportional
    set size (PSS) of it and every process under it. A page shared by n
    processes counts 1/n in each, so the copy-on-write pages a worker shares
    with its forker, standby and children count once, not once per process
    as RSS would; memory a job leaks counts in full. Read from
    /proc/PID/smaps_rollup (one small read per process; RSS where the kernel
    has no smaps_rollup). ``exclude``: pids left out with everything under
    them (a worker's job child: not the worker's own memory)."""
    return sum(process_memory(p) for p in descendants(pid, include_self=True, prune=exclude))


def job_memory(worker_pid: int, child: int | None) -> int | None:
    """The PSS of job child ``child`` and what it started, or None if it is
    not (or no longer) under worker ``worker_pid`` (its pid may be reused)."""
    if child is None or child not in descendants(worker_pid):
        return None
    return tree_memory(child)


def descendants(pid: int, include_self: bool = False, prune=()) -> list[int]:
    """``pid``'s descendants, from the kernel's per-task children lists
    (a few small reads), not a scan of every process as psutil's
    children() does: with 64 workers that was most of a check's cost.
    A process or thread that ends while it is read is simply gone: the
    tree changes under every read (job children, threads of a job).
    ``prune``: pids left out, with their descendants."""
    found, todo = ([pid] if include_self else []), [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except (FileNotFoundError, ProcessLookupError):
            continue
        except PermissionError:
            return _descendants_by_scan(pid, include_self, prune)
        for task in tasks:
            children = _task_children(parent, task)
            if children is None:
                return _descendants_by_scan(pid, include_self, prune)
            children = [c for c in children if c not in prune]
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


def _descendants_by_scan(pid: int, include_self: bool, prune=()) -> list[int]:
    try:
        todo = [psutil.Process(pid)]
    except psutil.Error:
        return []
    found = [pid] if include_self else []
    while todo:
        try:
            children = [c for c in todo.pop().children() if c.pid not in prune]
        except psutil.Error:   # gone, or not ours to read
            continue
        found += [c.pid for c in children]
        todo += children
    return found


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
    except psutil.Error:   # gone, or not ours to read
        return 0


def approx_size(n: int | None) -> str:
    """Memory as resqued shows it everywhere (logs, resquectl): MB, the unit
    of max_memory's examples (300MB = 300,000,000 bytes)."""
    if n is None:
        return "-"
    return f"{n / 1e6:.1f}MB"


class RecyclePolicy:
    """A pool's limits, and what each judges (the module's docstring)."""

    def __init__(self, max_jobs: int | None = None, max_memory: int | None = None,
                 max_memory_hard: int | None = None):
        self.max_jobs = max_jobs
        self.max_memory = max_memory
        self.max_memory_hard = max_memory_hard

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

    def over_hard_limit(self, child_memory: int) -> bool:
        """Whether a running job child's figure (tree_memory of the child) is past max_memory_hard."""
        return bool(self.max_memory_hard) and child_memory > self.max_memory_hard
