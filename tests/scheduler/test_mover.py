"""The move of due delayed jobs (resque/delayedmove.py), against a real Redis:
what lands in the queues, what goes to the failed list, what is skipped."""

import json
import logging

import pytest

from resqued.resque.delayedmove import Mover
from resqued.resque.keys import Keys
from resqued.scheduler.lock import MasterLock

TS = 1700000000


@pytest.fixture
def mover(r):
    return Mover(r, Keys("resque"), owner="host:1:scheduler", batch=3)


def push_raw(r, ts, *raws, index=True):
    for raw in raws:
        r.rpush(f"resque:delayed:{ts}", raw)
        if index:
            r.sadd(b"resque:timestamps:" + raw, f"delayed:{ts}")
    r.zadd("resque:delayed_queue_schedule", {str(ts): ts})


def queued(r, queue):
    return [json.loads(raw) for raw in r.lrange(f"resque:queue:{queue}", 0, -1)]


def test_due_jobs_move_in_order_with_an_id_and_the_keys_are_cleaned(r, mover):
    raws = [json.dumps({"class": "RubyJob", "args": [n, 1], "queue": "default"}).encode() for n in range(7)]
    push_raw(r, TS, *raws)
    push_raw(r, TS + 10, b'{"class":"Later","args":[],"queue":"default"}')
    assert mover.move_due(TS + 5) == 7
    jobs = queued(r, "default")
    assert [job["args"] for job in jobs] == [[n, 1] for n in range(7)]
    assert list(jobs[0]) == ["class", "args", "id", "queue_time"]
    assert len({job["id"] for job in jobs}) == 7 and all(len(job["id"]) == 32 for job in jobs)
    assert r.smembers("resque:queues") == {b"default"}
    assert not r.exists(f"resque:delayed:{TS}", *(b"resque:timestamps:" + raw for raw in raws))
    assert r.zrange("resque:delayed_queue_schedule", 0, -1) == [str(TS + 10).encode()]
    assert mover.next_due() == TS + 10


@pytest.mark.parametrize("args, expected", [('{"a":1}', [{"a": 1}]), ("null", []), ('"x"', ["x"])])
def test_args_that_are_not_a_list_become_one_as_ruby_makes_them(r, mover, args, expected):
    push_raw(r, TS, b'{"class":"J","args":%s,"queue":"q"}' % args.encode())
    assert mover.move_due(TS) == 1
    assert queued(r, "q")[0]["args"] == expected


def test_an_id_prefix_and_other_fields_a_job_carried_are_kept(r, mover):
    push_raw(r, TS, b'{"class":"J","args":[{"a":1}],"queue":"q","id":"abc","prefix":"t1","attempt":2}')
    mover.move_due(TS)
    job, = queued(r, "q")
    assert list(job) == ["class", "args", "id", "prefix", "queue_time", "attempt"]
    assert (job["id"], job["prefix"], job["attempt"]) == ("abc", "t1", 2)


@pytest.mark.parametrize("raw, why", [
    (b'{"class":"J","args":[1]', "not valid JSON"),
    (b'{"class":"J","args":[1]}', "no 'queue'"),
    (b'["J"]', "JSON list"),
    (b'\xff\xfe', "not valid JSON"),
])
def test_a_bad_payload_goes_to_the_failed_list_with_its_raw_text(r, mover, raw, why, caplog):
    push_raw(r, TS, raw, b'{"class":"Good","args":[],"queue":"q"}')
    with caplog.at_level(logging.ERROR, logger="resqued.resque"):
        assert mover.move_due(TS) == 2
    entry, = [json.loads(e) for e in r.lrange("resque:failed", 0, -1)]
    assert entry["exception"] == "resqued.InvalidPayload"
    assert why in entry["error"] and "2023-11-14T22:13:20Z" in entry["error"]
    assert entry["worker"] == "host:1:scheduler"
    if "payload" in entry and "raw" in entry["payload"]:
        assert entry["payload"]["raw"] == raw.decode(errors="backslashreplace")
    assert r.get("resque:stat:failed") == b"1"
    assert [job["class"] for job in queued(r, "q")] == ["Good"]
    assert not r.exists(f"resque:delayed:{TS}") and not r.zcard("resque:delayed_queue_schedule")
    assert why in caplog.text


def test_a_key_of_the_wrong_type_is_skipped_and_logged_once(r, mover, caplog):
    r.set(f"resque:delayed:{TS}", "not a list")
    r.zadd("resque:delayed_queue_schedule", {str(TS): TS})
    push_raw(r, TS + 1, b'{"class":"J","args":[],"queue":"q"}')
    with caplog.at_level(logging.ERROR, logger="resqued.resque"):
        assert mover.move_due(TS + 1) == 1
        assert mover.move_due(TS + 1) == 0
    assert caplog.text.count("is not a list") == 1
    assert len(queued(r, "q")) == 1
    assert r.get(f"resque:delayed:{TS}") == b"not a list"      # left as it was
    assert mover.next_due() is None                             # and not waited on


