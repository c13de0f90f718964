"""``resquectl failed clear --older-than``: every failed_at format Ruby Resque,
php-resque and resqued write (the golden captures' own entries), and never
an entry it cannot date."""

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import GOLDEN, ROOT
from resqued.resque import wire
from resqued.resque.keys import Keys

KEYS = Keys()
DAY = 86400


def golden_failures(*path):
    with open(os.path.join(GOLDEN, *path)) as f:
        return [raw.encode() for raw in json.load(f)["keys"]["resque:failed"]["value"]]


RUBY = golden_failures("ruby-resque", "snapshots", "04_after_failure.json")   # 2026/11/22 02:24:57 UTC
PHP = golden_failures("php-resque", "05_after_failure.json")                  # Sun Nov 22 01:47:47 UTC 2026


def entry(failed_at, job_class):
    record = {"payload": {"class": job_class, "args": []}, "exception": "E", "error": "e", "queue": "q"}
    if failed_at is not None:
        record["failed_at"] = failed_at
    return wire.dumps(record).encode()


def stamp(ts, zone):
    """Ruby's failed_at in a zone of its own, with this host in UTC."""
    return time.strftime("%Y/%m/%d %H:%M:%S", time.gmtime(ts)) + " " + zone


def resquectl(redis_url, *args):
    env = dict(os.environ, PYTHONPATH=ROOT, TZ="UTC")
    for name in ("REDIS_URL", "REDIS_BACKEND", "REDIS_BACKEND_DB", "PREFIX"):
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "resqued.ctl", "--redis", redis_url, *args],
                          env=env, capture_output=True, text=True, timeout=60)


def classes(r):
    """Each entry's job class (an undecodable one as its bytes)."""
    def name(raw):
        try:
            return json.loads(raw)["payload"]["class"]
        except ValueError:
            return raw
    return [name(raw) for raw in r.lrange(KEYS.failed, 0, -1)]


def test_clear_older_than_reads_every_format_and_keeps_what_it_cannot_date(r, redis_url):
    now = time.time()
    now_golden = wire.parse_run_at("2026-11-22T02:30:00Z")
    # The captures are from 2026-11-22: age them from there, whatever today is.
    since_capture = (now - now_golden) / DAY
    kept_undated = [entry(None, "NoDate"), entry("yesterday", "BadDate"), entry(12345, "NumberDate"),
                    b"{not json"]
    r.rpush(KEYS.failed, *RUBY, *PHP,
            entry(wire.failed_at_time(now - 3 * DAY), "Resqued3d"),      # resqued's own, this host's zone
            entry(wire.failed_at_time(now - 3600), "ResquedNew"),
            entry(time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(now - 5 * DAY)), "Php5d"),
            entry(stamp(now - 3 * DAY, "+0530"), "Offset3d"),
            entry(stamp(now - 1 * DAY, "-05:00"), "Offset1d"),
            # An abbreviation could be any zone: gone only when older in every zone.
            entry(stamp(now - 3 * DAY, "CET"), "Cet3d"),
            entry(stamp(now - 2 * DAY - 6 * 3600, "EST"), "Est2d6h"),
            entry(wire.run_at_time(now - 4 * DAY), "Iso4d"),
            *kept_undated)
    total = r.llen(KEYS.failed)

    done = resquectl(redis_url, "failed", "clear", "--older-than", "2d")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("cleared 7 failures older than 2d (failed before 20")
    assert done.stdout.endswith("; kept 3 newer; kept 4 whose failed_at cannot be read "
                                "(`failed remove` or `failed clear` takes them)\n")
    assert classes(r) == ["ResquedNew", "Offset1d", "Est2d6h",
                          "NoDate", "BadDate", "NumberDate", b"{not json"]
    assert since_capture > 2       # the golden entries were old enough to go

    # Nothing left old enough: nothing changes, and --json says so.
    again = resquectl(redis_url, "failed", "clear", "--older-than", "2d", "--json")
    assert again.returncode == 0
    result = json.loads(again.stdout)
    assert {k: result[k] for k in ("cleared", "kept_newer", "kept_undated")} == \
        {"cleared": 0, "kept_newer": 3, "kept_undated": 4}
    assert r.llen(KEYS.failed) == total - 7


def test_clear_older_than_a_long_list_pages_through_it(r, redis_url):
    now = time.time()
    # Old and new interleaved over several pages: indexes shift as pages are trimmed.
    r.rpush(KEYS.failed, *[entry(wire.failed_at_time(now - (DAY if i % 3 else 0)), f"J{i}")
                           for i in range(2500)])
    done = resquectl(redis_url, "failed", "clear", "--older-than", "1h")
    assert done.returncode == 0, done.stderr
    assert classes(r) == [f"J{i}" for i in range(0, 2500, 3)]


@pytest.mark.parametrize("duration", ["30", "2 days", "-1d", "1y", "d", ""])
def test_clear_older_than_refuses_a_bad_duration(r, redis_url, duration):
    r.rpush(KEYS.failed, *RUBY[:1])
    done = resquectl(redis_url, "failed", "clear", f"--older-than={duration}")
    assert done.returncode == 2
    assert f"not a duration: {duration!r}" in done.stderr and "30d, 12h" in done.stderr
    assert "Traceback" not in done.stderr
    assert r.llen(KEYS.failed) == 1
