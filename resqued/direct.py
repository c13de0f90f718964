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
"""

import redis

try:  # hiredis packs a command in C; redis-py's own packer costs ~5x more
    from hiredis import pack_command as _pack_one
except ImportError:  # pragma: no cover - hiredis is a dependency
    _pack_one = None


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


def execute(client: redis.Redis, commands: list[tuple], transaction: bool = False,
            retry: bool = True, raise_errors: bool = True) -> list:
    """Send ``commands`` (tuples of command name and arguments) and return
    their replies, in order. With ``transaction``, they run in MULTI/EXEC and
    the replies are EXEC's. An error reply raises ``redis.ResponseError``
    after every reply has been read (so the connection stays usable);
    within a transaction the other commands have then still run, as in
    redis-py. ``retry=False``: no retry on a connection error, for a caller
    that must know that a reply was lost (the commands may have run).
    ``raise_errors=False``: error replies are returned in their place."""
    pool = client.connection_pool
    conn = connection(pool)
    wire = [("MULTI",), *commands, ("EXEC",)] if transaction else commands
    def round_trip():
        send(conn, wire)
        return read_replies(conn, len(wire))

    try:
        if retry:
            replies = conn.retry.call_with_retry(round_trip, lambda _error: conn.disconnect())
        else:
            replies = round_trip()
    except BaseException:
        conn.disconnect()  # a half-read reply would poison the next command
        raise
    finally:
        pool.release(conn)
    if transaction:
        replies = replies[-1]
        if isinstance(replies, redis.ResponseError):  # EXECABORT: nothing ran
            raise replies
    for reply in replies if raise_errors else ():
        if isinstance(reply, redis.ResponseError):
            raise reply
    return replies


def send(conn, commands) -> None:
    """Write ``commands`` on ``conn`` in one go."""
    if _pack_one is not None:
        conn.send_packed_command([b"".join([_pack_one(command) for command in commands])])
    else:
        conn.send_packed_command(conn.pack_commands(commands))


def read_replies(conn, count: int) -> list:
    """Read ``count`` replies; an error reply is returned in its place (a
    ``redis.ResponseError``), not raised, so that every reply is read."""
    replies = []
    for _ in range(count):
        try:
            replies.append(conn.read_response())
        except redis.ResponseError as error:
            replies.append(error)
    return replies
