"""Taking the next job off the queues, crash-safely, with a wait a signal can end.

A reserved job is never only in a process's memory: it moves atomically from
its queue to the worker's in-flight list (BLMOVE/LMOVE, Redis >= 6.2), and
leaves it only in the same transaction that records its outcome. If the
worker dies, the job is still in Redis for recovery.py to requeue.

A single-queue worker blocks in BLMOVE: pickup in milliseconds, no polling. A
multi-queue worker first moves the first job of its queues in priority order
in one Lua call; when they are all empty it blocks in one BLMOVE per queue, on
one connection each, and when one returns the others are ended with CLIENT
UNBLOCK (a job they had already taken goes back to the head of its queue).

Resque's global pause switch (``<ns>:pause-all-workers``, resque-web's
"pause all") is read after every take, in the same round trip: on the
connection that took the job, right after the take (a BLMOVE's GET runs
when the BLMOVE returns). So a job pushed after the switch was set is never
run: the take sees the switch and the job goes back to the head of its
queue (``pause_seen``). The same read sees the queues paused fleet-wide,
which a take skips (queuepause.py).

While a queue is busy, the worker takes its next job in the same transaction
that records the outcome of the last one (``take_in``): one round trip per
job instead of two. A job taken that way that the worker then does not run
(it was asked to stop or pause) goes back to the head of its queue
(``give_back``). If a reply is lost (the connection dropped after the server
moved a job), the job would sit in the in-flight list unknown to the worker:
after any connection error the worker, holding no job, moves its in-flight
lists back to their queues (``reclaim``) before it reserves again.

Signals: a process blocked in BLPOP cannot react to QUIT or TERM until the
timeout ends (php-resque's BLOCKING mode ignores signals until a job arrives).
Here the worker selects on the blocked sockets and the signal wakeup fd; when
a signal arrives, CLIENT UNBLOCK (sent on the ordinary connection) makes the
server end the wait as if it had timed out. Either the server already moved
a job — and we read it, so nothing is lost — or it returns nothing.
"""

import logging
import time

import redis

from resqued.process.signals import wait_readable
from resqued.redisio import connection, direct, following
from resqued.resque import jobstatus, wire
from resqued.worker import nextmark
from resqued.worker.queuepause import RECHECK, QueuePauses
from resqued.worker.replicawait import ReplicaWait

log = logging.getLogger("resqued.worker")

# How long to wait for the reply after asking the server to unblock us before
# asking again (the BLMOVE may not have reached the server yet).
_UNBLOCK_RETRY = 0.05
# A reply later than the timeout plus this means the connection is dead.
_REPLY_GRACE = 5.0
# Past this many queues a worker stops opening a connection per queue and
# polls instead (every queue is still tried in priority order).
MAX_BLOCKING_QUEUES = 16
POLL_INTERVAL = 0.25
# A queue whose key holds something other than a list (someone SET it, say)
# is skipped, not allowed to stop the worker, and looked at again this often.
BAD_QUEUE_RECHECK = 30.0

# KEYS: queue1, inflight1, queue2, inflight2, ... -> {index, job} of the first
# job found, in priority order, moved to its in-flight list.
_MOVE_FIRST = """
for i = 1, #KEYS, 2 do
  local job = redis.call('LMOVE', KEYS[i], KEYS[i + 1], 'LEFT', 'RIGHT')
  if job then return {(i + 1) / 2, job} end
end
return false
"""

# KEYS: inflight, queue -> how many jobs went back to the head of the queue, in
# their order.
_RECLAIM = """
local n = 0
while redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT') do n = n + 1 end
return n
"""


class UnsupportedServer(redis.RedisError):
    """The Redis server lacks what crash-safe reserve needs."""


def check_server(client) -> None:
    """Raise UnsupportedServer unless the server has LMOVE/BLMOVE, which keep
    a reserved job in Redis: Redis 6.2 or newer."""
    version = client.info("server").get("redis_version", "0")
    parts = tuple(int(p) for p in str(version).split(".")[:2] if p.isdigit())
    if parts < (6, 2):
        raise UnsupportedServer(f"Redis {version} is too old: resqued needs 6.2 or newer (BLMOVE)")


