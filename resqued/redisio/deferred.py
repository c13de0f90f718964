"""Commands sent now whose replies are read later.

The worker marks a job running (its working-on key, the job's status) just
before the job starts. Waiting for that reply would put a round trip on every
job's critical path for a record nobody waits for, so the commands are sent
on a connection held aside and their replies read just before the job's
outcome is recorded: the server has long executed them by then, and since
they were executed before the outcome was sent, the records keep their order.
"""

import redis

from resqued.redisio.direct import Held, connection, read_replies, ready, send


class Deferred:
    def __init__(self, client: redis.Redis, commands: list[tuple], held: Held | None = None):
        """Send ``commands``; raises redis-py's connection errors if they
        could not be sent (nothing is then held). ``held``: the connection
        to use (and keep), not one from the pool; nothing else may use it
        until ``wait()``."""
        self._pool = client.connection_pool
        self._held = held
        self._conn = held.take() if held is not None else connection(self._pool)
        self._count = len(commands)
        try:
            ready(self._conn)
            send(self._conn, commands)
        except BaseException:
            self._release(broken=True)
            raise

    def wait(self) -> None:
        """Read every reply; raises the first error reply or connection error
        (after reading them all, so the connection stays usable)."""
        if self._conn is None:
            return
        try:
            replies = read_replies(self._conn, self._count)
        except BaseException:
            self._release(broken=True)
            raise
        self._release(broken=False)
        for reply in replies:
            if isinstance(reply, redis.ResponseError):
                raise reply

    def _release(self, broken: bool) -> None:
        conn, self._conn = self._conn, None
        if broken:
            conn.disconnect()  # a half-read reply would poison the next command
        if self._held is None:
            self._pool.release(conn)
