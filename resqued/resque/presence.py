"""A worker's presence in Redis, in Resque's format: registration, heartbeat,
unregistration, and pruning the registrations of workers that died.

resque-web lists what is in ``workers``; Ruby workers prune any registration
whose heartbeat is over 5 minutes old. So we beat (every 60 s by default) and
prune at start and then once per heartbeat interval, but a dead resqued
worker's in-flight job is recovered (requeued, or failed per on_lost), and a
dead foreign worker's job is recorded as failed (Ruby loses it when the
heartbeat is missing, php-resque always loses it) unless its status says it
finished.

Each worker is judged by its own heartbeat: resqued workers publish their
interval (in resqued's own hash), and any other worker is judged by Resque's
60 s, so a short ``heartbeat_interval`` here never prunes a live Ruby worker.
On this host a worker whose pid is still a worker is never pruned, whatever
its heartbeat: it is stopped, not dead, and its job still runs.

Two turns, two locks. Foreign workers are pruned under Ruby's prune lock, as
Ruby prunes. Dead resqued workers are settled under resqued's own lock, which
no pruner holds for longer than the shortest interval among resqued pruners:
Ruby's lock may be held for a minute by any 60 s worker, which would hold a
short-interval fleet's recovery up by as much. Ruby's pruners know nothing of
in-flight lists, so the resqued turn also settles the lists of resqued workers
that stayed unregistered and silent for five of their intervals.
"""

import json
import logging
import time

import redis

from resqued.resque import wire
from resqued.resque.localpids import LocalPid
from resqued.resque.wire import HEARTBEAT_INTERVAL, PRUNE_BEATS
from resqued.resque.outcome import DIRTY_EXIT, PRUNED_DIRTY_EXIT, Failure, add_outcome
from resqued.numbers import whole_number

log = logging.getLogger("resqued.resque")

PRUNE_LOCK_SECONDS = 60


def split_worker_id(worker_id: str):
    host, _, rest = worker_id.partition(":")
    pid, _, queues = rest.partition(":")
    return host, whole_number(pid), queues


def redis_time(client) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


def unregister_commands(pipe, keys, worker_id: str) -> None:
    # Ruby Resque's order, as one pipeline.
    pipe.srem(keys.workers, worker_id)
    pipe.delete(keys.worker(worker_id))
    pipe.delete(keys.worker_started(worker_id))
    pipe.hdel(keys.heartbeats, worker_id)
    pipe.delete(keys.worker_processed(worker_id))
    pipe.delete(keys.worker_failed(worker_id))
    pipe.hdel(keys.heartbeat_intervals, worker_id)
    pipe.hdel(keys.vanished, worker_id)
    pipe.hdel(keys.paused_workers, worker_id)


