"""Delayed jobs in the library: the keys and bytes resque-scheduler and
php-resque-scheduler write, written by resqued, and theirs read and removed.

The expected bytes are written from resque-scheduler's source (Ruby and the
gem cannot be installed here: rubygems is out of reach):
lib/resque/scheduler/delaying_extensions.rb at 786653e —
  :85-96   delayed_push: RPUSH delayed:<ts.to_i> encode(item); SADD
           timestamps:<encode(item)> "delayed:<ts.to_i>"; ZADD
           delayed_queue_schedule ts.to_i ts.to_i (all through
           Redis::Namespace, which prefixes keys but not the SADD member)
  :319-321 job_to_hash_with_queue: {class:, args:, queue:} in that order
  Resque.encode is JSON.generate: compact, '/' and non-ASCII as they are.
php-resque-scheduler lib/ResqueScheduler.php:63-70, 156-163: the same list
and schedule, json_encode (which writes '\\/' and \\uXXXX), no timestamps: set.
"""

import json
from datetime import datetime, timezone

import pytest

TS = 1800000000   # 2027-01-15T08:00:00Z


def test_enqueue_at_writes_resque_schedulers_keys_and_bytes(resque, r):
    assert resque.enqueue_at_call(TS + 0.9, "mail", "Archive", 1, "a/b", {"k": "é"}) == TS
    expected = '{"class":"Archive","args":[1,"a/b",{"k":"é"}],"queue":"mail"}'.encode()
    assert r.zrange("resque:delayed_queue_schedule", 0, -1, withscores=True) == [(str(TS).encode(), TS)]
    assert r.lrange(f"resque:delayed:{TS}", 0, -1) == [expected]
    assert r.smembers(b"resque:timestamps:" + expected) == {f"delayed:{TS}".encode()}
    assert sorted(r.keys("*")) == sorted([b"resque:delayed_queue_schedule", f"resque:delayed:{TS}".encode(),
                                          b"resque:timestamps:" + expected])


def test_php_style_args_are_one_argument_and_a_datetime_is_truncated(resque, r):
    when = datetime.fromtimestamp(TS + 0.5, timezone.utc)
    assert resque.enqueue_at(when, "default", "Mailer", {"to": "x"}) == TS
    assert r.lrange(f"resque:delayed:{TS}", 0, -1) == [b'{"class":"Mailer","args":[{"to":"x"}],"queue":"default"}']


def test_a_namespace_prefixes_keys_but_not_the_index_member(redis_url, r):
    from resqued import Resque
    client = Resque(redis_url, "app")
    client.enqueue_at_call(TS, "q", "Job")
    encoded = b'{"class":"Job","args":[],"queue":"q"}'
    assert r.smembers(b"app:timestamps:" + encoded) == {f"delayed:{TS}".encode()}
    assert r.zscore("app:delayed_queue_schedule", str(TS)) == TS
    client.redis.close()


def ruby_delayed_push(r, ts, encoded: bytes, index=True):
    """What Ruby's delayed_push sends (PHP's: without the index)."""
    r.rpush(f"resque:delayed:{ts}", encoded)
    if index:
        r.sadd(b"resque:timestamps:" + encoded, f"delayed:{ts}")
    r.zadd("resque:delayed_queue_schedule", {str(ts): ts})


def test_remove_delayed_finds_ruby_and_php_entries_and_cleans_up(resque, r):
    ruby = '{"class":"Archive","args":["a/é"],"queue":"q"}'.encode()
    php = b'{"class":"Archive","args":["a\\/\\u00e9"],"queue":"q"}'
    ruby_delayed_push(r, TS, ruby)
    ruby_delayed_push(r, TS + 5, php, index=False)
    ruby_delayed_push(r, TS + 5, b'{"class":"Other","args":[],"queue":"q"}')
    assert resque.delayed_count() == 3
    assert resque.remove_delayed_call("q", "Archive", "a/é") == 2
    assert r.exists(b"resque:timestamps:" + ruby) == 0
    assert not r.exists(f"resque:delayed:{TS}")
    # The emptied timestamp left the schedule; the other keeps its job.
    assert resque.delayed_timestamps() == [(TS + 5, 1)]
    assert resque.delayed_count() == 1


def test_what_resqued_writes_ruby_can_remove(resque, r):
    """Ruby's remove_delayed (delaying_extensions.rb:160-163, 325-342):
    SMEMBERS timestamps:<encode(job_to_hash)>, LREM 0 from each list."""
    resque.enqueue_at_call(TS, "q", "Archive", 7, "x/y")
    search = b'{"class":"Archive","args":[7,"x/y"],"queue":"q"}'
    removed = 0
    for member in r.smembers(b"resque:timestamps:" + search):
        removed += r.lrem(b"resque:" + member, 0, search)
        r.srem(b"resque:timestamps:" + search, member)
    assert removed == 1


def test_remove_delayed_at_only_touches_that_timestamp(resque):
    resque.enqueue_at(TS, "q", "J", [1])
    resque.enqueue_at(TS + 1, "q", "J", [1])
    assert resque.remove_delayed_at(TS + 1, "q", "J", [1]) == 1
    assert resque.delayed_timestamps() == [(TS, 1)]


def test_peek_and_next_timestamp(resque, r):
    resque.enqueue_at(TS, "q", "J", {"n": 1})
    r.rpush(f"resque:delayed:{TS}", b"not json")
    assert resque.delayed_at(TS) == [{"class": "J", "args": [{"n": 1}], "queue": "q"},
                                     {"class": None, "args": [], "raw": "not json"}]
    assert resque.next_delayed_timestamp() is None
    assert resque.next_delayed_timestamp(TS) == TS


@pytest.mark.parametrize("when", [float("nan"), "soon", -5, None])
def test_bad_times_are_refused(resque, when):
    with pytest.raises(ValueError, match="invalid time"):
        resque.enqueue_at(when, "q", "J")


def test_bad_queue_class_and_args_are_refused(resque, r):
    with pytest.raises(ValueError, match="queue"):
        resque.enqueue_at(TS, "a,b", "J")
    with pytest.raises(ValueError, match="class"):
        resque.enqueue_at(TS, "q", "")
    with pytest.raises(ValueError, match="JSON"):
        resque.enqueue_at_call(TS, "q", "J", float("nan"))
    with pytest.raises(ValueError, match="delay"):
        resque.enqueue_in("5", "q", "J")
    assert r.keys("*") == []


def test_enqueue_in_counts_from_now(resque):
    import time
    before = int(time.time())
    ts = resque.enqueue_in(100, "q", "J")
    assert before + 100 <= ts <= int(time.time()) + 100
    assert json.loads(json.dumps(resque.delayed_at(ts))) == [{"class": "J", "args": [None], "queue": "q"}]


def test_a_schedule_of_the_wrong_type_refuses_enqueue_at_before_writing(resque, r):
    # A MULTI went on past the failing ZADD: the job sat in a list no scheduler reads.
    r.set("resque:delayed_queue_schedule", "oops")
    with pytest.raises(ValueError, match="resque:delayed_queue_schedule is not a zset"):
        resque.enqueue_at(1700000000, "default", "Job", [1])
    assert not r.exists("resque:delayed:1700000000")
