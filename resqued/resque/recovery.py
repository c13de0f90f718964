"""Orphan recovery: the jobs a dead worker had reserved go back to the head of
their queue (``on_lost: requeue``, the default) or to the failed list
(``on_lost: fail``) — each exactly once.

Exactly once because one Lua call removes the job from the in-flight list and
requeues or fails it; when two recoverers race (the master that saw its worker
die, and a worker pruning stale heartbeats on another host), the second finds
nothing to remove and does nothing.

A job that keeps killing its worker is failed after ``max_lost`` losses instead
of looping forever: the count travels in the requeued payload itself, as the
field ``resqued_lost`` (Ruby and PHP ignore fields they do not know).
"""

import logging
import time

import redis

from resqued.resque import jobstatus, wire
from resqued.resque.outcome import Failure
from resqued.process.logs import event

log = logging.getLogger("resqued.resque")

LOST_JOB = "resqued.LostJob"
LOST_FIELD = "resqued_lost"

# KEYS: inflight, queue, failed, stat:failed, queues set, status key, working-on key
# ARGV: raw job, action, new raw job (requeue) or failure record (fail), queue name,
#       status code, its time, its TTL (0: none)
# A script that fails halfway keeps what it wrote (Redis has no rollback),
# and an ACL user may lack any command in it: so the job is written where it
# goes before it leaves the in-flight list. Refused there, nothing changed
# and a later run tries again; never a job in neither list.
_SETTLE = jobstatus.LUA_UPDATE_STATUS + """
if not redis.call('LPOS', KEYS[1], ARGV[1]) then return 0 end
if ARGV[2] == 'requeue' then
  redis.call('LPUSH', KEYS[2], ARGV[3])
else
  redis.call('RPUSH', KEYS[3], ARGV[3])
end
redis.call('LREM', KEYS[1], 1, ARGV[1])
if ARGV[2] == 'requeue' then
  redis.call('SADD', KEYS[5], ARGV[4])
else
  redis.call('INCRBY', KEYS[4], 1)
end
update_status(KEYS[6], ARGV[5], ARGV[6], ARGV[7])
redis.call('DEL', KEYS[7])
return 1
"""


def client_name(worker_id: str) -> str:
    """The name a worker's Redis connections carry (CLIENT SETNAME allows
    only printable ASCII without spaces)."""
    return "".join(c if "!" <= c <= "~" else "_" for c in worker_id)


def disconnect(client, worker_id: str) -> int:
    """End the Redis connections of a worker that is gone, before its
    in-flight lists are settled. A command it sent just before it died may
    still be unread by the server; run after the settling, it could move a
    job into a list nobody looks at again. Returns how many were ended; a
    user without the CLIENT command (an ACL) settles without it."""
    name = client_name(worker_id)
    try:
        ids = [c["id"] for c in client.client_list() if c.get("name") == name]
        for client_id in ids:
            client.execute_command("CLIENT", "KILL", "ID", client_id)
    except redis.ResponseError as exc:
        log.warning("cannot end the connections of %s before recovering its jobs: %s", worker_id, exc)
        return 0
    return len(ids)


def inflight_queues(client, keys, worker_id: str) -> list[str]:
    """The queues a worker may hold in-flight jobs from (its id names them;
    ``*`` means any known queue)."""
    queues = worker_id.split(":", 2)[2].split(",") if worker_id.count(":") >= 2 else []
    if "*" in queues:
        known = sorted(q.decode() for q in client.smembers(keys.queues))
        queues = [q for q in queues if q != "*"] + [q for q in known if q not in queues]
    return queues


