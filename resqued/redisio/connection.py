"""Building a Redis client from a URL (config/redisurl.py checks and
normalizes what users write, and redacts passwords)."""

from typing import TYPE_CHECKING

from resqued.config.redisurl import BadRedisURL, redact

if TYPE_CHECKING:
    import redis


def connect(url: str, **options) -> "redis.Redis":
    """A client for ``url``. Responses stay bytes: payloads are decoded by us,
    so an item that is not UTF-8 reaches the failed list instead of crashing."""
    import redis  # here, not at the top: resquectl imports this module, and its master commands never connect

    try:
        return redis.Redis.from_url(url, **options)
    except ValueError as exc:
        raise BadRedisURL(f"redis URL {redact(url)!r}: {exc}") from None
