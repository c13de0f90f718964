"""Taking the next job off the queues: a blocking pop that a signal can end.

BLPOP gives millisecond pickup without polling, but a process blocked in it
cannot react to QUIT or TERM until the timeout ends (php-resque's BLOCKING
mode ignores signals until a job arrives). Here the pop runs on a dedicated
connection while the worker selects on both that socket and the signal
wakeup fd; when a signal arrives, ``CLIENT UNBLOCK`` (sent on the ordinary
connection) makes the server end the BLPOP as if it had timed out. Either
the server already popped a job — and we read it, so nothing is lost — or it
returns nothing.
"""

import redis

from .signals import wait_readable

# How long to wait for the reply after asking the server to unblock us before
# asking again (the BLPOP may not have reached the server yet).
_UNBLOCK_RETRY = 0.05
# A reply later than the BLPOP timeout plus this means the connection is dead.
_REPLY_GRACE = 5.0


class Reserver:
    def __init__(self, client: redis.Redis, keys, signals):
        self.client = client
        self.keys = keys
        self.signals = signals
        self._conn = None

    def pop(self, queues: list[str], timeout: float):
        """Pop the first job of ``queues`` (in priority order), waiting up to
        ``timeout`` seconds. Returns ``(queue, raw_payload)`` or None (timed
        out, or ended early because a signal arrived)."""
        if not queues:
            wait_readable([self.signals], timeout)
            return None
        if self._conn is None:
            self._conn = self.client.connection_pool.make_connection()
        conn = self._conn
        try:
            reply = self._blpop(conn, [self.keys.queue(q) for q in queues], timeout)
        except BaseException:
            # A half-read reply would poison the next command: start afresh.
            self.close()
            raise
        if reply is None:
            return None
        key, raw = reply
        return self.keys.queue_name(key), raw

    def _blpop(self, conn, keys, timeout):
        # CLIENT ID travels with the BLPOP, so the id is always the one of the
        # connection that is blocked, even after a reconnect.
        conn.send_packed_command(conn.pack_commands([("CLIENT", "ID"), ("BLPOP", *keys, timeout)]))
        client_id = conn.read_response()
        unblock_sent = False
        deadline_waits = (timeout + _REPLY_GRACE)
        while not conn.can_read(timeout=0):
            if self.signals.has_pending() and not unblock_sent:
                self.client.execute_command("CLIENT", "UNBLOCK", client_id)
                unblock_sent = True
            if unblock_sent:
                if not wait_readable([conn._sock], _UNBLOCK_RETRY):
                    unblock_sent = False  # not blocked yet when we asked: ask again
                continue
            ready = wait_readable([conn._sock, self.signals], deadline_waits)
            if not ready:
                raise redis.ConnectionError(f"no reply to BLPOP within {deadline_waits:.0f}s")
        return conn.read_response()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.disconnect()
            self._conn = None