# KEYS: resqued's settle lock. ARGV: the pruner's id, its heartbeat interval (ms).
# Taken unless a pruner with an interval no longer than ours holds it: a slow
# pruner's turn is cut short by a faster one, never the reverse.
_TAKE_SETTLE_TURN = """
local left = redis.call('PTTL', KEYS[1])
if left >= 0 and left <= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


def pid_owners(worker_ids, hostname: str, beats: dict) -> dict:
    """pid -> the id of the registration on this host that owns it. Two
    registrations that claim one pid (a dead worker's pid taken by a new
    worker with other queues, after a reboot say) give it to the one that
    beat last: the other is dead, whatever the process table says."""
    owners = {}
    for worker_id in sorted(worker_ids):
        host, pid, _ = split_worker_id(worker_id)
        if host == hostname and pid is not None:
            rival = owners.get(pid)
            if rival is None or (beats.get(worker_id) or 0) > (beats.get(rival) or 0):
                owners[pid] = worker_id
    return owners


class WorkingOn:
    """A worker's working-on record (``<ns>:worker:<id>``), as Ruby, PHP
    and resqued write it."""

    def __init__(self, raw):
        try:
            record = json.loads(raw)
            self.payload, self.queue = record.get("payload"), record.get("queue", "")
            self.run_at = wire.parse_run_at(record.get("run_at"))
        except (ValueError, AttributeError):
            self.payload, self.queue, self.run_at = wire.raw_payload_record(raw), "", None
        payload = self.payload if isinstance(self.payload, dict) else {}
        self.job_class = payload.get("class")
        job_id = payload.get("id")
        self.id = job_id if isinstance(job_id, str) and job_id else None
        self.label = self.id or "(no id)"


def _finished_since(status_raw, run_at: float | None) -> bool:
    """Does a job status say the job ended (failed or complete) at or after
    it started on the dead worker? (Without a readable ``run_at`` a final
    status is believed.)"""
    try:
        status = json.loads(status_raw) if status_raw else None
        code, updated = status["status"], status["updated"]
    except (ValueError, TypeError, KeyError):
        return False
    if code not in (wire.STATUS_FAILED, wire.STATUS_COMPLETE):
        return False
    return run_at is None or (isinstance(updated, (int, float)) and updated >= int(run_at))


class Registration:
    def __init__(self, client, keys, worker_id: str, hostname: str,
                 heartbeat_interval: float = HEARTBEAT_INTERVAL, recovery=None):
        self.client = client
        self.keys = keys
        self.worker_id = worker_id
        self.hostname = hostname
        self.heartbeat_interval = heartbeat_interval
        self.last_beat = 0.0
        self.recovery = recovery
        self.marked_paused = False   # our entry in <ns>:resqued:paused (mark_paused)
        self._take_settle_turn = client.register_script(_TAKE_SETTLE_TURN)
        self._stopped_noted = set()   # stale workers left alone, warned about once (_note_stopped)

    def register(self, recover_own: bool = True) -> None:
        """``recover_own``: settle what a dead worker with our id left in our
        in-flight lists; only at start. A worker registering again after an
        outage reclaims its own lists itself (see reserve.py): it knows
        their jobs never ran."""
        self.client.hdel(self.keys.heartbeats, self.worker_id)
        if recover_own and self.recovery is not None:
            # A worker that had our id (same host, pid and queues) died with a job.
            self.recovery.recover(self.worker_id, f"worker {self.worker_id} died while processing it",
                                  live_name=True)
        self.prune_if_due()
        self.heartbeat()
        pipe = self.client.pipeline(transaction=False)
        pipe.sadd(self.keys.workers, self.worker_id)
        pipe.set(self.keys.worker_started(self.worker_id), wire.started_time())
        pipe.hset(self.keys.heartbeat_intervals, self.worker_id, repr(float(self.heartbeat_interval)))
        pipe.hdel(self.keys.paused_workers, self.worker_id)   # a worker that paused is marked again
        pipe.execute()
        self.marked_paused = False

    def prune_if_due(self) -> None:
        """Prune, if no other worker has lately: dead resqued workers if it
        is our turn under resqued's lock, foreign ones if Ruby's lock is
        free (see the module's docstring)."""
        turn_ms = max(1000, int(self.heartbeat_interval * 1000))
        resqued = bool(self._take_settle_turn(keys=[self.keys.settle_lock], args=[self.worker_id, turn_ms]))
        # Ruby holds its lock 60 s; a shorter heartbeat prunes foreign workers sooner.
        seconds = max(1, int(min(PRUNE_LOCK_SECONDS, self.heartbeat_interval)))
        foreign = bool(self.client.set(self.keys.prune_lock, self.worker_id, nx=True, ex=seconds))
        if resqued or foreign:
            self.prune_dead_workers(resqued=resqued, foreign=foreign)

    def heartbeat(self) -> None:
        now = redis_time(self.client)
        self.client.hset(self.keys.heartbeats, self.worker_id, wire.heartbeat_time(now))
        self.last_beat = time.monotonic()

    def heartbeat_due_in(self) -> float:
        return max(0.0, self.last_beat + self.heartbeat_interval - time.monotonic())

    def mark_paused(self, paused: bool) -> bool:
        """Say in Redis whether we take jobs, for ``resquectl workers``
        (Resque keeps no such record: a paused worker looks idle to it).
        Written on a change only; True, for RedisOutage.retry."""
        if paused != self.marked_paused:
            if paused:
                self.client.hset(self.keys.paused_workers, self.worker_id, wire.run_at_time())
            else:
                self.client.hdel(self.keys.paused_workers, self.worker_id)
            self.marked_paused = paused
        return True

    def unregister(self) -> None:
        pipe = self.client.pipeline(transaction=False)
        unregister_commands(pipe, self.keys, self.worker_id)
        pipe.execute()

    def prune_dead_workers(self, resqued: bool = True, foreign: bool = True) -> list[str]:
        """Unregister workers that are gone, and settle what they held:
        ``resqued`` workers (those that publish an interval) and/or
        ``foreign`` ones (Ruby's, PHP's). Gone is a heartbeat older than
        five of *its own* intervals (any host; Resque's 60 s for a worker
        that publishes none, as Ruby judges it), unless on this host its
        pid is still a worker; or on this host a pid that is no worker any
        more. The resqued turn then settles in-flight lists that no worker
        owns any more."""
        pipe = self.client.pipeline(transaction=True)   # one consistent view
        pipe.smembers(self.keys.workers)
        pipe.hgetall(self.keys.heartbeats)
        pipe.hgetall(self.keys.heartbeat_intervals)
        members, beats, intervals = pipe.execute()
        now = redis_time(self.client)
        beats = {k.decode(): wire.parse_heartbeat(v) for k, v in beats.items()}
        intervals = {k.decode(): wire.parse_interval(v) for k, v in intervals.items()}
        known = {m.decode() for m in members} | set(beats)
        owners = pid_owners(known, self.hostname, beats)
        pruned = []
        for worker_id in sorted(known):
            if worker_id == self.worker_id or not (resqued if worker_id in intervals else foreign):
                continue
            host, pid, _ = split_worker_id(worker_id)
            local = LocalPid(pid) if host == self.hostname and pid is not None else None
            beat = beats.get(worker_id)
            prune_age = PRUNE_BEATS * intervals.get(worker_id, HEARTBEAT_INTERVAL)
            if beat is not None and now - beat > prune_age:
                if local is not None and local.titled_worker() and owners.get(pid) == worker_id:
                    self._note_stopped(worker_id, now - beat)
                    continue
                reason = Failure(PRUNED_DIRTY_EXIT,
                                 f"Worker {worker_id} did not gracefully exit while processing {{class}}")
            elif local is not None and local.no_worker():
                reason = Failure(DIRTY_EXIT, "Job still being processed")
            else:
                continue
            self._prune(worker_id, reason)
            pruned.append(worker_id)
        if resqued and self.recovery is not None:
            pruned += self._settle_vanished(known, intervals, owners, now)
        return pruned

    def _settle_vanished(self, known: set[str], intervals: dict, owners: dict, now: float) -> list[str]:
        """Settle the in-flight lists of resqued workers that are neither
        registered nor beating: a Ruby worker pruned them (Ruby knows nothing
        of these lists), and they published an interval, so they are found
        without scanning the keyspace. A worker so is first noted (Redis
        time, in <ns>:resqued:vanished); its lists are settled once it has
        stayed so for five of its intervals. A live worker beats again
        within one interval, so a live worker's job is never requeued; nor
        is that of one stopped on this host (Ruby prunes it after 300 s)."""
        try:
            noted = {k.decode(): float(v) for k, v in self.client.hgetall(self.keys.vanished).items()}
            back = [worker_id for worker_id in noted if worker_id in known]
            if back:
                self.client.hdel(self.keys.vanished, *back)
            settled = []
            for worker_id, interval in intervals.items():
                if worker_id in known or worker_id == self.worker_id:
                    continue
                if worker_id not in noted:
                    self.client.hsetnx(self.keys.vanished, worker_id, repr(now))
                elif now - noted[worker_id] > PRUNE_BEATS * interval and not self._stopped_here(worker_id, owners):
                    self.recovery.recover(worker_id, f"worker {worker_id} vanished (unregistered by another "
                                          "pruner, and no heartbeat since) while processing it")
                    pipe = self.client.pipeline(transaction=False)
                    pipe.hdel(self.keys.heartbeat_intervals, worker_id)
                    pipe.hdel(self.keys.vanished, worker_id)
                    pipe.execute()
                    settled.append(worker_id)
            return settled
        except redis.ResponseError as exc:   # an ACL that refuses one of these: say so, go on
            log.warning("cannot look for the in-flight jobs of vanished workers: %s", exc)
            return []

    def _note_stopped(self, worker_id: str, silent: float) -> None:
        # Once per worker: a hung worker (not merely paused) needs a person,
        # and this pruner will not recover its job.
        if worker_id not in self._stopped_noted:
            self._stopped_noted.add(worker_id)
            log.warning("worker %s: no heartbeat for %.0f s, but its process lives on this host (stopped?): "
                        "not pruned, its job left to it", worker_id, silent)

    def _stopped_here(self, worker_id: str, owners: dict) -> bool:
        """Is an unregistered worker's pid, on this host, still a worker
        that no registered one owns (so: that worker, stopped)?"""
        host, pid, _ = split_worker_id(worker_id)
        return (host == self.hostname and pid is not None and pid not in owners
                and LocalPid(pid).titled_worker())

    def _prune(self, worker_id: str, reason: Failure) -> None:
        why = f"worker {worker_id} died while processing it"
        if self.recovery is not None and self.recovery.has_inflight(worker_id):
            # A resqued worker: its job is in its in-flight list (and its
            # working-on record only repeats it).
            self.recovery.recover(worker_id, why)
            pipe = self.client.pipeline(transaction=False)
            unregister_commands(pipe, self.keys, worker_id)
            pipe.execute()
            log.info("pruned dead worker %s", worker_id)
            return
        level, outcome = self.client.transaction(lambda pipe: self._prune_foreign(pipe, worker_id, reason),
                                                 self.keys.worker(worker_id), value_from_callable=True)
        log.log(level, "pruned dead worker %s%s", worker_id, outcome)

    def _prune_foreign(self, pipe, worker_id: str, reason: Failure) -> str:
        """Unregister ``worker_id``; a job in its working-on record (where a
        foreign worker keeps it) is recorded as failed, unless it finished
        after all: a php-resque job child outlives its killed parent and
        writes its final status. WATCHed, so a status written meanwhile
        makes this run again; returns what to log (level, words)."""
        working = pipe.get(self.keys.worker(worker_id))
        job = WorkingOn(working) if working else None
        finished = False
        status_key = self.keys.job_status(job.payload) if job is not None else None
        if status_key is not None:
            pipe.watch(status_key)
            finished = _finished_since(pipe.get(status_key), job.run_at)
        pipe.multi()
        unregister_commands(pipe, self.keys, worker_id)
        if job is None:
            return logging.INFO, ""
        if finished:
            return logging.INFO, f"; its job {job.label} {job.job_class} had finished"
        reason = Failure(reason.exception, reason.error.replace("{class}", str(job.job_class)))
        add_outcome(pipe, self.keys, worker_id, job.queue, job.payload, reason, processed=False)
        return logging.WARNING, f"; its job {job.label} {job.job_class} recorded as failed ({reason.exception})"
