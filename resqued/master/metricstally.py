"""What the master counts for its metrics, as pure code: the finished jobs
its workers report (protocols/reportpipe.py's outcome records), its
workers' exits by reason, and its reloads by result. The exporter
(resqued/exporter/) asks for it over the control socket (the ``metrics``
command) and renders it; nothing here knows Prometheus.

Counts only grow, for the life of the master (Prometheus takes a reset as
a restart). Label values come from the master's own config (pools), from
fixed sets (outcomes, reasons, results) or from records whose values the
report pipe bounds (queue and class names, reportpipe._is_outcome).
"""

from bisect import bisect_left
from dataclasses import dataclass, field

from resqued.exits import EXIT_OK, EXIT_RECYCLE_MEMORY
from resqued.protocols.reportpipe import JobOutcome
from resqued.supervise.states import Exit

# Seconds, the upper bounds of the histograms' buckets (+Inf follows): from
# a job of a few milliseconds to one of ten minutes.
BUCKETS = (.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

# Why a worker exited (resqued_worker_exits_total's ``reason``).
EXIT_REASONS = (
    "recycled_jobs",     # max_jobs reached: replaced
    "recycled_memory",   # max_memory passed between jobs: replaced
    "boot_failure",      # died before it reported for work, or soon after with an error
    "died_mid_job",      # died while running a job (its job is recovered: lost)
    "crashed",           # died otherwise (a signal from outside, an error exit)
    "exited",            # exited cleanly of its own accord (a QUIT or TERM sent to it alone)
    "stopped",           # the master stopped it (stop, reload, restart, TTOU, WINCH)
)
RELOAD_RESULTS = ("ok", "refused")


def exit_reason(verdict: Exit, code: int, *, mid_job: bool, announced: bool) -> str:
    """The reason resqued_worker_exits_total counts, from judge_exit's
    ``verdict`` on a worker's exit ``code``."""
    if verdict is Exit.STOPPED:
        return "stopped"
    if verdict is Exit.RECYCLED:
        return "recycled_memory" if code == EXIT_RECYCLE_MEMORY else "recycled_jobs"
    if verdict is Exit.BOOT_FAILURE:
        return "boot_failure"
    if mid_job:
        return "died_mid_job"
    return "exited" if code == EXIT_OK and announced else "crashed"


@dataclass
class Histogram:
    """Observations per bucket (not cumulative: the exporter sums them),
    the last one past every bound; their sum."""
    counts: list = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0

    def observe(self, value: float) -> None:
        # The first bucket whose bound is >= value (a bisection, not a walk:
        # two observations per job). NaN, which JSON lets through, goes
        # past every bound (the +Inf bucket), as the walk it replaces did.
        i = bisect_left(BUCKETS, value) if value == value else len(BUCKETS)
        self.counts[i] += 1
        self.total += value

    def to_json(self) -> dict:
        return {"counts": list(self.counts), "sum": self.total}


@dataclass
class Tally:
    jobs: dict = field(default_factory=dict)        # (queue, class, outcome) -> count
    durations: dict = field(default_factory=dict)   # queue -> Histogram of seconds run
    waits: dict = field(default_factory=dict)       # queue -> Histogram of seconds waited
    exits: dict = field(default_factory=dict)       # (pool, reason) -> count
    reloads: dict = field(default_factory=lambda: dict.fromkeys(RELOAD_RESULTS, 0))

    def add(self, record) -> None:
        """One outcome record, as reportpipe.decode checked it:
        [queue, class, outcome, duration s, wait s or None]."""
        queue, job_class, outcome, duration, wait = record
        key = (queue, job_class, outcome)
        self.jobs[key] = self.jobs.get(key, 0) + 1
        if outcome == JobOutcome.REQUEUED:
            return   # killed by a stop: its time says nothing of the job
        self._histogram(self.durations, queue).observe(duration)
        if wait is not None:
            self._histogram(self.waits, queue).observe(wait)

    def lost(self, queue: str, job_class: str) -> None:
        """A dead worker's job, settled by a recovery run."""
        key = (queue, job_class, JobOutcome.LOST.value)
        self.jobs[key] = self.jobs.get(key, 0) + 1

    def worker_exited(self, pool: str, reason: str) -> None:
        key = (pool, reason)
        self.exits[key] = self.exits.get(key, 0) + 1

    def reloaded(self, ok: bool) -> None:
        self.reloads["ok" if ok else "refused"] += 1

    @staticmethod
    def _histogram(table: dict, queue: str) -> Histogram:
        histogram = table.get(queue)
        if histogram is None:
            histogram = table[queue] = Histogram()
        return histogram

    def to_json(self, pools=()) -> dict:
        """The tally as the ``metrics`` answer carries it (controlsocket.MetricsTally).
        Each of ``pools`` (names) has every exit reason, at 0 until counted:
        a counter born at 1 shows no increase() for its first sample, so an
        alert on the first recycle or boot failure would never fire."""
        exits = {**{(pool, reason): 0 for pool in pools for reason in EXIT_REASONS}, **self.exits}
        return {"buckets": list(BUCKETS),
                "jobs": [[*key, count] for key, count in self.jobs.items()],
                "durations": {queue: h.to_json() for queue, h in self.durations.items()},
                "waits": {queue: h.to_json() for queue, h in self.waits.items()},
                "exits": [[*key, count] for key, count in exits.items()],
                "reloads": dict(self.reloads)}
