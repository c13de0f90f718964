"""What a scrape answers: prometheus_client's custom collector over the
master's part (masterside) and Redis's (redisside), read afresh at each
scrape. The series and their meaning: docs/metrics.md.

A custom collector, not prometheus_client's multiprocess mode: the counts
are kept by the master, which already hears of each finished job from its
workers (protocols/reportpipe.py); the multiprocess mode would leave a file
per worker pid (workers are recycled), to be merged at each scrape.
"""

import math
import threading

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from resqued.exporter.redisside import latency
from resqued.process.memory import tree_memory
from resqued.protocols.reportpipe import WorkerState

WORKER_STATES = tuple(state.value for state in WorkerState)
MEMORY_REFRESH = 10.0   # seconds between two measures of the workers' memory


class MemoryWatch:
    """Each pool's workers' memory (PSS, process/memory.tree_memory), measured
    in a thread of its own at most every MEMORY_REFRESH seconds: a measure
    reads /proc/PID/smaps_rollup of each worker's processes, 1-2 ms a worker,
    which a scrape of 64 workers must not wait for. A scrape hands it the
    workers it heard of and takes the last figures."""

    def __init__(self, every: float = MEMORY_REFRESH):
        self.every = every
        self._workers = {}     # pool -> [[pid, state, job child's pid or None]]
        self._figures = {}     # pool -> bytes, from the last measure
        self._lock = threading.Lock()
        self._wake = threading.Event()
        threading.Thread(target=self._run, name="memory", daemon=True).start()

    def figures(self, pools) -> dict:
        with self._lock:
            first = not self._workers
            self._workers = {pool["name"]: list(pool["workers"]) for pool in pools}
            figures = dict(self._figures)
        if first:
            self._wake.set()   # the first scrape: measure now, not in MEMORY_REFRESH
        return figures

    def _run(self) -> None:
        while True:
            self._wake.wait(self.every)
            self._wake.clear()
            with self._lock:
                workers = dict(self._workers)
            figures = {pool: sum(tree_memory(pid, exclude={child} if child else ()) for pid, _, child in found)
                       for pool, found in workers.items()}
            with self._lock:
                self._figures = figures


class SingleFlight:
    """Concurrent calls of ``run`` share one call of ``work``: the first
    runs it, those that come while it runs wait for its result."""

    def __init__(self):
        self._lock = threading.Lock()
        self._flight = None   # [done Event, result, exception] of the call running now

    def run(self, work):
        with self._lock:
            flight, leader = self._flight, self._flight is None
            if leader:
                flight = self._flight = [threading.Event(), None, None]
        if not leader:
            flight[0].wait()
            if flight[2] is not None:
                raise flight[2]
            return flight[1]
        try:
            flight[1] = work()
        except Exception as exc:
            flight[2] = exc
            raise
        finally:
            with self._lock:
                self._flight = None
            flight[0].set()
        return flight[1]


class ResquedCollector:
    def __init__(self, master_side, redis_side, memory: MemoryWatch | None = None):
        self.master_side = master_side
        self.redis_side = redis_side
        self.memory = memory or MemoryWatch()
        self._flight = SingleFlight()

    def collect(self):
        # Scrapes that come together (two Prometheis, a retry) share one
        # read of Redis and of the master, rather than stacking them up.
        return iter(self._flight.run(lambda: list(self._collect())))

    def _collect(self):
        master = self.master_side.read()
        redis = self.redis_side.read()
        yield gauge("resqued_up", "1 when the master answered this scrape, else 0", value=int(master is not None))
        yield gauge("resqued_redis_up", "1 when Redis answered this scrape, else 0", value=int(redis.up))
        if redis.up:
            yield from redis_families(redis)
        if master is not None:
            yield from master_families(master, self.memory.figures(master["pools"]))

    def describe(self):
        return []   # read at each scrape: nothing to say ahead


def gauge(name, documentation, labels=(), value=None):
    family = GaugeMetricFamily(name, documentation, labels=list(labels) or None)
    if value is not None:
        family.add_metric([], value)
    return family


def redis_families(redis):
    length = gauge("resqued_queue_length", "jobs waiting in the queue", ["queue"])
    age = gauge("resqued_queue_latency_seconds",
                "how long the oldest job of the queue has waited (0: empty; absent: its head has no queue_time)",
                ["queue"])
    for name, figures in redis.queues.items():
        length.add_metric([name], figures.length)
        seconds = latency(figures)
        if seconds is not None:
            age.add_metric([name], seconds)
    yield length
    yield age
    yield gauge("resqued_failed_jobs", "entries in the failed list", value=redis.failed)
    yield gauge("resqued_workers_registered", "workers registered in Redis, every host and kind",
                value=redis.workers)


def master_families(master, memory_figures: dict):
    tally = master["tally"]
    jobs = CounterMetricFamily("resqued_jobs", "jobs finished, by how they ended", labels=["queue", "class", "outcome"])
    for queue, job_class, outcome, count in tally["jobs"]:
        jobs.add_metric([queue, job_class, outcome], count)
    yield jobs
    bounds = [*(format_bound(b) for b in tally["buckets"]), "+Inf"]
    for name, key, documentation in (
            ("resqued_job_duration_seconds", "durations", "seconds jobs ran"),
            ("resqued_job_wait_seconds", "waits", "seconds jobs waited in their queue (pickup minus queue_time)")):
        family = HistogramMetricFamily(name, documentation, labels=["queue"])
        for queue, histogram in tally[key].items():
            family.add_metric([queue], cumulative(bounds, histogram["counts"]), histogram["sum"])
        yield family
    exits = CounterMetricFamily("resqued_worker_exits", "workers that exited, by why", labels=["pool", "reason"])
    for pool, reason, count in tally["exits"]:
        exits.add_metric([pool, reason], count)
    yield exits
    reloads = CounterMetricFamily("resqued_reloads", "config reloads, by result", labels=["result"])
    for result, count in tally["reloads"].items():
        reloads.add_metric([result], count)
    yield reloads
    workers = gauge("resqued_workers", "the master's workers, by pool and state", ["pool", "state"])
    memory = gauge("resqued_worker_memory_bytes", "memory (PSS) of the pool's workers' own processes, job "
                   f"children aside, measured every {MEMORY_REFRESH:g} s", ["pool"])
    failed = gauge("resqued_pool_failed", "1 when the pool is FAILED (its workers kept dying at boot)", ["pool"])
    for pool in master["pools"]:
        states = dict.fromkeys(WORKER_STATES, 0)
        for _, state, _ in pool["workers"]:
            states[state] = states.get(state, 0) + 1
        for state, count in states.items():
            workers.add_metric([pool["name"], state], count)
        if pool["name"] in memory_figures:
            memory.add_metric([pool["name"]], memory_figures[pool["name"]])
        failed.add_metric([pool["name"]], int(pool["failed"]))
    yield from (workers, memory, failed)


def format_bound(bound: float) -> str:
    """As prometheus_client's own histograms write ``le``: 0.005, 1.0, 600.0."""
    return repr(float(bound)) if math.isfinite(bound) else "+Inf"


def cumulative(bounds, counts) -> list:
    """Per-bucket counts (the master's) as Prometheus's cumulative buckets."""
    total, buckets = 0, []
    for bound, count in zip(bounds, counts):
        total += count
        buckets.append((bound, total))
    return buckets
