"""How many workers one master may run, all pools together: ``max_workers``,
or else a bound derived from the master's descriptor limit and the memory it
may use. Without a bound, ``count: 100000`` (or ``COUNT=100000``, or TTIN
after TTIN) forks until the host runs out of memory or the master out of
descriptors.

Computed in the process that will be the master (its limits are what count:
``LimitNOFILE=`` under systemd is not a shell's ``ulimit -n``), so only the
master's own loading and ``resqued --check`` apply it, never resquectl."""

import os
import resource

from resqued.config.model import ConfigError
from resqued.numbers import whole_number

# The master holds one descriptor per worker for as long as it runs (the read
# end of its report pipe) and three more while forking it (the pipe's other
# end, the memfd of its settings): one each, with the transient ones counted
# in the reserve below.
FDS_PER_WORKER = 1
CONTROL_CONNECTIONS = 64    # the control socket's connections held at once (master/control.py)
# Besides the workers: stdio, the log, the listener, the signal socketpair,
# two spawners during a restart, epoll, systemd's socket, a fork's pipe and
# memfd, psutil's /proc reads, and the control connections.
RESERVED_FDS = 64 + CONTROL_CONNECTIONS
# An idle forking worker, its job forker and its standby share most pages:
# ~33 MB of PSS together (docs/operations.md), before any job runs.
MEMORY_PER_WORKER = 32 * 1000 * 1000
CLOSE_TO = 0.8              # --check warns past this share of the bound


def descriptor_bound() -> tuple[int, str]:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 30, "no descriptor limit"
    return max(1, (soft - RESERVED_FDS) // FDS_PER_WORKER), f"the descriptor limit of {soft} (ulimit -n)"


def memory_bound() -> tuple[int, str]:
    memory, where = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "memory"
    # A systemd unit's MemoryMax= (or a container's limit) is what its workers may really use.
    cgroup_max = _cgroup_memory_max()
    if cgroup_max is not None and cgroup_max < memory:
        memory, where = cgroup_max, "the cgroup's memory.max"
    return (max(1, memory // MEMORY_PER_WORKER),
            f"{memory / 1e9:.1f} GB of {where} at {MEMORY_PER_WORKER // 1000000} MB a worker")


def _cgroup_memory_max() -> int | None:
    """memory.max of this process's cgroup (v2), if it sets one."""
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as f:
            path = next((line[3:].strip() for line in f if line.startswith("0::")), None)
        if path is None:
            return None
        with open(os.path.join("/sys/fs/cgroup", path.lstrip("/"), "memory.max"), encoding="ascii") as f:
            text = f.read().strip()
    except OSError:
        return None
    return whole_number(text)


def worker_bound(max_workers: int | None) -> tuple[int, str]:
    """(the most workers, why: words for an error message)."""
    if max_workers is not None:
        return max_workers, "max_workers"
    bound, why = min(descriptor_bound(), memory_bound())
    return bound, f"max_workers, derived from {why}"


def check_worker_count(total: int, max_workers: int | None, key: str, raise_with: str, file=None) -> None:
    """Refuse ``total`` workers above the bound: ConfigError naming ``key``
    (pools, COUNT) and the setting that changes the bound (``raise_with``)."""
    bound, why = worker_bound(max_workers)
    if total > bound:
        raise ConfigError(f"{total} workers in all is more than {bound} ({why}); "
                          f"set {raise_with} to change the bound", file=file, path=key)


def warnings(total: int, max_workers: int | None) -> list[str]:
    """What ``resqued --check`` says of the bound: a count close to it, an
    explicit max_workers the descriptor limit cannot carry."""
    found = []
    bound, why = worker_bound(max_workers)
    if total > CLOSE_TO * bound:
        found.append(f"{total} workers in all is close to the most allowed, {bound} ({why})")
    fds, fds_why = descriptor_bound()
    if max_workers is not None and max_workers > fds:
        found.append(f"max_workers {max_workers} is more than {fds_why} allows ({fds} workers): "
                     f"the master would run out of descriptors first; raise LimitNOFILE or ulimit -n")
    return found
