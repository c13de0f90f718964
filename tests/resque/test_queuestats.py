"""Queue figures (resqued.resque.queuestats) against a real redis-server:
lengths and the age of each queue's oldest job, from php-resque's, Ruby's
and resqued's payloads, and from data no Resque wrote."""

import json
import os
import time

import pytest

from resqued.resque import queuestats, wire
from resqued.resque.keys import Keys

from conftest import GOLDEN

KEYS = Keys()


def redis_now(r) -> float:
    seconds, micros = r.time()
    return seconds + micros / 1e6


def golden_queue(directory, name, key):
    with open(os.path.join(GOLDEN, directory, name + ".json")) as f:
        return json.load(f)["keys"][key]["value"]


def push(r, queue, *raws, keys=KEYS):
    r.sadd(keys.queues, queue)
    if raws:
        r.rpush(keys.queue(queue), *raws)


def enqueued_ago(seconds: float, job_class="Job") -> str:
    return wire.dumps(wire.payload(job_class, [], wire.new_job_id(), queue_time=time.time() - seconds))


def by_name(stats):
    return {q.name: q for q in stats.queues}


def test_php_resque_payloads_age_from_their_queue_time(r):
    raws = golden_queue("php-resque", "01_after_enqueue", "resque:queue:golden")
    push(r, "golden", *raws)
    stats = queuestats.read(r, KEYS)
    (golden,) = stats.queues
    oldest = json.loads(raws[0])["queue_time"]
    assert golden.name == "golden" and golden.length == len(raws) and golden.error is None
    assert golden.latency == pytest.approx(stats.time - oldest, abs=0.001)
    assert abs(stats.time - redis_now(r)) < 5


def test_ruby_payloads_have_no_age(r):
    raws = golden_queue("ruby-resque/snapshots", "01_after_enqueue", "resque:queue:golden")
    push(r, "golden", *raws)
    (golden,) = queuestats.read(r, KEYS).queues
    assert (golden.length, golden.latency, golden.error) == (len(raws), None, None)


def test_the_oldest_job_is_the_head_and_empty_queues_are_listed(r):
    push(r, "mail", enqueued_ago(120), enqueued_ago(5), enqueued_ago(1))
    push(r, "idle")   # named in the set, nothing waiting
    stats = queuestats.read(r, KEYS)
    assert [q.name for q in stats.queues] == ["idle", "mail"]
    mail, idle = by_name(stats)["mail"], by_name(stats)["idle"]
    assert mail.length == 3 and 119 < mail.latency < 125
    assert (idle.length, idle.latency) == (0, None)


def test_a_clock_ahead_of_redis_gives_zero_not_a_negative_age(r):
    push(r, "q", enqueued_ago(-3600))
    assert queuestats.read(r, KEYS).queues[0].latency == 0.0


@pytest.mark.parametrize("head", [
    b"not json", b"\xff\xfe\x00", b"[" * 100_000, b'["class", "args"]', b'"a string"', b"null",
    b'{"class":"J","args":[],"queue_time":"yesterday"}', b'{"class":"J","args":[],"queue_time":true}',
    b'{"class":"J","args":[],"queue_time":NaN}', b'{"class":"J","args":[],"queue_time":1e400}',
    b'{"class":"J","args":[],"queue_time":-5}', b'{"class":"J","args":[],"queue_time":null}',
    b'{"class":"J","args":[],"queue_time":[1]}', b"",
    b'{"class":"J","args":[],"queue_time":%s}' % (b"9" * 400), b'{"class":"J","args":[],"queue_time":-1e308}',
    b'{"class":"J","args":[],"queue_time":"-Infinity"}', b'{"class":"J","args":[],"queue_time":"NaN"}',
    b'{"class":"J","args":[],"queue_time":4e9}',
])
def test_a_head_no_one_can_read_gives_no_age_and_no_crash(r, head):
    push(r, "bad", head, enqueued_ago(60))
    (bad,) = queuestats.read(r, KEYS).queues
    assert (bad.length, bad.latency, bad.error) == (2, None, None)


def test_a_queue_time_written_as_a_string_counts(r):
    # Ruby's Oj has written php-resque's float back as a string.
    raw = json.dumps({"class": "J", "args": [], "queue_time": str(time.time() - 30)})
    push(r, "q", raw)
    assert 29 < queuestats.read(r, KEYS).queues[0].latency < 35