class Recovery:
    def __init__(self, client, keys, on_lost: str = "requeue", max_lost: int = 3):
        self.client = client
        self.keys = keys
        self.on_lost = on_lost
        self.max_lost = max_lost
        self._settle = client.register_script(_SETTLE)

    def recover(self, worker_id: str, why: str, live_name: bool = False,
                queues: list[str] | None = None) -> list[tuple[str, str]]:
        """Settle every in-flight job of ``worker_id`` (from ``queues``, or
        every queue its id may hold); returns (action, job id) pairs.
        ``live_name``: a live worker (ourselves) carries that id now, so its
        connections must not be ended."""
        if not live_name:
            disconnect(self.client, worker_id)
        settled = []
        for queue in queues if queues is not None else inflight_queues(self.client, self.keys, worker_id):
            key = self.keys.inflight(worker_id, queue)
            for raw in self.client.lrange(key, 0, -1):
                result = self._settle_one(worker_id, queue, key, raw, why)
                if result:
                    settled.append(result)
        return settled

    def settle(self, worker_id: str, queue: str, raw: bytes, why: str):
        """Settle one in-flight job of a live worker as lost (a stop killed
        it): requeued at the head of its queue, or failed per on_lost and
        max_lost. Returns (action, job id), or None if it was not there."""
        return self._settle_one(worker_id, queue, self.keys.inflight(worker_id, queue), raw, why)

    def has_inflight(self, worker_id: str) -> bool:
        queues = inflight_queues(self.client, self.keys, worker_id)
        if not queues:
            return False
        pipe = self.client.pipeline(transaction=False)
        for queue in queues:
            pipe.exists(self.keys.inflight(worker_id, queue))
        return any(pipe.execute())

    def _settle_one(self, worker_id, queue, key, raw, why):
        payload, action, data, status, expire = self.outcome(worker_id, queue, raw, why)
        job_id = payload.get("id") if payload else None
        # (A key is needed in any case: scripts declare the keys they touch.)
        status_key = self.keys.job_status(payload) or self.keys.status("none")
        # The working-on record goes with it: left behind, a prune would
        # record the job as failed although it was requeued.
        done = self._settle(keys=[key, self.keys.queue(queue), self.keys.failed, self.keys.failed_count,
                                  self.keys.queues, status_key, self.keys.worker(worker_id)],
                            args=[raw, action, data, queue, status, int(time.time()), expire])
        if not done:
            return None  # someone else settled it first
        log_settled(worker_id, queue, job_id, action, why)
        return action, job_id

    def outcome(self, worker_id: str, queue: str, raw: bytes, why: str, exception: str = LOST_JOB):
        """What becomes of a lost job's ``raw`` payload: (payload or None,
        "requeue" or "fail", the requeued payload or the failure record,
        its status code, the status's TTL), by on_lost and max_lost; a
        failure is ``exception``, with ``why``."""
        try:
            payload = wire.decode_payload(raw)
        except wire.InvalidPayload:
            payload = None
        lost = (payload.get(LOST_FIELD, 0) if payload else 0)
        lost = (lost if isinstance(lost, int) and not isinstance(lost, bool) else 0) + 1
        if payload is not None and self.on_lost == "requeue" and lost <= self.max_lost:
            action, data = "requeue", wire.dumps({**payload, LOST_FIELD: lost})
            status, expire = wire.STATUS_WAITING, 0
        else:
            if payload is None:
                error = f"{why}; its payload cannot be decoded, so it is not requeued"
            elif self.on_lost == "fail":
                error = f"{why} (on_lost: fail)"
            else:
                error = f"{why}; lost {lost} times, more than max_lost {self.max_lost}: not requeued again"
            failure = Failure(exception, error)
            action = "fail"
            data = wire.failure_record(payload if payload is not None else wire.raw_payload_record(raw),
                                       failure.exception, failure.error, [], worker_id, queue)
            status, expire = wire.STATUS_FAILED, wire.STATUS_TTL
        return payload, action, data, status, expire


def log_settled(worker_id: str, queue: str, job_id, action: str, why: str) -> None:
    (log.warning if action == "requeue" else log.error)(
        "job %s of %s from queue %s %s: %s", job_id or "(no id)", worker_id, queue,
        "requeued at the head of its queue" if action == "requeue" else "failed", why,
        extra=event("job_lost", job_id=job_id, queue=queue, worker=worker_id, reason=why,
                    outcome="requeued" if action == "requeue" else "failed"))
