"""A batch of commands on one pooled connection, in one round trip, without
redis-py's Pipeline object.

The worker's per-job transaction and ``Resque.enqueue`` run this path
thousands of times a second. redis-py's Pipeline spends more CPU building and
unwinding its command stack (and per-command response callbacks) than the
round trip itself takes; measured on the worker's loop, that is ~35 % of its
CPU. This sends the same commands with the same connection API the Pipeline
uses (``pack_commands``, ``send_packed_command``, ``read_response``) and the
same retry policy (the connection's ``retry``), and returns the raw replies:
bytes, ints, lists, no callbacks.

A caller that makes such calls all the time (``Resque.enqueue``, the worker's
per-job transaction) keeps its connection (``Held``) instead of taking it
from redis-py's pool and giving it back each time: measured, the checkout
and release cost ~25 µs per call (redis-py 8 records pool metrics in both),
a quarter of an enqueue.
"""

import os
import threading

import redis
from redis.exceptions import ReadOnlyError
from redis.sentinel import SentinelConnectionPool, SentinelManagedConnection

from resqued.redisio import following

try:  # hiredis packs a command in C; redis-py's own packer costs ~5x more
    from hiredis import pack_command as _pack_one
except ImportError:  # pragma: no cover - hiredis is a dependency
    _pack_one = None
try:  # what redis-py's hiredis reader answers while a reply is incomplete
    from redis._parsers.hiredis import NOT_ENOUGH_DATA as _NOT_ENOUGH_DATA
except ImportError:  # pragma: no cover - another redis-py: its read_response is used
    _NOT_ENOUGH_DATA = None


class Batch:
    """Commands to send with ``execute``; has redis-py's ``execute_command``
    so that code that queues commands works on a Pipeline or on this."""

    def __init__(self):
        self.commands: list[tuple] = []

    def execute_command(self, *args) -> None:
        self.commands.append(args)


def connection(pool):
    """A connection from ``pool`` (redis-py < 6 wants a command name)."""
    try:
        return pool.get_connection()
    except TypeError:
        return pool.get_connection("_")


class Held:
    """A connection taken from ``client``'s pool once and kept, by one thread
    of one process: a connection is not thread-safe, and a forked child must
    not use its parent's socket (it takes its own). Given back to the pool
    when this object goes (with its thread, see PerThread). A broken one is
    disconnected and stays held: redis-py reconnects it on the next send."""

    def __init__(self, client: redis.Redis, slot=None):
        self.pool = client.connection_pool
        self._slot = slot  # a PerThread's semaphore, released when we go
        self._conn = None
        self._pid = None

    def take(self):
        if self._pid != os.getpid():
            self._conn = None  # the parent's; the pool itself resets after a fork
        if self._conn is None:
            self._conn = connection(self.pool)
            self._pid = os.getpid()
        elif self._conn._sock is not None:
            # As the pool checks a connection it hands out: one with something
            # to read (the server closed it, e.g. a restart) is reconnected,
            # instead of failing the next command. One poll(), ~1 µs.
            try:
                stale = self._conn.can_read()
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                stale = True
            if stale:
                self._conn.disconnect()
            else:
                following.drop_if_stale(self.pool, self._conn)
        return self._conn

    def __del__(self):
        try:
            if self._conn is not None and self._pid == os.getpid():
                self.pool.release(self._conn)
            if self._slot is not None:
                self._slot.release()
        except Exception:  # interpreter shutdown: nothing left to give it back to
            pass


HELD_PER_CLIENT = 4


def may_hold(client: redis.Redis) -> bool:
    """Whether connections of ``client``'s pool may be kept (``Held``): not
    from a BlockingConnectionPool or a small one (max_connections; redis-py
    8's default is 100), which kept connections could leave short. A
    Sentinel pool's may: a kept connection that meets a demoted primary is
    closed by redis-py, and reconnects to the new one as it is used again."""
    pool = client.connection_pool
    return type(pool) in (redis.ConnectionPool, SentinelConnectionPool) and getattr(pool, "max_connections", 0) >= 4 * HELD_PER_CLIENT


class PerThread(threading.local):
    """A ``Held`` connection (``.held``) for each of the first few threads
    that use a client at a time, None for the others (they take one from the
    pool per call): an application with hundreds of threads must not keep
    hundreds of connections. A thread's connection and its place go back
    when the thread ends."""

    def __init__(self, client: redis.Redis, slots: threading.Semaphore):
        self.held = Held(client, slots) if slots.acquire(blocking=False) else None


