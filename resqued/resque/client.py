"""The library API: ``Resque(url, namespace)`` enqueues, dequeues and inspects.

Method names and semantics follow php-resque (``enqueue``, ``dequeue``,
``size``, ``queues``, ``removeQueue`` → ``remove_queue``) so that code ported
from PHP reads the same.
"""

import json
import math
import threading
import time

from resqued.redisio import direct
from resqued.jobs import events
from resqued.resque import wire
from resqued.config import sentinelurl
from resqued.config.redisurl import normalize_url, redact
from resqued.redisio.connection import at_once, connect
from resqued.resque import enqueuewait
from resqued.resque.delayed import Delayed
from resqued.resque.enqueuewait import CONNECT_WAIT_PLAIN, CONNECT_WAIT_SENTINEL
from resqued.resque.enqueuewait import NotReplicated  # noqa: F401 (part of the API)
from resqued.resque.failures import FailureBackend
from resqued.resque.keys import Keys, check_queue_name  # noqa: F401 (part of the API)
from resqued.numbers import whole_number



def _check_class(job_class) -> str:
    if not isinstance(job_class, str) or not job_class.strip():
        raise ValueError(f"invalid job class {job_class!r}: a non-empty string")
    return job_class


def _seconds(seconds) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        raise ValueError(f"invalid delay {seconds!r}: a number of seconds")
    return seconds


def _check_prefix(prefix) -> None:
    # "0" would be written but, PHP's empty("0") being true, name no prefix.
    if not isinstance(prefix, str) or prefix == "0":
        raise ValueError(f"invalid status prefix {prefix!r}: a string other than '0' ('' for none)")


