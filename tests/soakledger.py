"""The soak's arithmetic (tests/soak.py; tested in tests/test_soak.py): the
job ledger, the drift bounds, and what the master's memory is made of."""

from dataclasses import dataclass, field

# Past these, from the warm-up to the end, the soak fails. The master's RSS
# may settle a little (the allocator keeps freed pages for reuse, see
# docs/operations.md), but not climb by megabytes; the rest must come back
# exactly to where it was once the pools are idle.
BOUNDS = {"master_rss_mb": 4.0, "master_fds": 0, "processes": 0, "redis_keys": 0}


@dataclass
class Ledger:
    """What was enqueued, what ran (each run's process and its ancestors),
    what failed, and which pids the soak killed."""
    enqueued: set = field(default_factory=set)
    uncertain: set = field(default_factory=set)   # an enqueue that errored: maybe in Redis
    runs: dict = field(default_factory=dict)      # n -> [ancestry pids of each run]
    failed: set = field(default_factory=set)
    killed: set = field(default_factory=set)

    def add_run(self, line: str) -> None:
        n, _, pids = line.partition(" ")
        self.runs.setdefault(int(n), []).append([int(p) for p in pids.split(",") if p])

    def lost(self) -> list:
        return sorted(self.enqueued - set(self.runs) - self.failed)

    def ran_twice(self) -> tuple[list, list]:
        """(explained, unexplained): jobs run more than once, split by
        whether a run before the last was in a process the soak killed."""
        explained, unexplained = [], []
        for n, runs in sorted(self.runs.items()):
            if len(runs) > 1:
                killed = any(set(run) & self.killed for run in runs[:-1])
                (explained if killed else unexplained).append(n)
        return explained, unexplained

    def unknown(self) -> list:
        """Runs of jobs never enqueued: a bug in the soak or a stray job."""
        return sorted(set(self.runs) - self.enqueued - self.uncertain)


def drift(baseline: dict, end: dict, bounds: dict = BOUNDS) -> list[str]:
    """The resources past their bound, as sentences; [] when none is."""
    problems = []
    for name, bound in bounds.items():
        change = end[name] - baseline[name]
        if change > bound:
            problems.append(f"{name} grew by {change:g} (from {baseline[name]:g} to {end[name]:g}; bound {bound:g})")
    return problems


def hourly(change: float, seconds: float) -> float:
    return change * 3600 / seconds if seconds > 0 else 0.0


def memory_parts(pid) -> dict:
    """What RSS is made of: anonymous memory (the heap: a leak shows here)
    and file pages (shared libraries as code paths are first run, shared
    with every resqued process), and PSS, which shares them out."""
    parts = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("RssAnon:", "RssFile:")):
                parts["master_" + line[3:7].lower() + "_mb"] = int(line.split()[1]) * 1024 / 1e6
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                parts["master_pss_mb"] = int(line.split()[1]) * 1024 / 1e6
    return parts