def execute(client: redis.Redis, commands: list[tuple], transaction: bool = False,
            retry: bool = True, raise_errors: bool = True, held: Held | None = None,
            then: list[tuple] = ()) -> list:
    """Send ``commands`` (tuples of command name and arguments) and return
    their replies, in order. With ``transaction``, they run in MULTI/EXEC and
    the replies are EXEC's. An error reply raises ``redis.ResponseError``
    after every reply has been read (so the connection stays usable);
    within a transaction the other commands have then still run, as in
    redis-py. ``retry=False``: no retry on a connection error, for a caller
    that must know that a reply was lost (the commands may have run).
    ``raise_errors=False``: error replies are returned in their place.
    ``held``: use that connection (and keep it), not one from the pool.
    ``then``: commands sent after EXEC in the same round trip (a WAIT,
    which inside MULTI would not wait); their replies follow the others."""
    pool = client.connection_pool
    conn = held.take() if held is not None else connection(pool)
    wire = [("MULTI",), *commands, ("EXEC",), *then] if transaction else [*commands, *then]
    def round_trip():
        ready(conn)
        send(conn, wire)
        replies = read_replies(conn, len(wire) - len(then))
        if then:
            # What follows the commands (a WAIT) must not undo what they did:
            # a reply lost there (a timeout while WAIT waits, the connection
            # dropped) is that command's error reply, not an error of the
            # whole, which a caller would retry (an outcome recorded twice).
            try:
                replies += read_replies(conn, len(then))
            except (redis.ConnectionError, redis.TimeoutError) as error:
                conn.disconnect()
                replies += [error] * len(then)
        return replies

    try:
        if retry:
            replies = conn.retry.call_with_retry(round_trip, lambda _error: conn.disconnect())
        else:
            replies = round_trip()
    except BaseException:
        conn.disconnect()  # a half-read reply would poison the next command
        raise
    finally:
        if held is None:
            pool.release(conn)
    after = replies[len(replies) - len(then):] if then else []
    if transaction:
        queued, replies = replies[1:len(wire) - len(then) - 1], replies[len(wire) - len(then) - 1]
        if isinstance(replies, redis.ResponseError):
            # EXECABORT: nothing ran. Raise why a command was refused as it
            # was queued (OOM, READONLY, NOPERM): the caller judges by it.
            raise next((q for q in queued if isinstance(q, redis.ResponseError)), replies)
    elif then:
        replies = replies[:len(replies) - len(then)]
    for reply in [*replies, *after] if raise_errors else ():
        if isinstance(reply, redis.ResponseError):
            raise reply
    return [*replies, *after] if then else replies


def ready(conn) -> None:
    """Connect ``conn`` if it is not: through its ``connect()``, which for a
    Sentinel pool's connection asks the sentinels for the primary. redis-py's
    send_packed_command connects a closed connection by itself, but to the
    address it had: after a failover, the old primary's."""
    if conn._sock is None:
        conn.connect()


def send(conn, commands) -> None:
    """Write ``commands`` on ``conn`` in one go."""
    if _pack_one is not None:
        conn.send_packed_command([b"".join([_pack_one(command) for command in commands])])
    else:
        conn.send_packed_command(conn.pack_commands(commands))


def read_replies(conn, count: int) -> list:
    """Read ``count`` replies; an error reply is returned in its place (a
    ``redis.ResponseError``), not raised, so that every reply is read."""
    parser = getattr(conn, "_parser", None)
    reader = getattr(parser, "_reader", None)
    # An older redis-py's parser may hold a reply its can_read took from the
    # reader (``_next_response``): read_response hands that one out first.
    if reader is not None and _NOT_ENOUGH_DATA is not None and getattr(parser, "_next_response", False) is False:
        return _read_from_hiredis(conn, reader, count)
    replies = []
    for _ in range(count):
        try:
            replies.append(conn.read_response())
        except redis.ResponseError as error:
            replies.append(error)
    return replies


def _read_from_hiredis(conn, reader, count: int) -> list:
    # The worker's transaction has a reply per command (MULTI, QUEUED ...,
    # EXEC): taken from hiredis's reader in one loop, they cost half the CPU
    # of redis-py's read_response each (which raises error replies; the
    # reader hands them over as ResponseError objects, as wanted here).
    replies = []
    parser, gets = conn._parser, reader.gets
    push = getattr(parser, "_hiredis_PushNotificationType", None) or ()   # RESP3's out-of-band messages
    following_primary = isinstance(conn, SentinelManagedConnection) and conn.connection_pool.is_master
    try:
        while len(replies) < count:
            reply = gets()
            if reply is _NOT_ENOUGH_DATA:
                parser.read_from_socket()
            elif isinstance(reply, redis.ConnectionError):
                raise reply
            elif following_primary and _demoted(reply):
                # As SentinelManagedConnection.read_response says it: the
                # server we took for the primary was demoted; reconnecting
                # asks the sentinels for the new one (else every retry would
                # meet READONLY until following.drop_if_stale notices).
                conn.disconnect()
                raise redis.ConnectionError("The previous master is now a slave")
            elif push and isinstance(reply, push):
                parser.handle_push_response(reply)
            else:
                replies.append(reply)
    except OSError as exc:   # a reset connection, as read_response says it
        conn.disconnect()
        raise redis.ConnectionError(f"Error while reading from Redis: {exc}") from exc
    return replies


_UNBLOCKED_BY_DEMOTION = "UNBLOCKED force unblock from blocking operation, instance state changed"


def _demoted(reply) -> bool:
    """Whether ``reply`` is a primary's refusal for having turned replica."""
    return isinstance(reply, ReadOnlyError) or (isinstance(reply, redis.ResponseError)
                                                and str(reply).startswith(_UNBLOCKED_BY_DEMOTION))