def test_a_queue_key_that_is_not_a_list_is_reported_and_the_rest_read(r):
    push(r, "ok", enqueued_ago(10))
    r.sadd(KEYS.queues, "odd")
    r.set(KEYS.queue("odd"), "someone's own string")
    stats = queuestats.read(r, KEYS)
    odd, ok = by_name(stats)["odd"], by_name(stats)["ok"]
    assert odd.length == 0 and odd.latency is None and "WRONGTYPE" in odd.error
    assert ok.length == 1 and ok.latency >= 10 and ok.error is None


def test_totals(r):
    r.set(KEYS.processed, 41)
    r.set(KEYS.failed_count, 7)
    r.rpush(KEYS.failed, "{}", "{}", "{}")
    r.sadd(KEYS.workers, "web1:10:mail", "web2:11:*")
    push(r, "a", enqueued_ago(1))
    push(r, "b")
    stats = queuestats.read(r, KEYS)
    assert (stats.processed, stats.failed, stats.failures, stats.workers, stats.queue_count, stats.paused) == \
        (41, 7, 3, 2, 2, False)
    data = stats.as_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["queues"][0]["name"] == "a" and data["queues"][1] == {"name": "b", "length": 0, "latency": None,
                                                                     "error": None}


def test_an_empty_redis_reads_as_zeros(r):
    stats = queuestats.read(r, KEYS)
    assert (stats.queues, stats.processed, stats.failed, stats.failures, stats.workers, stats.queue_count,
            stats.paused) == ([], 0, 0, 0, 0, 0, False)


@pytest.mark.parametrize("value, paused", [(b"true", True), (b" TRUE\n", True), (b"false", False),
                                           (b"1", False), (b"yes", False)])
def test_the_global_pause_as_ruby_reads_it(r, value, paused):
    r.set(KEYS.pause_all, value)
    assert queuestats.read(r, KEYS).paused is paused


def test_counters_no_resque_wrote_read_as_zero(r):
    r.set(KEYS.processed, "lots")
    r.hset(KEYS.failed_count, "x", 1)   # not even a string
    r.set(KEYS.failed, "not a list")
    stats = queuestats.read(r, KEYS)
    assert (stats.processed, stats.failed, stats.failures) == (0, 0, 0)


def test_a_page_of_the_queues_set_sorted_by_name(r):
    for name in ("e", "c", "a", "d", "b"):
        push(r, name, enqueued_ago(1))
    stats = queuestats.read(r, KEYS, start=1, count=2)
    assert [q.name for q in stats.queues] == ["b", "c"] and stats.queue_count == 5
    assert [q.name for q in queuestats.read(r, KEYS, start=4).queues] == ["e"]
    assert queuestats.read(r, KEYS, start=9, count=2).queues == []


def test_named_queues_are_read_as_given_even_outside_the_set(r):
    push(r, "a", enqueued_ago(1))
    r.rpush(KEYS.queue("unlisted"), enqueued_ago(50))
    stats = queuestats.read(r, KEYS, queues=["unlisted", "a", "missing"])
    assert [(q.name, q.length) for q in stats.queues] == [("unlisted", 1), ("a", 1), ("missing", 0)]
    assert stats.queues[0].latency >= 50 and stats.queue_count == 1


def test_another_namespace(r):
    keys = Keys("myapp")
    push(r, "mail", enqueued_ago(20), keys=keys)
    push(r, "other", enqueued_ago(20))   # resque's, not ours
    (mail,) = queuestats.read(r, keys).queues
    assert mail.name == "mail" and mail.latency >= 20


def test_no_keys_command_and_one_round_trip_for_the_figures(r):
    for i in range(50):
        push(r, f"q{i}", enqueued_ago(1))
    r.config_resetstat()
    stats = queuestats.read(r, KEYS)
    assert len(stats.queues) == 50
    commands = r.info("commandstats")
    assert "cmdstat_keys" not in commands and "cmdstat_scan" not in commands
    # Every figure of every queue, and no command per queue beyond LLEN and LINDEX.
    assert commands["cmdstat_llen"]["calls"] == 51 and commands["cmdstat_lindex"]["calls"] == 50
