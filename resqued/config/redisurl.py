"""Redis URLs as users write them: a URL (``redis://``, ``rediss://``,
``unix://``, ``redis+sentinel://``: config/sentinelurl.py) or php-resque's ``REDIS_BACKEND`` (``host:port``), checked and
normalized, and redacted before one reaches a log line or a process title.

Pure string work, no redis-py: the config's checks, env mode's variables,
the master and resquectl use it; redisio/connection.py builds the client.
"""

import re
from urllib.parse import urlsplit, urlunsplit

from resqued.config import sentinelurl
from resqued.numbers import is_whole_number

DEFAULT_URL = "redis://127.0.0.1:6379/0"


class BadRedisURL(ValueError):
    pass


def normalize_url(backend: str | None, db: int | str | None = None) -> str:
    """Turn a redis URL or php-resque's ``host:port`` / ``unix:///path`` into a URL.

    ``db`` (REDIS_BACKEND_DB) wins over a database in the URL, as in php-resque.
    """
    backend = (backend or DEFAULT_URL).strip()
    if sentinelurl.is_sentinel(backend):
        try:
            sentinelurl.parse(backend)
            if db is not None and str(db) != "":
                if not is_whole_number(str(db)):
                    raise BadRedisURL(f"redis database {db!r} is not a number")
                backend = sentinelurl.with_db(backend, db)
        except sentinelurl.BadSentinelURL as exc:
            raise BadRedisURL(f"redis URL {redact(backend)!r}: {exc}") from None
        return backend
    if "://" not in backend:
        # php-resque: "host:port", or a bare host.
        host, _, port = backend.partition(":")
        if not host:
            raise BadRedisURL(f"redis backend {backend!r} has no host")
        if port and not is_whole_number(port):
            raise BadRedisURL(f"redis backend {backend!r}: port {port!r} is not a number")
        backend = f"redis://{host}:{port or 6379}"
    parts = split_url(backend)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise BadRedisURL(f"redis URL {redact(backend)!r}: "
                          "scheme must be redis, rediss, unix or redis+sentinel")
    if db is not None and str(db) != "":
        if not is_whole_number(str(db)):
            raise BadRedisURL(f"redis database {db!r} is not a number")
        if parts.scheme == "unix":
            query = "&".join(q for q in parts.query.split("&") if q and not q.startswith("db="))
            query = (query + "&" if query else "") + f"db={db}"
            # urlunsplit drops the "//" of an empty netloc; keep the usual spelling.
            backend = f"unix://{parts.netloc}{parts.path}?{query}"
        else:
            backend = urlunsplit(parts._replace(path=f"/{db}"))
    return backend


def split_url(url: str):
    """urlsplit, with its ValueError (an unclosed IPv6 bracket) as BadRedisURL,
    and a port that is not a number found now rather than at connect time.
    The message never repeats urlsplit's: a raw '#', '?' or '/' in a password
    ends the netloc early, so its "port" is part of the password."""
    try:
        parts = urlsplit(url)
        parts.port
    except ValueError as exc:
        problem = ("an unclosed '[': an IPv6 address goes in brackets (redis://[::1]:6379/0)"
                   if "IPv6" in str(exc) else "the port is not a number from 0 to 65535 (a password "
                   "with '#', '?' or '/' in it must be percent-encoded: %23, %3F, %2F)")
        raise BadRedisURL(f"redis URL {redact(url)!r}: {problem}") from None
    return parts


def redact(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    # In the query first: password, and ssl_password (the passphrase of the
    # client key), to the next '&'. Then no '@' of a query value is left to
    # be taken for the end of a userinfo.
    url = re.sub(r"([?&][^=&]*password=)[^&]*", r"\1***", url, flags=re.IGNORECASE)
    # The userinfo, masked before any parsing, from the first ':' after "://"
    # to the last '@': a raw '#', '?' or '/' in a password would end
    # urlsplit's (and a stricter pattern's) netloc early and leave the rest
    # of it shown.
    # A '@' behind a query's "name=" (redis://u:p@h/0?client_name=a@b) is
    # the query's: the userinfo ends at an earlier one.
    # Without such an earlier one, the last '@' it is: a password with a raw
    # "?x=" is masked whole, and a host may be hidden with it.
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    earlier, found, tail = userinfo, at, ""
    while found and _QUERY_PARAM.search(earlier):
        earlier, found, more = earlier.rpartition("@")
        tail = f"{more}@{tail}" if tail else more
    if found and tail and ":" in earlier:
        userinfo, host = earlier, f"{tail}@{host}"
    if sep and at and ":" in userinfo:
        url = f"{scheme}://{userinfo.partition(':')[0]}:***@{host}"
    return url


_QUERY_PARAM = re.compile(r"\?[A-Za-z_]+=")