class Reserver:
    def __init__(self, client: redis.Redis, keys, worker_id: str, signals, wait: tuple[int, float] = (0, 1.0)):
        """``wait``: wait_replicas and wait_timeout (replicawait.py)."""
        self.client = client
        self.keys = keys
        self.worker_id = worker_id
        self.signals = signals
        self._conns: dict[str, object] = {}
        self._reclaim = client.register_script(_RECLAIM)
        self._bad: dict[str, float] = {}  # queue -> when to look at its key again
        # Whether the pause switch was set, as read right after the last take
        # (None: not read since the worker last asked, see pausekey.py).
        self.pause_seen: bool | None = None
        self.pauses = QueuePauses(client, keys)   # and the queues paused fleet-wide
        # The job last taken was marked running by its take (nextmark.py):
        # None if not, else whether its running status was written too.
        self.premarked: bool | None = None
        self._taken_raw = None       # that job, as queued
        self._script_unknown = False   # the server answered NOSCRIPT to the last take
        self.wait = ReplicaWait(worker_id, *wait)

    def inflight(self, queue: str) -> str:
        return self.keys.inflight(self.worker_id, queue)

    def usable(self, queues: list[str]) -> list[str]:
        """``queues`` without those whose key is not a list (see
        ``_skip_wrong_types``); a skipped one is looked at again every
        BAD_QUEUE_RECHECK seconds; and without those paused fleet-wide."""
        queues = self.pauses.unpaused(queues)
        if not self._bad:
            return queues
        now = time.monotonic()
        for queue in [q for q, at in self._bad.items() if at <= now]:
            if self._key_type(queue) in ("list", "none"):
                del self._bad[queue]
                log.warning("worker %s: queue %s holds a list again: taking jobs from it", self.worker_id, queue)
            else:
                self._bad[queue] = now + BAD_QUEUE_RECHECK
        return [q for q in queues if q not in self._bad]

    def pop(self, queues: list[str], timeout: float):
        """Reserve the first job of ``queues`` (in priority order), waiting up
        to ``timeout`` seconds. Returns ``(queue, raw_payload)`` — the job is
        then in ``inflight(queue)`` — or None (timed out, a signal came, or a
        queue's key turned out not to be a list, or the pause switch is set:
        then a job taken meanwhile is back at the head of its queue)."""
        self.pause_seen = self.premarked = None
        if not queues:
            wait_readable([self.signals], min(timeout, RECHECK))   # a paused queue may resume
            return None
        try:
            found = None
            if len(queues) > 1:
                found = self._first_waiting(queues)
                if not found and len(queues) > MAX_BLOCKING_QUEUES and not self.pause_seen:
                    wait_readable([self.signals], min(timeout, POLL_INTERVAL))
                    return None
            if not found and not self.pause_seen:
                try:
                    found = self._block(queues, timeout)
                except BaseException:
                    # A half-read reply would poison the next command: start afresh.
                    self.close()
                    raise
            if found and (self.pause_seen or self.must_give_back(found[0])):
                self.give_back(found[0])
                return None
            return found
        except redis.ResponseError as exc:
            if not _wrong_type(exc):
                raise
            self._skip_wrong_types(queues)
            # The wait of another queue may have been cut short after its
            # job moved: we hold none, so whatever is in flight goes back.
            self.reclaim(self.usable(queues))
            return None

    def take_in(self, pipe, queues: list[str]) -> int:
        """Queue on ``pipe`` (a transaction: a pipeline or a direct.Batch) the
        command that moves the first waiting job of ``queues`` to its in-flight
        list, and the read of the pause switch and of the queues paused
        (queuepause.py). Returns how many commands that is: ``taken`` reads
        that many replies, the last of the transaction's. Never blocks: an
        empty queue just answers nothing."""
        commands = self._take_and_read(queues, mark=True)
        for command in commands:
            pipe.execute_command(*command)
        return len(commands)

    def taken(self, queues: list[str], replies: list):
        """``(queue, raw)`` from the replies to ``take_in``'s commands, or
        None. An error reply (a queue whose key is not a list) takes nothing.
        A job taken while the pause switch is set, or from a queue the same
        read found paused, is returned all the same (the caller holds it, and
        gives it back when it sees ``pause_seen`` or ``must_give_back``)."""
        self.premarked = None
        *take, get, members = replies
        offered = self.pauses.takeable(queues)   # as ``take_in`` left them, before this read
        self.pause_seen = self.pauses.seen([get, members])
        if not take or take[0] is None:  # not "not reply": an empty string is a (bad) job too
            return None
        reply = take[0]
        self._script_unknown = nextmark.unknown_script(reply)
        if isinstance(reply, redis.ResponseError):
            if self._script_unknown:
                return None   # nothing was taken: the next take sends the script whole
            if not _wrong_type(reply):
                raise reply
            self._skip_wrong_types(queues)
            return None
        return self._found(offered, reply)

    def taken_after_outcome(self, queues: list[str], replies) -> tuple:
        """``taken`` for a take sent in an outcome's transaction that was
        committed: ``(found, doubtful)``. It never raises, for whatever
        raised would make the worker's outage.retry send the outcome again
        (the job counted twice, its retry scheduled twice). ``doubtful``:
        an error reply left it unknown whether a job moved (a script may
        fail after its LMOVE): the in-flight lists are to be reclaimed."""
        if not queues:
            return None, False
        try:
            return self.taken(queues, replies), False
        except redis.RedisError as exc:
            log.error("worker %s: taking the next job failed (%s): its in-flight lists are reclaimed",
                      self.worker_id, exc)
            return None, True

    def running_marks(self, job) -> list[tuple]:
        """The commands that mark ``job`` (the job last taken) running that
        its take did not send (nextmark.py)."""
        premarked, self.premarked = self.premarked, None
        return nextmark.running_marks(self.keys, self.worker_id, job, premarked)

    def must_give_back(self, queue: str) -> bool:
        """Whether a job taken from ``queue`` must not run: the read that
        came with its take found the queue paused fleet-wide."""
        return self.pauses.paused(queue)

    def _take_and_read(self, queues: list[str], mark: bool = False) -> list[tuple]:
        # The queues the last read found paused are left out; one paused
        # since is caught by the read that follows (the job goes back).
        offered = self.pauses.takeable(queues)
        if mark and offered:
            take = [nextmark.take_command(self.keys, self.worker_id, offered, self.inflight, self._script_unknown)]
        elif len(offered) == 1:
            take = [("LMOVE", self.keys.queue(offered[0]), self.inflight(offered[0]), "LEFT", "RIGHT")]
        elif offered:
            keys = []
            for queue in offered:
                keys += [self.keys.queue(queue), self.inflight(queue)]
            # EVAL, not EVALSHA: a redis-py pipeline with a script in it first
            # asks the server whether it knows the script, a round trip per
            # job; the server caches the script body by its hash anyway.
            take = [("EVAL", _MOVE_FIRST, len(keys), *keys)]
        else:
            take = []
        return take + self.pauses.read_commands()

    def _found(self, offered: list[str], reply):
        if not isinstance(reply, list):   # a plain LMOVE's
            self.premarked = None
            return offered[0], reply
        index, raw, *marked = reply
        self.premarked = bool(marked[0]) if marked else None
        self._taken_raw = raw
        return offered[int(index) - 1], raw

    def give_back(self, queue: str) -> None:
        """Return the job last taken from ``queue`` (not yet run) to its head;
        the working-on key its take wrote goes with it, and its status is
        waiting again (nextmark.py)."""
        commands = [("LMOVE", self.inflight(queue), self.keys.queue(queue), "RIGHT", "LEFT")]
        if self.premarked is not None:
            commands.append(("DEL", self.keys.worker(self.worker_id)))
        if self.premarked and (status_key := _status_key(self.keys, self._taken_raw)) is not None:
            commands.append(jobstatus.update_command(status_key, wire.STATUS_WAITING))
        direct.execute(self.client, commands, transaction=len(commands) > 1)
        self.premarked = None

    def reclaim(self, queues: list[str]) -> int:
        """Move everything in our in-flight lists back to the head of its
        queue, in order. Only for a worker that holds no job: whatever is in
        them then was taken by a command whose reply never reached us."""
        moved = 0
        for queue in queues:
            moved += self._reclaim(keys=[self.inflight(queue), self.keys.queue(queue)])
        # A take whose reply was lost may have marked its job running (nextmark.py).
        self.client.delete(self.keys.worker(self.worker_id))
        return moved

    def _skip_wrong_types(self, queues: list[str]) -> None:
        kinds = self._key_types(queues)
        for queue, kind in zip(queues, kinds):
            if kind not in ("list", "none"):
                if queue not in self._bad:
                    log.error("worker %s: queue %s: key %s holds a %s, not a list of jobs: skipping that queue "
                              "(looking again every %gs)", self.worker_id, queue, self.keys.queue(queue), kind,
                              BAD_QUEUE_RECHECK)
                self._bad[queue] = time.monotonic() + BAD_QUEUE_RECHECK

    def _key_type(self, queue: str) -> str:
        return self._key_types([queue])[0]

    def _key_types(self, queues: list[str]) -> list[str]:
        pipe = self.client.pipeline(transaction=False)
        for queue in queues:
            pipe.type(self.keys.queue(queue))
        return [kind.decode() if isinstance(kind, bytes) else kind for kind in pipe.execute()]

    def _first_waiting(self, queues):
        # No retry: a reply lost after the server moved a job must reach the
        # caller, whose outage handling reclaims the in-flight lists.
        commands = self._take_and_read(queues)
        replies = direct.execute(self.client, commands + self.wait.commands(), retry=False, raise_errors=False)
        took = len(commands) > 2 and replies[0] is not None and not isinstance(replies[0], Exception)
        replies = self.wait.split(replies, judge=took)   # wait_replicas: replicawait.py
        if len(commands) > 2 and isinstance(replies[0], redis.ResponseError):
            raise replies[0]   # pop's handling of a queue that is not a list
        return self.taken(queues, replies)

    def _connection(self, queue):
        conn = self._conns.get(queue)
        if conn is not None:
            following.drop_if_stale(self.client.connection_pool, conn)   # it reconnects to the primary
        else:
            conn = self._conns[queue] = connection.extra_connection(self.client)
        return conn

    def _block(self, queues, timeout):
        conns = [self._connection(q) for q in queues]
        wait = self.wait.commands()
        for queue, conn in zip(queues, conns):
            direct.ready(conn)   # a Sentinel pool's finds the primary as it connects
            # CLIENT ID travels with the BLMOVE, so the id is always the one of
            # the connection that is blocked, even after a reconnect.
            # The GET runs once the BLMOVE returns: after the push of any job
            # it took, so it sees a pause switch set before that push.
            # A WAIT (wait_replicas) runs once the BLMOVE returns, on the connection that wrote the take.
            conn.send_packed_command(conn.pack_commands([
                ("CLIENT", "ID"),
                ("BLMOVE", self.keys.queue(queue), self.inflight(queue), "LEFT", "RIGHT", timeout),
                *self.pauses.read_commands(), *wait]))
        client_ids = [conn.read_response() for conn in conns]
        replies = self._await_replies(conns, client_ids, timeout)
        self.pause_seen = any([self.pauses.seen(direct.read_replies(conn, 2)) for conn in conns])
        waited = [direct.read_replies(conn, len(wait)) for conn in conns]
        taken = [(i, raw) for i, raw in sorted(replies.items()) if raw is not None]
        self.wait.split(waited[taken[0][0]] if taken else [], judge=bool(taken))
        if not taken:
            return None
        # Several queues answered at once: keep the highest priority, give the
        # others back to the head of their queues (they never left Redis).
        for i, _ in taken[1:]:
            self.give_back(queues[i])
        first, raw = taken[0]
        return queues[first], raw

    def _await_replies(self, conns, client_ids, timeout) -> dict:
        pending = set(range(len(conns)))
        replies = {}
        unblock_sent = False
        while pending:
            for i in [i for i in pending if conns[i].can_read(timeout=0)]:
                replies[i] = conns[i].read_response()
                pending.discard(i)
            if not pending:
                break
            socks = [conns[i]._sock for i in pending]
            if replies or self.signals.has_pending():
                # A job came in on another connection, or a signal: end the rest.
                if not unblock_sent:
                    for i in pending:
                        self.client.execute_command("CLIENT", "UNBLOCK", client_ids[i])
                    unblock_sent = True
                elif not wait_readable(socks, _UNBLOCK_RETRY):
                    unblock_sent = False  # not blocked yet when we asked: ask again
                continue
            if not wait_readable(socks + [self.signals], timeout + _REPLY_GRACE):
                raise redis.ConnectionError(f"no reply to BLMOVE within {timeout + _REPLY_GRACE:.0f}s")
        return replies

    def close(self) -> None:
        for conn in self._conns.values():
            connection.give_back(self.client, conn)
        self._conns.clear()


def _status_key(keys, raw) -> str | None:
    try:
        return keys.job_status(wire.decode_payload(raw))
    except wire.InvalidPayload:
        return None


def _wrong_type(error: Exception) -> bool:
    # Alone, or inside a script's error ("... @user_script:3: WRONGTYPE ...").
    return "WRONGTYPE" in str(error)
