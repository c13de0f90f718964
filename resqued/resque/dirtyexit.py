"""The job of a dead foreign worker (a command pool's php-resque or Ruby
Resque worker, docs/command-pools.md), settled at once by the master's
recovery run instead of at some later worker's prune; and a live one's job
count, for max_jobs.

Such a worker keeps no in-flight list: the job it runs is only in its
``worker:<id>`` working-on record (``{"queue", "run_at", "payload"}``),
which Resque's prune turns into a ``Resque::DirtyExit`` failure. Here the
job is failed the same way, or requeued at the head of its queue with
``on_lost: requeue`` (max_lost as for resqued's own workers, recovery.py),
then the worker's registration is removed with Resque's unregister
sequence. One Lua call settles the record only if it is still the one read,
so a second recoverer (a prune elsewhere) finds nothing to do.
"""

import json
import socket
import time

from resqued.resque import jobstatus, wire
from resqued.resque.outcome import DIRTY_EXIT   # what Ruby's prune records
from resqued.resque.presence import unregister_commands
from resqued.resque.recovery import Recovery, log_settled


# KEYS: working-on record, queue, failed, stat:failed, queues set, status key
# ARGV: the record as read, action, requeued payload or failure record, queue,
#       status code, its time, its TTL (0: none)
_SETTLE = jobstatus.LUA_UPDATE_STATUS + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == 'requeue' then
  redis.call('LPUSH', KEYS[2], ARGV[3])
  redis.call('SADD', KEYS[5], ARGV[4])
else
  redis.call('RPUSH', KEYS[3], ARGV[3])
  redis.call('INCRBY', KEYS[4], 1)
end
update_status(KEYS[6], ARGV[5], ARGV[6], ARGV[7])
redis.call('DEL', KEYS[1])
return 1
"""


def registered_ids(client, keys, worker_id: str, not_before: float | None = None) -> list[str]:
    """The ids under which the worker of ``worker_id`` (host:pid:queues, as
    the master knows it) may be registered: the id itself when Redis knows
    it, else the same pid on this host with whatever queue list it wrote
    (its own spelling of QUEUE). The exact id comes first: a pid alone may be
    another, live worker's (pid reuse, containers sharing a hostname), so
    a match by pid whose ``worker:<id>:started`` is before ``not_before``
    (when the master started the worker, a timestamp) is not it."""
    if client.sismember(keys.workers, worker_id) or client.exists(keys.worker(worker_id)):
        return [worker_id]
    host, pid = worker_id.split(":")[:2]
    hosts = {host, socket.gethostname()}
    found = [worker_id]
    for member in client.smembers(keys.workers):
        member = member.decode(errors="replace")
        parts = member.split(":")
        if len(parts) >= 3 and parts[1] == pid and parts[0] in hosts and member not in found and \
                not _started_before(client, keys, member, not_before):
            found.append(member)
    return found


def _started_before(client, keys, worker_id: str, moment: float | None) -> bool:
    if moment is None:
        return False
    raw = client.get(keys.worker_started(worker_id))
    # The latest moment its text can mean (php-resque writes a zone
    # abbreviation): only a registration surely older is another worker's.
    started = wire.failed_at_latest(raw.decode(errors="replace")) if raw else None
    return started is not None and started < moment - 1   # Resque's started is to the second


def jobs_done(client, keys, worker_id: str, not_before: float | None = None) -> int:
    """How many jobs the live foreign worker of ``worker_id`` has done: its
    ``stat:processed:<id>``, which php-resque and Ruby Resque count after
    every job, failed ones included (master/jobcounts.py)."""
    ids = registered_ids(client, keys, worker_id, not_before)
    return max(int(value or 0) for value in client.mget([keys.worker_processed(i) for i in ids]))


class DirtyExits:
    def __init__(self, client, keys, on_lost: str = "requeue", max_lost: int = 3):
        self.client, self.keys = client, keys
        self.recovery = Recovery(client, keys, on_lost, max_lost)
        self._settle = client.register_script(_SETTLE)

    def settle(self, worker_id: str, why: str, not_before: float | None = None) -> list[tuple[str, str | None]]:
        """Settle the dead worker's job, if its record holds one, and
        unregister it; returns (action, job id) pairs. ``not_before``: when
        it was started (registered_ids)."""
        settled = []
        for registered in registered_ids(self.client, self.keys, worker_id, not_before):
            record = self.client.get(self.keys.worker(registered))
            result = self._settle_record(registered, record, why) if record else None
            if result:
                settled.append(result)
            pipe = self.client.pipeline(transaction=False)
            unregister_commands(pipe, self.keys, registered)
            pipe.execute()
        return settled

    def _settle_record(self, worker_id: str, record: bytes, why: str):
        try:
            working = json.loads(record)
            queue, payload = str(working["queue"]), working["payload"]
        except (ValueError, KeyError, TypeError):
            return None   # not a working-on record: unregistering removes it
        raw = wire.dumps(payload).encode() if isinstance(payload, dict) else json.dumps(payload).encode()
        payload, action, data, status, expire = self.recovery.outcome(worker_id, queue, raw, why, DIRTY_EXIT)
        job_id = payload.get("id") if payload else None
        status_key = self.keys.job_status(payload) or self.keys.status("none")
        done = self._settle(keys=[self.keys.worker(worker_id), self.keys.queue(queue), self.keys.failed,
                                  self.keys.failed_count, self.keys.queues, status_key],
                            args=[record, action, data, queue, status, int(time.time()), expire])
        if not done:
            return None
        log_settled(worker_id, queue, job_id, action, why)
        return action, job_id
