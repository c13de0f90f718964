"""redis+sentinel:// URLs: accepted wherever a Redis URL is, checked and
redacted without redis-py (config/sentinelurl.py, config/redisurl.py)."""

import pytest

from resqued.config import sentinelurl
from resqued.config.checks import check_redis_url
from resqued.config.redisurl import BadRedisURL, normalize_url, redact


def test_a_sentinel_url_names_its_sentinels_service_and_database():
    url = "redis+sentinel://:p%40ss@h1:26379,h2:26380,[::1]:5/mymaster/3?sentinel_password=sp"
    assert check_redis_url(url) == url
    parts = sentinelurl.parse(url)
    assert parts.sentinels == (("h1", 26379), ("h2", 26380), ("::1", 5))
    assert (parts.service, parts.db, parts.password, parts.sentinel_password) == ("mymaster", 3, "p@ss", "sp")
    assert parts.sentinels_text() == "h1:26379,h2:26380,[::1]:5"


def test_defaults_port_and_database():
    parts = sentinelurl.parse("redis+sentinel://h1/svc")
    assert (parts.sentinels, parts.db, parts.password) == ((("h1", 26379),), 0, None)


def test_passwords_are_redacted():
    url = "redis+sentinel://user:secret@h1:1,h2:2/svc/0?sentinel_password=also-secret"
    assert redact(url) == "redis+sentinel://user:***@h1:1,h2:2/svc/0?sentinel_password=***"


def test_redis_backend_db_replaces_the_database():
    assert normalize_url("redis+sentinel://h1:1/svc/2?sentinel_password=a", 4) == \
        "redis+sentinel://h1:1/svc/4?sentinel_password=a"
    assert normalize_url("redis+sentinel://h1:1/svc", "5") == "redis+sentinel://h1:1/svc/5"


@pytest.mark.parametrize("url, problem", [
    ("redis+sentinel://h1:1", "no service name"),
    ("redis+sentinel://h1:1/", "no service name"),
    ("redis+sentinel://h1:x/s", "sentinel 'h1:x': the port is not a number"),
    ("redis+sentinel://h1:70000/s", "the port is not a number"),
    ("redis+sentinel://h/s/x", "the database after the service must be a number"),
    ("redis+sentinel://h/s?socket_timeout=1", "unknown option 'socket_timeout'"),
    ("redis+sentinel://,h/s", "sentinel '' has no host"),
    ("redis+sentinel://:pa/ss@h:1/svc", "a '/' in the password must be percent-encoded"),
])
def test_a_bad_sentinel_url_is_refused_in_one_line(url, problem):
    with pytest.raises(BadRedisURL) as caught:
        check_redis_url(url)
    message = str(caught.value)
    assert problem in message and "\n" not in message
    assert "ss@" not in message   # a password never shown
