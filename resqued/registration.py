"""A worker's presence in Redis, in Resque's format: registration, heartbeat,
unregistration, and pruning the registrations of workers that died.

resque-web lists what is in ``workers``; Ruby workers prune any registration
whose heartbeat is over 5 minutes old. So we beat (every 60 s by default) and
prune as Ruby does — at start and then once per heartbeat interval, by
whichever worker takes Ruby's prune lock — but a dead resqued worker's
in-flight job is recovered (requeued, or failed per on_lost), and a dead
foreign worker's job is recorded as failed (Ruby loses it when the heartbeat
is missing, php-resque always loses it).
"""

import json
import logging
import time

import psutil

from . import wire
from .outcome import DIRTY_EXIT, PRUNED_DIRTY_EXIT, Failure, add_outcome

log = logging.getLogger("resqued.worker")

HEARTBEAT_INTERVAL = 60.0
PRUNE_LOCK_SECONDS = 60


def split_worker_id(worker_id: str):
    host, _, rest = worker_id.partition(":")
    pid, _, queues = rest.partition(":")
    return host, int(pid) if pid.isdigit() else None, queues


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


def _looks_like_worker(pid: int) -> bool:
    """Is ``pid`` a live process that is a Resque worker of some kind?"""
    try:
        cmdline = " ".join(psutil.Process(pid).cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True
    return "resque" in cmdline


class Registration:
    def __init__(self, client, keys, worker_id: str, hostname: str,
                 heartbeat_interval: float = HEARTBEAT_INTERVAL, recovery=None):
        self.client = client
        self.keys = keys
        self.worker_id = worker_id
        self.hostname = hostname
        self.heartbeat_interval = heartbeat_interval
        self.prune_age = 5 * heartbeat_interval  # Ruby's prune_interval
        self.last_beat = 0.0
        self.recovery = recovery

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
        pipe.execute()

    def prune_if_due(self) -> None:
        """Prune, if no worker (ours or Ruby's) has in the last minute."""
        # Ruby holds the lock 60 s; a shorter heartbeat prunes (and recovers) sooner.
        seconds = max(1, int(min(PRUNE_LOCK_SECONDS, self.heartbeat_interval)))
        if self.client.set(self.keys.prune_lock, self.worker_id, nx=True, ex=seconds):
            self.prune_dead_workers()

    def heartbeat(self) -> None:
        now = redis_time(self.client)
        self.client.hset(self.keys.heartbeats, self.worker_id, wire.heartbeat_time(now))
        self.last_beat = time.monotonic()

    def heartbeat_due_in(self) -> float:
        return max(0.0, self.last_beat + self.heartbeat_interval - time.monotonic())

    def unregister(self) -> None:
        pipe = self.client.pipeline(transaction=False)
        unregister_commands(pipe, self.keys, self.worker_id)
        pipe.execute()

    def prune_dead_workers(self) -> list[str]:
        """Unregister workers that are gone: heartbeat older than the prune age
        (any host), or on this host with a pid that is no worker any more."""
        pipe = self.client.pipeline(transaction=False)
        pipe.smembers(self.keys.workers)
        pipe.hgetall(self.keys.heartbeats)
        members, beats = pipe.execute()
        now = redis_time(self.client)
        beats = {k.decode(): wire.parse_heartbeat(v) for k, v in beats.items()}
        pruned = []
        for worker_id in sorted({m.decode() for m in members} | set(beats)):
            if worker_id == self.worker_id:
                continue
            host, pid, _ = split_worker_id(worker_id)
            beat = beats.get(worker_id)
            if beat is not None and now - beat > self.prune_age:
                reason = Failure(PRUNED_DIRTY_EXIT, f"Worker {worker_id} did not gracefully exit while processing {{class}}")
            elif host == self.hostname and pid is not None and not _looks_like_worker(pid):
                reason = Failure(DIRTY_EXIT, "Job still being processed")
            else:
                continue
            self._prune(worker_id, reason)
            pruned.append(worker_id)
        return pruned

    def _prune(self, worker_id: str, reason: Failure) -> None:
        why = f"worker {worker_id} died while processing it"
        if self.recovery is not None and self.recovery.has_inflight(worker_id):
            self.recovery.recover(worker_id, why)
            working = None
        else:
            working = self.client.get(self.keys.worker(worker_id))
        pipe = self.client.pipeline(transaction=False)
        if working:
            # A foreign worker (Ruby, PHP) keeps its job only here: record it as failed.
            try:
                record = json.loads(working)
                payload, queue = record.get("payload"), record.get("queue", "")
            except (ValueError, AttributeError):
                payload, queue = wire.raw_payload_record(working), ""
            job_class = payload.get("class") if isinstance(payload, dict) else None
            reason.error = reason.error.replace("{class}", str(job_class))
            add_outcome(pipe, self.keys, worker_id, queue, payload, reason, processed=False)
            log.warning("pruned dead worker %s; its job %s recorded as failed (%s)", worker_id, job_class, reason.exception)
        else:
            log.info("pruned dead worker %s", worker_id)
        unregister_commands(pipe, self.keys, worker_id)
        pipe.execute()