class Resque:
    def __init__(self, url: str | None = None, namespace: str = "resque", *, db=None, redis=None,
                 connect_wait: float | None | str = "auto", wait_replicas: int = 0, wait_timeout: float = 1.0):
        """``connect_wait``: seconds each command may wait to connect before it
        raises ConnectionError; a command that reached the server is never
        sent again, and an error after sending raises at once (the command may
        have run). "auto": 30 s behind Sentinel (a failover), 3 s to a plain
        server (a restart). None: no waiting (resqued's workers: they ride
        outages themselves). Not used with ``redis`` (a client of yours).
        ``wait_replicas``: each enqueue then waits (Redis WAIT, in the same
        round trip) until that many replicas have it, at most ``wait_timeout``
        seconds, and raises NotReplicated if fewer did."""
        self.url = normalize_url(url, db)
        if connect_wait == "auto":
            connect_wait = CONNECT_WAIT_SENTINEL if sentinelurl.is_sentinel(self.url) else CONNECT_WAIT_PLAIN
        elif connect_wait is not None and (isinstance(connect_wait, bool) or not isinstance(connect_wait, (int, float))
                                           or not connect_wait >= 0):   # (NaN too)
            raise ValueError(f"invalid connect_wait {connect_wait!r}: seconds (>= 0), None or 'auto'")
        self.redis = redis if redis is not None else connect(self.url, connect_wait=connect_wait)
        self._wait = enqueuewait.commands(wait_replicas, wait_timeout)
        self.keys = Keys(namespace)
        self.failures = FailureBackend(self.redis, self.keys)
        self.delayed = Delayed(self.redis, self.keys)
        # enqueue's own connection for a few threads (direct.Held), unless the pool is small
        self._conns = (direct.PerThread(self.redis, threading.BoundedSemaphore(direct.HELD_PER_CLIENT))
                       if direct.may_hold(self.redis) else None)

    def __repr__(self):
        return f"<Resque {redact(self.url)} namespace={self.keys.namespace}>"

    def connect_ahead(self) -> None:
        """Connect the connection ``enqueue`` uses, now rather than on the first
        call (a job child's standby does, jobs/ownclient.py). One try: a
        Redis away now is the job's to wait for (connect_wait), not the standby's."""
        with at_once():
            if self._conns is not None and self._conns.held is not None:
                self._conns.held.take()
                return
            pool = self.redis.connection_pool
            pool.release(direct.connection(pool))   # connected, and left in the pool for the next call

    # -- enqueue -----------------------------------------------------------
    def enqueue(self, queue: str, job_class: str, args=None, track_status: bool = False, prefix: str = ""):
        """php-resque's ``Resque::enqueue``: ``args`` (a dict, a list or None)
        becomes the payload's single argument, which is what a PHP job reads
        as ``$this->args`` and a php-style Python job as ``self.args``.
        ``prefix``: php-resque 1.3's status prefix (its status is then
        ``job:<prefix>_<id>:status``; read it with ``status(id, prefix)``).
        Returns the job id, or None if a beforeEnqueue listener cancelled it."""
        if args is not None and not isinstance(args, (dict, list, tuple)):
            raise ValueError(f"job args must be a dict, a list or None, not {type(args).__name__}")
        return self._push(queue, job_class, [args], track_status, hook_args=args, prefix=prefix)

    def enqueue_call(self, queue: str, job_class: str, *args, track_status: bool = False, prefix: str = ""):
        """Ruby's ``Resque.enqueue(Klass, *args)``: the job is called with ``args``."""
        return self._push(queue, job_class, list(args), track_status, hook_args=list(args), prefix=prefix)

    def _push(self, queue, job_class, payload_args, track_status, hook_args, prefix=""):
        # hook_args is what enqueue listeners see: php's $args for enqueue, the
        # whole argument list for enqueue_call (even when it has one element).
        check_queue_name(queue)
        _check_class(job_class)
        _check_prefix(prefix)
        job_id = wire.new_job_id()
        try:
            events.trigger("beforeEnqueue", job_class, hook_args, queue, job_id)
        except events.DontCreate:
            return None
        try:
            # NaN/Infinity would be written as bare NaN, which PHP and Ruby cannot parse.
            encoded = wire.dumps(wire.payload(job_class, payload_args, job_id, prefix=prefix), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"job args for {job_class} are not JSON-serializable: {exc}") from None
        commands = [("SADD", self.keys.queues, queue)]
        if track_status:
            # Before the push, not after: a worker may take the job at once,
            # and a record written after its outcome would stay "waiting".
            commands.append(("SET", self.keys.status(job_id, prefix),
                             wire.status_record(wire.STATUS_WAITING, started=True)))
        commands.append(("RPUSH", self.keys.queue(queue), encoded))
        replies = direct.execute(self.redis, commands, held=self._conns and self._conns.held,  # one round trip
                                 then=self._wait)
        enqueuewait.check(self._wait, replies, [job_id])
        events.trigger("afterEnqueue", job_class, hook_args, queue, job_id)
        return job_id

    def enqueue_many(self, queue: str, job_class: str, args_list, track_status: bool = False,
                     batch: int = 1000, prefix: str = "") -> list:
        """Enqueue one job per element of ``args_list`` (each as ``enqueue``'s
        ``args``), ``batch`` jobs per RPUSH, in one round trip per batch.
        Returns the ids in order (None where a beforeEnqueue listener said DontCreate)."""
        check_queue_name(queue)
        _check_class(job_class)
        _check_prefix(prefix)
        hooks = events.has_listeners("beforeEnqueue") or events.has_listeners("afterEnqueue")
        ids, encoded, created = [], [], []
        for args in args_list:
            if args is not None and not isinstance(args, (dict, list, tuple)):
                raise ValueError(f"job args must be a dict, a list or None, not {type(args).__name__}")
            job_id = wire.new_job_id()
            if hooks:
                try:
                    events.trigger("beforeEnqueue", job_class, args, queue, job_id)
                except events.DontCreate:
                    ids.append(None)
                    continue
            try:
                encoded.append(wire.dumps(wire.payload(job_class, [args], job_id, prefix=prefix), allow_nan=False))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"job args for {job_class} are not JSON-serializable: {exc}") from None
            ids.append(job_id)
            created.append((args, job_id))
        status = wire.status_record(wire.STATUS_WAITING, started=True)
        for start in range(0, len(encoded), batch):
            pipe = self.redis.pipeline(transaction=False)
            pipe.sadd(self.keys.queues, queue)
            if track_status:   # before the push, as in enqueue
                for _, job_id in created[start:start + batch]:
                    pipe.set(self.keys.status(job_id, prefix), status)
            pipe.rpush(self.keys.queue(queue), *encoded[start:start + batch])
            for command in self._wait:   # on the pipeline's connection: WAIT counts its own writes
                pipe.execute_command(*command)
            enqueuewait.check(self._wait, pipe.execute(), [job_id for _, job_id in created[start:start + batch]])
        if hooks:
            for args, job_id in created:
                events.trigger("afterEnqueue", job_class, args, queue, job_id)
        return ids

    def push_payload(self, queue: str, payload: dict) -> None:
        """Put an already-built payload on a queue (used to requeue)."""
        check_queue_name(queue)
        pipe = self.redis.pipeline(transaction=False)
        pipe.sadd(self.keys.queues, queue)
        pipe.rpush(self.keys.queue(queue), wire.dumps(payload))
        pipe.execute()

    # -- delayed jobs, in resque-scheduler's keys (resque/delayed.py) --------
    def enqueue_at(self, when, queue: str, job_class: str, args=None) -> int:
        """php-resque-scheduler's ``enqueueAt``: run the job (``args`` as
        ``enqueue``'s) once ``when`` (epoch seconds or a datetime, truncated
        to whole seconds as Ruby and PHP do) has come; a scheduler moves it
        to ``queue`` then. Returns the timestamp it waits under."""
        if args is not None and not isinstance(args, (dict, list, tuple)):
            raise ValueError(f"job args must be a dict, a list or None, not {type(args).__name__}")
        return self.delayed.push(when, queue, job_class, [args])

    def enqueue_at_call(self, when, queue: str, job_class: str, *args) -> int:
        """Ruby's ``Resque.enqueue_at_with_queue(queue, when, Klass, *args)``."""
        return self.delayed.push(when, queue, job_class, list(args))

    def enqueue_in(self, seconds: float, queue: str, job_class: str, args=None) -> int:
        return self.enqueue_at(time.time() + _seconds(seconds), queue, job_class, args)

    def enqueue_in_call(self, seconds: float, queue: str, job_class: str, *args) -> int:
        return self.enqueue_at_call(time.time() + _seconds(seconds), queue, job_class, *args)

    def remove_delayed(self, queue: str, job_class: str, args=None, at=None) -> int:
        """Remove the delayed jobs ``enqueue_at(…, queue, job_class, args)``
        made (or PHP's, or Ruby's with these args), at ``at`` only if given;
        returns how many."""
        return self.delayed.remove(queue, job_class, [args], at)

    def remove_delayed_call(self, queue: str, job_class: str, *args, at=None) -> int:
        return self.delayed.remove(queue, job_class, list(args), at)

    def remove_delayed_at(self, when, queue: str, job_class: str, args=None) -> int:
        return self.delayed.remove(queue, job_class, [args], when)

    def delayed_count(self) -> int:
        """Delayed jobs waiting, in every timestamp."""
        return self.delayed.count()

    def delayed_timestamps(self, start: int = 0, count: int = 100) -> list[tuple[int, int]]:
        """``(timestamp, jobs)`` of the schedule, earliest first."""
        return self.delayed.timestamps(start, count)

    def delayed_at(self, when, start: int = 0, count: int = 100) -> list[dict]:
        """The jobs waiting at a timestamp, decoded, left in place."""
        return self.delayed.at(when, start, count)

    def next_delayed_timestamp(self, at_time=None) -> int | None:
        """The earliest timestamp due by ``at_time`` (default now), or None."""
        return self.delayed.next_timestamp(at_time)

    # -- dequeue -----------------------------------------------------------
    def dequeue(self, queue: str, items=None) -> int:
        """php-resque's ``Resque::dequeue``. ``items`` is a list whose elements are
        a class name (every job of that class), ``{class: id}`` (that job) or
        ``{class: args}`` (jobs of that class with exactly these args). With no
        items the whole queue is emptied. Returns how many jobs were removed.

        Unlike php-resque the queue is never emptied while this runs: matches
        are removed one by one with LREM, so concurrent workers and enqueuers
        lose nothing."""
        key = self.keys.queue(check_queue_name(queue))
        if isinstance(items, str):
            items = [items]
        elif isinstance(items, dict):
            # php's associative array ['Class' => id-or-args, ...]. Iterating the
            # dict would yield bare class names and remove every job of the class.
            items = [{job_class: spec} for job_class, spec in items.items()]
        if not items:
            pipe = self.redis.pipeline(transaction=True)
            pipe.llen(key)
            pipe.delete(key)
            return pipe.execute()[0]
        matchers = [_matcher(item) for item in items]
        removed, start, page = 0, 0, 1000
        while True:
            chunk = self.redis.lrange(key, start, start + page - 1)
            if not chunk:
                return removed
            kept = 0
            for raw in chunk:
                try:
                    payload = json.loads(raw)
                except ValueError:
                    payload = None
                if isinstance(payload, dict) and any(match(payload) for match in matchers):
                    removed += self.redis.lrem(key, 1, raw)
                else:
                    kept += 1
            start += kept

    # -- queues ------------------------------------------------------------
    def queues(self) -> list[str]:
        return sorted(q.decode() for q in self.redis.smembers(self.keys.queues))

    def size(self, queue: str) -> int:
        return self.redis.llen(self.keys.queue(queue))

    def peek(self, queue: str, start: int = 0, count: int = 1) -> list:
        """Payloads waiting in ``queue``, oldest first, without removing them."""
        raws = self.redis.lrange(self.keys.queue(queue), start, start + count - 1)
        result = []
        for raw in raws:
            try:
                result.append(wire.decode_payload(raw))
            except wire.InvalidPayload:
                result.append(wire.raw_payload_record(raw))
        return result

    def remove_queue(self, queue: str) -> int:
        """php-resque's ``removeQueue``: delete the jobs and forget the name."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.llen(self.keys.queue(queue))
        pipe.delete(self.keys.queue(queue))
        pipe.srem(self.keys.queues, queue)
        return pipe.execute()[0]

    # -- job status --------------------------------------------------------
    def status(self, job_id: str, prefix: str = "") -> dict | None:
        """``{"status": "running", "code": 2, "updated": …}`` for a tracked job,
        or None if the job is not tracked (or its status has expired). The
        record's other fields come too (php-resque's ``started``, ``result``).
        ``prefix``: the job's status prefix, as given to php-resque 1.3's
        ``Resque::enqueue`` (or ``enqueue``'s)."""
        raw = self.redis.get(self.keys.status(job_id, prefix))
        if raw is None:
            return None
        try:
            record = json.loads(raw)
            code = int(record["status"])
        except (ValueError, KeyError, TypeError):
            return {"status": "unknown", "code": None, "raw": raw.decode(errors="replace")}
        return {"status": wire.STATUS_NAMES.get(code, "unknown"), "code": code, **{
            k: v for k, v in record.items() if k != "status"}}

    def stop_tracking(self, job_id: str, prefix: str = "") -> bool:
        """php-resque's ``Resque_Job_Status::stop``: forget the job's status."""
        return bool(self.redis.delete(self.keys.status(job_id, prefix)))

    # -- workers and stats -------------------------------------------------
    def worker_ids(self) -> list[str]:
        return sorted(w.decode() for w in self.redis.smembers(self.keys.workers))

    def workers(self) -> list[dict]:
        """Every registered worker and what it does, as Redis shows it:
        ``state`` busy (it has a working-on record), paused (a resqued
        worker that takes no jobs; Resque keeps no record of a pause) or
        idle, and ``since`` when it took its job or paused. Times are UTC
        ISO 8601 (None when unreadable); ``job`` is the working-on record as
        stored, its ``run_at`` in its writer's format."""
        ids = self.worker_ids()
        if not ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for worker_id in ids:
            pipe.get(self.keys.worker(worker_id))
            pipe.get(self.keys.worker_started(worker_id))
            pipe.get(self.keys.worker_processed(worker_id))
            pipe.get(self.keys.worker_failed(worker_id))
        pipe.hgetall(self.keys.heartbeats)
        pipe.hgetall(self.keys.paused_workers)
        replies = pipe.execute()
        heartbeats, paused = ({k.decode(): v.decode(errors="replace") for k, v in reply.items()}
                              for reply in replies[-2:])
        result = []
        for i, worker_id in enumerate(ids):
            working, started, processed, failed = replies[4 * i:4 * i + 4]
            host, pid, queues = (worker_id.split(":", 2) + ["", ""])[:3]
            job, state, since = None, "idle", None
            if working:
                state = "busy"
                try:
                    job = json.loads(working)
                except ValueError:
                    job = {"raw": working.decode(errors="replace")}
                since = wire.parse_time(job.get("run_at")) if isinstance(job, dict) else None
            elif worker_id in paused:
                state, since = "paused", wire.parse_time(paused[worker_id])
            result.append({
                "id": worker_id, "host": host, "pid": whole_number(pid),
                "queues": queues.split(","), "state": state, "since": wire.utc_iso(since),
                "job": job, "started": wire.utc_iso(wire.parse_time(started)),
                "heartbeat": wire.utc_iso(wire.parse_time(heartbeats.get(worker_id))),
                "processed": whole_number(processed) or 0, "failed": whole_number(failed) or 0,
            })
        return result

    def inflight(self) -> list[dict]:
        """The jobs resqued workers have reserved and not yet settled (their
        in-flight lists, found by SCAN), by worker and queue, each with its
        worker and whether that worker is ``alive``: registered, and its
        last heartbeat within five of its intervals (what a pruner allows)."""
        keys = sorted(set(self.redis.scan_iter(match=self.keys.inflight_pattern(), count=1000)))
        if not keys:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.lrange(key, 0, -1)
        pipe.smembers(self.keys.workers)
        pipe.hgetall(self.keys.heartbeats)
        pipe.hgetall(self.keys.heartbeat_intervals)
        pipe.time()
        # A key of another type under the pattern (someone's own) is skipped, not fatal.
        *lists, members, beats, intervals, (seconds, micros) = pipe.execute(raise_on_error=False)
        members = {m.decode(errors="replace") for m in members}
        beats = {k.decode(errors="replace"): wire.parse_time(v) for k, v in beats.items()}
        intervals = {k.decode(errors="replace"): wire.parse_interval(v) for k, v in intervals.items()}
        now = seconds + micros / 1e6
        result = []
        for key, raws in zip(keys, lists):
            if isinstance(raws, Exception):
                continue
            worker_id, queue = self.keys.inflight_owner(key)
            beat = beats.get(worker_id)
            interval = intervals.get(worker_id, wire.HEARTBEAT_INTERVAL)
            beating = beat is not None and now - beat <= wire.PRUNE_BEATS * interval
            for raw in raws:
                try:
                    payload = wire.decode_payload(raw)
                except wire.InvalidPayload:
                    payload = wire.raw_payload_record(raw)
                result.append({"worker": worker_id, "queue": queue, "id": payload.get("id"),
                               "class": payload.get("class"), "args": payload.get("args"),
                               "registered": worker_id in members, "heartbeat": wire.utc_iso(beat),
                               "alive": worker_id in members and beating})
        return result

    def stats(self) -> dict:
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self.keys.processed)
        pipe.get(self.keys.failed_count)
        pipe.smembers(self.keys.queues)
        pipe.scard(self.keys.workers)
        pipe.llen(self.keys.failed)
        processed, failed, queues, workers, failures = pipe.execute()
        names = sorted(q.decode() for q in queues)
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.llen(self.keys.queue(name))
        sizes = dict(zip(names, pipe.execute()))
        return {"processed": whole_number(processed) or 0, "failed": whole_number(failed) or 0,
                "pending": sum(sizes.values()), "queues": sizes, "workers": workers,
                "failures": failures}


def _matcher(item):
    """A predicate on decoded payloads for one ``dequeue`` item."""
    if isinstance(item, str):
        return lambda payload: payload.get("class") == item
    if isinstance(item, dict) and len(item) == 1:
        (job_class, spec), = item.items()
        if isinstance(spec, str):
            return lambda payload: payload.get("class") == job_class and payload.get("id") == spec
        # php-resque compares only the values of the args (so {"a":1} matched
        # {"b":1}); we compare the whole argument, in its JSON form (a tuple
        # spec must match the list it was stored as).
        try:
            spec = json.loads(wire.dumps(spec, allow_nan=False))
        except (TypeError, ValueError):
            raise ValueError(f"dequeue item {item!r}: args are not JSON-serializable") from None
        return lambda payload: payload.get("class") == job_class and payload.get("args") == [spec]
    raise ValueError(f"dequeue item {item!r}: a class name, or {{class: id}}, or {{class: args}}")
