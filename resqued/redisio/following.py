"""Keeping a Sentinel pool's long-lived connections on the current primary.

redis-py asks the sentinels for the primary only when a connection is made.
When the primary dies, every connection breaks and is made again: that
finds the new one. But after a failover whose old primary lives on (SENTINEL
FAILOVER, a partition healing), Sentinel leaves the old primary a primary
until it reconfigures it, seconds later (ten, measured on Redis 6.2): a
process whose connections stay open would go on writing there, and those
writes vanish when it turns replica. So a connection we keep (direct.Held,
reserve.py's own) is checked against the primary the sentinels name, asked
at most every CHECK_EVERY seconds per pool, and closed when they differ:
the next command reconnects to the new one (direct.ready).
"""

import time
import weakref

import redis
from redis.sentinel import SentinelConnectionPool

CHECK_EVERY = 1.0

_next_check: "weakref.WeakKeyDictionary[SentinelConnectionPool, float]" = weakref.WeakKeyDictionary()


def stale(pool, conn) -> bool:
    """Is ``conn`` (of ``pool``) open to a server the sentinels no longer
    name as the primary? Always False for a pool that is not Sentinel's."""
    if not isinstance(pool, SentinelConnectionPool) or conn._sock is None:
        return False
    now = time.monotonic()
    if now >= _next_check.get(pool, 0.0):
        _next_check[pool] = now + CHECK_EVERY
        try:
            pool.get_master_address()   # updates pool.master_address (and closes idle connections)
        except redis.ConnectionError:
            return False   # no sentinel answers now: the connection we have is the best guess
    primary = pool.master_address
    return primary is not None and (conn.host, int(conn.port)) != (primary[0], int(primary[1]))


def drop_if_stale(pool, conn) -> None:
    if stale(pool, conn):
        conn.disconnect()
