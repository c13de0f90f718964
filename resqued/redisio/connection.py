"""The one place that makes Redis clients and connections from a URL
(config/redisurl.py checks and normalizes what users write, and redacts
passwords). Every process goes through here: workers (and their reserve's
extra connections), the spawner, recovery runs, the scheduler, the
exporter, resquectl and the dashboard.

A ``redis+sentinel://`` URL (config/sentinelurl.py) gives a client on
redis-py's SentinelConnectionPool: each new connection asks the sentinels
for the current primary, and a connection that meets a demoted primary
(READONLY, or UNBLOCKED of a blocking take) is closed and raises
ConnectionError, which the callers already ride as an outage
(redisio/refusals.py); their retry then connects to the new primary.
"""

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING

from resqued.config import sentinelurl
from resqued.config.redisurl import BadRedisURL, redact

if TYPE_CHECKING:
    import redis

log = logging.getLogger("resqued.redisio")


def connect(url: str, fixed_timeout: float | None = None, connect_wait: float | None = None,
            **options) -> "redis.Redis":
    """A client for ``url``. Responses stay bytes: payloads are decoded by us,
    so an item that is not UTF-8 reaches the failed list instead of crashing.
    ``fixed_timeout``: seconds to connect and for each reply, whatever the
    URL says (redis-py applies a URL's ``?socket_timeout=`` over the
    caller's options: the exporter must answer a scrape within a second).
    ``connect_wait``: seconds a connection keeps trying to connect (refused,
    or no primary named while the sentinels elect one) before it raises;
    a command is never sent twice (no retry after a send: an RPUSH twice is
    a job enqueued twice). None: no waiting (resqued's processes, which
    ride outages themselves)."""
    import redis  # here, not at the top: resquectl imports this module, and its master commands never connect

    if fixed_timeout is not None:
        options.update(socket_timeout=fixed_timeout, socket_connect_timeout=fixed_timeout)
    if connect_wait is not None:
        from redis.backoff import NoBackoff   # here, as redis
        from redis.retry import Retry   # here, as redis
        options.setdefault("retry", Retry(NoBackoff(), 0))
    if sentinelurl.is_sentinel(url):
        client = _sentinel_client(url, options)
    else:
        try:
            client = redis.Redis.from_url(url, **options)
        except ValueError as exc:
            raise BadRedisURL(f"redis URL {redact(url)!r}: {exc}") from None
    if fixed_timeout is not None:
        # Each connection of the pool is made from these: set after the URL's.
        client.connection_pool.connection_kwargs.update(socket_timeout=fixed_timeout,
                                                        socket_connect_timeout=fixed_timeout)
    if connect_wait is not None:
        pool = client.connection_pool
        pool.connection_class = _waiting(pool.connection_class, connect_wait)
    return client


WAIT_FIRST, WAIT_MOST = 0.05, 1.0   # the first pause between connection attempts, and the longest
_at_once = threading.local()


@contextlib.contextmanager
def at_once():
    """Connections made inside try once, whatever their ``connect_wait``:
    for a connect ahead of need (a job child's standby), which must not
    hold anything up while Redis is away."""
    _at_once.on = True
    try:
        yield
    finally:
        _at_once.on = False


def _waiting(base: type, seconds: float) -> type:
    """``base`` (the pool's connection class: TCP, unix socket, TLS or
    Sentinel's) whose ``connect`` tries again for up to ``seconds``. Only
    the connect: nothing was sent yet, so trying again cannot run a command
    twice."""
    import redis  # here, as connect's

    class Waiting(base):
        def connect(self):
            if getattr(_at_once, "on", False):
                return super().connect()
            deadline = time.monotonic() + seconds
            pause = WAIT_FIRST
            given = getattr(self, "socket_connect_timeout", None)   # (an older redis-py's class may lack it)
            try:
                while True:
                    # Each try within the time left (at least WAIT_MOST): to a host that
                    # drops packets, one try would otherwise last the kernel's SYN
                    # retries (about two minutes) whatever ``seconds`` says.
                    left = max(deadline - time.monotonic(), WAIT_MOST)
                    self.socket_connect_timeout = left if given is None else min(given, left)
                    try:
                        return super().connect()
                    except (redis.ConnectionError, redis.TimeoutError):   # MasterNotFoundError is one
                        left = deadline - time.monotonic()
                        if left <= 0:
                            raise
                        time.sleep(min(pause, left))   # and a last try at the deadline
                        pause = min(pause * 2, WAIT_MOST)
            finally:
                self.socket_connect_timeout = given

    Waiting.__name__ = Waiting.__qualname__ = base.__name__
    Waiting.connect_wait = seconds   # what it waits, for whoever inspects a pool (the tests)
    return Waiting


def check_url(url: str) -> None:
    """BadRedisURL for a URL whose options redis-py would refuse (the
    master's config check runs this in a probe: it loads no redis-py)."""
    if sentinelurl.is_sentinel(url):
        _parse_sentinel(url)
        return
    from redis.connection import parse_url  # here, as connect's import
    try:
        parse_url(url)
    except ValueError as exc:
        raise BadRedisURL(f"redis URL {redact(url)!r}: {exc}") from None


def extra_connection(client: "redis.Redis"):
    """A connection of ``client``'s pool, connected, that the caller keeps
    and drives itself (reserve.py's one-per-queue blocking takes) and gives
    back with ``give_back``: a Sentinel pool's resolves the primary as it
    connects (direct.ready does it again after a disconnect)."""
    from resqued.redisio.direct import connection  # here, as connect's import: direct loads redis-py
    return connection(client.connection_pool)


def give_back(client: "redis.Redis", conn) -> None:
    """Disconnect an ``extra_connection`` and return it to its pool, which
    counts it until then (max_connections)."""
    conn.disconnect()
    client.connection_pool.release(conn)


def describe(url: str, timeout: float = 2.0) -> str:
    """What ``--check`` says of a sentinel URL: its sentinels and the primary
    they name now (raises redis.ConnectionError when none answers)."""
    parts = _parse_sentinel(url)
    client = _sentinel_client(url, {"socket_timeout": timeout, "socket_connect_timeout": timeout})
    host, port = client.connection_pool.get_master_address()
    return f"sentinels {parts.sentinels_text()}, service {parts.service}: primary is {host}:{port}"


def _parse_sentinel(url: str) -> sentinelurl.SentinelURL:
    try:
        return sentinelurl.parse(url)
    except sentinelurl.BadSentinelURL as exc:
        raise BadRedisURL(f"redis URL {redact(url)!r}: {exc}") from None


def _sentinel_client(url: str, options: dict) -> "redis.Redis":
    from redis.sentinel import Sentinel  # here, as connect's import

    class FollowingSentinel(Sentinel):
        """Says once, per process and change, where the primary went: each
        new connection asks the sentinels, so a failover shows here first."""
        last = None

        def discover_master(self, service_name):
            address = super().discover_master(service_name)
            if self.last is not None and address != self.last:
                log.warning("redis: primary is now %s:%s", *address)
            self.last = address
            return address

    parts = _parse_sentinel(url)
    sentinel_options = {k: v for k, v in options.items() if k.startswith("socket_")}
    if parts.sentinel_password:
        sentinel_options["password"] = parts.sentinel_password
        sentinel_options["username"] = parts.sentinel_username
    sentinel = FollowingSentinel(parts.sentinels, sentinel_kwargs=sentinel_options)
    return sentinel.master_for(parts.service, db=parts.db, username=parts.username, password=parts.password,
                               **options)
