"""Redis Sentinel URLs: ``redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db]``,
with ``?sentinel_password=`` (and ``sentinel_username=``) for sentinels that
require their own AUTH.

redis-py has no URL form for Sentinel (its ``from_url`` refuses the scheme),
so this is ours, in the spelling Sidekiq's and Celery's users know: several
``host:port`` sentinels separated by commas, the service (Sentinel's
"master name") as the path's first part, the database as its second. The
password before '@' is the data nodes' (primary and replicas); the
sentinels' is a query option. Pure string work: the master checks it
without redis-py; redisio/connection.py builds the client from ``parse``.
"""

import dataclasses
import re
from urllib.parse import parse_qsl, unquote

from resqued.numbers import is_whole_number

SCHEME = "redis+sentinel"
DEFAULT_PORT = 26379
QUERY_OPTIONS = ("sentinel_password", "sentinel_username")
_SHAPE = "redis+sentinel://[:password@]host:port[,host:port...]/service[/db]"


class BadSentinelURL(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class SentinelURL:
    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int
    username: str | None
    password: str | None
    sentinel_username: str | None
    sentinel_password: str | None

    def sentinels_text(self) -> str:
        return ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.sentinels)


def is_sentinel(url: str) -> bool:
    return url.strip().lower().startswith(SCHEME + "://")


def parse(url: str) -> SentinelURL:
    """The parts of a sentinel URL, or BadSentinelURL saying what is wrong
    (the message never repeats the URL: the caller adds it, redacted)."""
    rest = url.strip()[len(SCHEME) + 3:]
    rest, _, query = rest.partition("?")
    # The userinfo ends at the last '@' before the path: a password may hold '@'.
    netloc, slash, path = rest.partition("/")
    if "@" in path.split("/")[0] and "@" not in netloc:
        raise BadSentinelURL("a '/' in the password must be percent-encoded (%2F)")
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else (unquote(user) or None)
        if not colon:
            username = None
    sentinels = tuple(_host_port(part) for part in hosts.split(","))
    parts = [p for p in path.split("/")] if slash else []
    if not parts or not parts[0]:
        raise BadSentinelURL(f"no service name: expected {_SHAPE}")
    if len(parts) > 2 or (len(parts) == 2 and not is_whole_number(parts[1])):
        raise BadSentinelURL(f"the database after the service must be a number: expected {_SHAPE}")
    options = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in QUERY_OPTIONS:
            raise BadSentinelURL(f"unknown option {key!r} (a sentinel URL takes {', '.join(QUERY_OPTIONS)})")
        options[key] = value
    return SentinelURL(sentinels, unquote(parts[0]), int(parts[1]) if len(parts) == 2 else 0, username, password,
                       options.get("sentinel_username") or None, options.get("sentinel_password") or None)


def with_db(url: str, db: int | str) -> str:
    """The URL with its database replaced (REDIS_BACKEND_DB)."""
    head, q, query = url.partition("?")
    match = re.match(r"^(.*?://[^/]*/[^/]+)(?:/\d*)?$", head)
    if not match:
        raise BadSentinelURL(f"no service name: expected {_SHAPE}")
    return f"{match.group(1)}/{db}" + (q + query)


def _host_port(text: str) -> tuple[str, int]:
    text = text.strip()
    if text.startswith("["):
        host, _, port = text[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    if not host:
        raise BadSentinelURL(f"sentinel {text!r} has no host: expected {_SHAPE}")
    if port and not (is_whole_number(port) and 0 < int(port) < 65536):
        raise BadSentinelURL(f"sentinel {text!r}: the port is not a number from 1 to 65535")
    return host, int(port) if port else DEFAULT_PORT