def test_a_queue_key_of_the_wrong_type_sends_its_jobs_to_the_failed_list(r, mover):
    r.set("resque:queue:q", "oops")
    push_raw(r, TS, b'{"class":"J","args":[],"queue":"q"}', b'{"class":"K","args":[],"queue":"ok"}')
    assert mover.move_due(TS) == 2
    entry, = [json.loads(e) for e in r.lrange("resque:failed", 0, -1)]
    assert "resque:queue:q is not a list" in entry["error"] and entry["payload"]["class"] == "J"
    assert [job["class"] for job in queued(r, "ok")] == ["K"]


def test_an_empty_or_missing_list_only_leaves_the_schedule(r, mover):
    r.zadd("resque:delayed_queue_schedule", {str(TS): TS})
    assert mover.move_due(TS) == 0
    assert not r.exists("resque:delayed_queue_schedule")


def test_nothing_moves_without_the_master_lock(r, mover):
    push_raw(r, TS, b'{"class":"J","args":[],"queue":"q"}')
    theirs = MasterLock(r, Keys("resque"), 60, value="otherhost:42")
    assert theirs.take()
    assert mover.move_due(TS, "myhost:1") is None
    assert r.llen(f"resque:delayed:{TS}") == 1 and not r.exists("resque:queue:q")
    ours = MasterLock(r, Keys("resque"), 60, value="myhost:1")
    assert not ours.take()
    assert theirs.release() and ours.take()
    assert mover.move_due(TS, "myhost:1") == 1


def test_the_lock_is_resque_schedulers_key_value_and_ttl(r):
    lock = MasterLock(r, Keys("resque"), 180, value="web1:4242")
    assert lock.take()
    # Ruby's key (through Redis::Namespace) and the un-doubled one older
    # redis-namespace and node-resque use; value hostname:pid; EXPIRE 180.
    for key in (b"resque:resque:resque_scheduler_master_lock", b"resque:resque_scheduler_master_lock"):
        assert r.get(key) == b"web1:4242"
        assert 178 <= r.ttl(key) <= 180
    r.delete("resque:resque_scheduler_master_lock")
    r.set("resque:resque:resque_scheduler_master_lock", "rubyhost:7", ex=180)   # a Ruby scheduler's
    assert not lock.take() and lock.holder() == "rubyhost:7"
    assert not r.exists("resque:resque_scheduler_master_lock")
    assert not lock.release() and r.get("resque:resque:resque_scheduler_master_lock") == b"rubyhost:7"


def test_a_failed_count_that_is_not_a_number_moves_nothing_twice(r, mover, caplog):
    # INCRBY fails after the good job was pushed: every check comes first.
    r.set("resque:stat:failed", "n/a")
    push_raw(r, TS, b'{"class":"Good","args":[],"queue":"q"}', b'not json')
    with caplog.at_level(logging.ERROR, logger="resqued.resque"):
        for _ in range(3):
            assert mover.move_due(TS) == 0
            mover._skipped.clear()
    assert not r.exists("resque:queue:q") and not r.exists("resque:failed")
    assert r.llen(f"resque:delayed:{TS}") == 2
    assert caplog.text.count("resque:stat:failed is not a whole number") == 1
    with pytest.raises(Exception, match="stat:failed"):
        mover.move_one(TS, b'not json')
    assert r.llen(f"resque:delayed:{TS}") == 2 and not r.exists("resque:failed")
    r.set("resque:stat:failed", "4")
    mover._skipped.clear()
    assert mover.move_due(TS) == 2
    assert len(queued(r, "q")) == 1 and r.get("resque:stat:failed") == b"5"


@pytest.mark.parametrize("member", ["²", "١٢", "12a"])
def test_a_schedule_member_that_is_not_ascii_digits_is_skipped_and_logged_once(r, mover, caplog, member):
    r.zadd("resque:delayed_queue_schedule", {member: TS - 1})
    push_raw(r, TS, b'{"class":"J","args":[],"queue":"q"}')
    with caplog.at_level(logging.ERROR, logger="resqued.resque"):
        assert mover.move_due(TS) == 1
        assert mover.move_due(TS) == 0
    assert caplog.text.count("is not a whole number of seconds") == 1
    assert len(queued(r, "q")) == 1
    assert r.zrange("resque:delayed_queue_schedule", 0, -1) == [member.encode()]


def test_a_schedule_of_the_wrong_type_stops_resquectl_delayed_run_before_it_moves(r, mover):
    # ZREM on the schedule came last, after the job was pushed: checked first now.
    push_raw(r, TS, b'{"class":"J","args":[],"queue":"q"}')
    r.delete("resque:delayed_queue_schedule")
    r.set("resque:delayed_queue_schedule", "oops")
    with pytest.raises(Exception, match="delayed_queue_schedule"):
        mover.move_one(TS, b'{"class":"J","args":[],"queue":"q"}')
    assert not r.exists("resque:queue:q") and r.llen(f"resque:delayed:{TS}") == 1
