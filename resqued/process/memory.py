"""How much memory a process tree holds, as resqued judges and shows it:
PSS summed over a process and its descendants (tree_memory), read from
/proc, and the one spelling of a size in logs and resquectl (approx_size).

Pure OS reads, no Redis: the master (resquectl status's figures), resquectl
and the worker's recycling (worker/recycle.py) share it.
"""

import os

import psutil


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


_PAGE = os.sysconf("SC_PAGE_SIZE")


def resident(pid: int) -> int | None:
    """A process's RSS in bytes (None if it is gone), from /proc/PID/statm:
    psutil.Process(pid) reads /proc/stat and /proc/PID/stat to build itself
    first (3.5x the cost; the master answers a status every 2 s)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):   # gone, or hidden (hidepid)
        return None


def approx_size(n: int | None) -> str:
    """Memory as resqued shows it everywhere (logs, resquectl): MB, the unit
    of max_memory's examples (300MB = 300,000,000 bytes)."""
    if n is None:
        return "-"
    return f"{n / 1e6:.1f}MB"
