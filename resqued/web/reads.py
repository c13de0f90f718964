"""What the dashboard's pages show, read from Redis a page at a time: one
pipeline per page, windows of lists (LRANGE), never KEYS, so that a page
costs the same with 100,000 failures and 1,000 queues as with ten."""

import hashlib
import json
import time

from resqued.resque import queuestats, wire
from resqued.resque.failures import FailureEntry, FailureError, id_needle
from resqued.resque.rates import Rates
from resqued.fleet import paused

PAGE = 50
# How far the job page looks through waiting jobs for an id before it says
# it stopped looking (a queue is not indexed by id).
QUEUE_SCAN_BUDGET = 50_000
SCAN_CHUNK = 1000


def page_window(start, total: int, size: int = PAGE) -> dict:
    """The page that begins at ``start`` (clamped), with its neighbours' starts."""
    try:
        start = max(0, int(start or 0))
    except ValueError:
        start = 0
    start = min(start, max(0, total - 1))
    last = max(0, (total - 1) // size * size)
    return {"start": start, "size": size, "total": total, "end": min(total, start + size),
            "prev": max(0, start - size) if start > 0 else None,
            "next": start + size if start + size < total else None, "last": last}


def digest(raw: bytes) -> str:
    """A failure entry's fingerprint: an action that names an entry by its
    index checks it, so a shifted list never makes it act on a neighbour."""
    return hashlib.sha256(raw).hexdigest()[:20]


def failure_ref(entry) -> str:
    """How a form names a failure entry: by its job id (every entry of the
    job, as resquectl names it), else by its index and digest."""
    if entry.job_id is not None and str(entry.job_id) != "":
        return f"id:{entry.job_id}"
    return f"at:{entry['index']}:{digest(entry.raw)}"


def payload_of(raw) -> dict:
    """A waiting job's payload as a page shows it: one resqued would not
    run (an id that is a number, php-resque's choice) is still shown as
    it is; only one that is no JSON object is shown raw."""
    try:
        return wire.decode_payload(raw)
    except wire.InvalidPayload:
        payload = _job_payload(raw)
        return payload if payload is not None else wire.raw_payload_record(raw)


def age(queue_time, now: float):
    """Seconds since ``queue_time`` (a payload's), None when it has none (Ruby's)."""
    if isinstance(queue_time, (int, float)) and not isinstance(queue_time, bool):
        return max(0.0, now - queue_time)
    return None


class Reads:
    def __init__(self, resque):
        self.resque = resque
        self.redis = resque.redis
        self.keys = resque.keys
        self.rates = Rates()

    def totals(self) -> dict:
        stats = queuestats.read(self.redis, self.keys, queues=())
        return {"processed": stats.processed, "failed": stats.failed, "queues": stats.queue_count,
                "workers": stats.workers, "failures": stats.failures, "paused": stats.paused,
                "paused_queues": paused.paused_queues(self.redis, self.keys.namespace),
                "rates": self.rates.add(stats.time, stats.processed, stats.failed)}

    # -- queues -----------------------------------------------------------------
    def queue_names(self) -> list[str]:
        return queuestats.queue_names(self.redis, self.keys)

    def queue_rows(self, names) -> list[dict]:
        """Length and latency (age of the oldest job, by its queue_time) of
        each queue named, as every reader reads them (resque/queuestats.py);
        a key that is not a list has its ``error`` instead."""
        return [_row(q) for q in queuestats.read(self.redis, self.keys, queues=names).queues]

    def busiest_queues(self, limit: int = 20) -> tuple[list[dict], int]:
        """The longest queues with their latency (one pipeline for all the
        queues), then those that cannot be read, and how many there are."""
        figures = queuestats.read(self.redis, self.keys).queues
        ranked = sorted(figures, key=lambda q: (q.error is not None, -q.length, q.name))
        return [_row(q) for q in ranked[:limit]], len(figures)

    def queue_page(self, name: str, start) -> dict:
        [figures] = queuestats.read(self.redis, self.keys, queues=[name]).queues
        window = page_window(start, figures.length)
        raws = [] if figures.error else self.redis.lrange(self.keys.queue(name), window["start"],
                                                          window["start"] + PAGE - 1)
        now = time.time()
        jobs = []
        for i, raw in enumerate(raws):
            payload = payload_of(raw)
            jobs.append({"index": window["start"] + i, "payload": payload, "age": age(payload.get("queue_time"), now)})
        return {"window": window, "jobs": jobs, "known": self.redis.sismember(self.keys.queues, name),
                "error": figures.error}

    # -- workers ----------------------------------------------------------------
    def workers_by_host(self) -> dict:
        """host -> its workers (resque.workers(): every registered worker,
        PHP's and Ruby's too), each marked resqued or not (resqued workers
        publish their heartbeat interval), with its job's age."""
        workers = self.resque.workers()
        ours = {k.decode(errors="replace") for k in self.redis.hkeys(self.keys.heartbeat_intervals)}
        hosts = {}
        for worker in workers:
            worker["resqued"] = worker["id"] in ours
            job = worker.get("job") if isinstance(worker.get("job"), dict) else {}
            payload = job.get("payload") if isinstance(job.get("payload"), dict) else {}
            worker["job_class"], worker["job_id"] = payload.get("class"), payload.get("id")
            worker["job_queue"] = job.get("queue")
            hosts.setdefault(worker["host"], []).append(worker)
        return dict(sorted(hosts.items()))

    # -- failures ---------------------------------------------------------------
    def failed_page(self, start) -> dict:
        failures = self.resque.failures
        window = page_window(start, failures.count())
        return {"window": window, "entries": failures.all(window["start"], PAGE)}

    def failure_at(self, index: int) -> FailureEntry | None:
        try:
            return self.resque.failures.get(index)
        except FailureError:
            return None

    # -- one job ----------------------------------------------------------------
    def locate_job(self, job_id: str, prefix: str = "") -> dict:
        """Where job ``job_id`` is: its tracked status, the workers running
        it, the in-flight lists holding it otherwise, its failure entries, and the queues it waits in (looked for in at
        most QUEUE_SCAN_BUDGET waiting jobs)."""
        # Most waiting jobs are not this one: look for its id before decoding.
        needle = id_needle(job_id)
        running = [w for w in self.resque.workers()
                   if isinstance(w.get("job"), dict) and isinstance(w["job"].get("payload"), dict)
                   and str(w["job"]["payload"].get("id")) == job_id]
        failed = self.resque.failures.find(job_id)
        # Taken off its queue and not settled, and no worker shows it running:
        # between take and start, or left by a worker that died (recovery
        # puts it back). Found by SCAN of the in-flight lists.
        held = [i for i in self.resque.inflight() if str(i["id"]) == job_id
                and not any(w["id"] == i["worker"] for w in running)]
        queued, scanned, complete = [], 0, True
        figures = queuestats.read(self.redis, self.keys).queues
        unreadable = [{"queue": q.name, "error": q.error} for q in figures if q.error]
        for name in (q.name for q in figures if not q.error and q.length):
            key, start = self.keys.queue(name), 0
            while raws := self.redis.lrange(key, start, start + SCAN_CHUNK - 1):
                for i, raw in enumerate(raws):
                    payload = _job_payload(raw) if needle in raw else None
                    # php-resque lets the caller choose an id, which JSON may hold as a number.
                    if payload is not None and str(payload.get("id")) == job_id:
                        queued.append({"queue": name, "index": start + i, "payload": payload})
                start += len(raws)
                scanned += len(raws)
                if scanned >= QUEUE_SCAN_BUDGET:
                    complete = False
                    break
            if not complete:
                break
        return {"id": job_id, "prefix": prefix, "status": self.resque.status(job_id, prefix),
                "running": running, "held": held, "failed": failed, "queued": queued, "scanned": scanned,
                "scan_complete": complete, "unreadable": unreadable}

    # -- stats ------------------------------------------------------------------
    def stats(self) -> dict:
        """Resque's counters, and the jobs waiting in every queue (those
        that cannot be read, named)."""
        stats = queuestats.read(self.redis, self.keys)
        return {"processed": stats.processed, "failed": stats.failed, "failures": stats.failures,
                "workers": stats.workers, "queue_count": stats.queue_count,
                "pending": sum(q.length for q in stats.queues),
                "unreadable": [{"queue": q.name, "error": q.error} for q in stats.queues if q.error]}

    def server_info(self) -> dict:
        info = self.redis.info()
        return {key: info.get(key) for key in ("redis_version", "uptime_in_seconds", "connected_clients",
                                               "used_memory_human", "used_memory_peak_human", "maxmemory_human",
                                               "maxmemory_policy", "role")}


def _row(q) -> dict:
    return {"name": q.name, "length": q.length, "latency": q.latency, "error": q.error,
            "unknown_latency": q.length > 0 and q.latency is None and q.error is None}


def _job_payload(raw) -> dict | None:
    """A waiting job's payload, leniently: a job whose id is a number
    (php-resque lets the caller choose it) is still found; not JSON or not
    an object, None."""
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return payload if isinstance(payload, dict) else None
