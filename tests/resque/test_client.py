"""The library client (resqued.resque.client.Resque), the failure backend and the
connection helpers, against a real redis-server."""

import json
import re
import time

import pytest

from resqued import Resque
from resqued.jobs import events
from resqued.resque import wire
from resqued.config.redisurl import BadRedisURL, normalize_url, redact
from resqued.redisio.connection import connect
from resqued.resque.failures import FailureError
from resqued.resque.keys import Keys

HEX32 = re.compile(r"^[0-9a-f]{32}$")


def queue_items(r, queue, namespace="resque"):
    return [json.loads(raw) for raw in r.lrange(Keys(namespace).queue(queue), 0, -1)]


def raw_items(r, queue):
    return r.lrange(f"resque:queue:{queue}", 0, -1)


def queue_items_tail(r, queue):
    return json.loads(raw_items(r, queue)[-1])["class"]


# -- enqueue (php-resque semantics) ---------------------------------------------

class TestEnqueue:
    @pytest.mark.parametrize("args, stored", [
        ({"n": 1, "s": "hello"}, [{"n": 1, "s": "hello"}]),
        ([1, 2, 3], [[1, 2, 3]]),
        ((1, 2), [[1, 2]]),
        (None, [None]),
        ([], [[]]),
        ({}, [{}]),
    ])
    def test_args_are_wrapped_in_a_one_element_list(self, resque, r, args, stored):
        resque.enqueue("q", "MailJob", args)
        (item,) = queue_items(r, "q")
        assert item["args"] == stored

    def test_args_default_to_null(self, resque, r):
        resque.enqueue("q", "MailJob")
        assert queue_items(r, "q")[0]["args"] == [None]

    @pytest.mark.parametrize("args", ["a string", 42, 1.5, True, b"bytes", {1, 2}])
    def test_non_array_args_are_rejected(self, resque, r, args):
        with pytest.raises(ValueError, match="dict, a list or None"):
            resque.enqueue("q", "MailJob", args)
        assert r.keys("*") == []

    def test_payload_field_order_and_types(self, resque, r):
        before = time.time()
        job_id = resque.enqueue("q", "MailJob", {"to": "a@b"})
        after = time.time()
        (raw,) = raw_items(r, "q")
        pairs = json.loads(raw, object_pairs_hook=list)
        assert [k for k, _ in pairs] == ["class", "args", "id", "queue_time"]
        item = dict(pairs)
        assert item["class"] == "MailJob"
        assert item["id"] == job_id
        assert HEX32.match(job_id)
        assert isinstance(item["queue_time"], float)
        assert before <= item["queue_time"] <= after
        # Compact, PHP-style: no spaces.
        assert b": " not in raw and b", " not in raw

    def test_ids_are_unique(self, resque):
        ids = {resque.enqueue("q", "MailJob") for _ in range(200)}
        assert len(ids) == 200 and all(HEX32.match(i) for i in ids)

    def test_fifo_and_queues_set(self, resque, r):
        resque.enqueue("a", "J", {"n": 1})
        resque.enqueue("a", "J", {"n": 2})
        resque.enqueue("b", "J", {"n": 3})
        assert [i["args"][0]["n"] for i in queue_items(r, "a")] == [1, 2]
        assert r.smembers("resque:queues") == {b"a", b"b"}
        assert resque.queues() == ["a", "b"]

    def test_tracked_status_record(self, resque, r):
        before = int(time.time())
        job_id = resque.enqueue("q", "MailJob", {"x": 1}, track_status=True)
        after = int(time.time())
        key = f"resque:job:{job_id}:status"
        raw = r.get(key)
        pairs = json.loads(raw, object_pairs_hook=list)
        assert [k for k, _ in pairs] == ["status", "updated", "started"]
        record = dict(pairs)
        assert record["status"] == 1
        assert isinstance(record["updated"], int) and before <= record["updated"] <= after
        assert record["started"] == record["updated"]
        assert r.ttl(key) == -1  # no TTL while waiting (php-resque)

    def test_untracked_job_has_no_status_key(self, resque, r):
        job_id = resque.enqueue("q", "MailJob", {"x": 1})
        assert r.exists(f"resque:job:{job_id}:status") == 0
        assert r.keys("resque:job:*") == []
        assert resque.status(job_id) is None

    def test_namespace(self, redis_url, r):
        client = Resque(redis_url, "myapp")
        try:
            client.enqueue("q", "J")
        finally:
            client.redis.close()
        assert sorted(r.keys("*")) == [b"myapp:queue:q", b"myapp:queues"]


class TestEnqueueCall:
    def test_ruby_style_args_are_verbatim(self, resque, r):
        resque.enqueue_call("q", "GoodJob", 1, "two", {"three": 3})
        (item,) = queue_items(r, "q")
        assert item["args"] == [1, "two", {"three": 3}]
        assert list(item) == ["class", "args", "id", "queue_time"]

    def test_no_args(self, resque, r):
        resque.enqueue_call("q", "GoodJob")
        assert queue_items(r, "q")[0]["args"] == []

    def test_single_list_arg_is_not_unwrapped(self, resque, r):
        resque.enqueue_call("q", "GoodJob", [1, 2])
        assert queue_items(r, "q")[0]["args"] == [[1, 2]]

    def test_scalar_args_are_fine_here(self, resque, r):
        resque.enqueue_call("q", "GoodJob", "x", 2.5, None, True)
        assert queue_items(r, "q")[0]["args"] == ["x", 2.5, None, True]

    def test_track_status(self, resque, r):
        job_id = resque.enqueue_call("q", "GoodJob", 1, track_status=True)
        assert resque.status(job_id)["code"] == 1


class TestEnqueueValidation:
    @pytest.mark.parametrize("queue", ["", "a,b", "a b", " q", "q\t", "a\nb", "a\rb", "a\x0bb",
                                       "a\x0cb", "a\u00a0b", None, 5])
    def test_invalid_queue_names(self, resque, r, queue):
        with pytest.raises(ValueError, match="invalid queue name"):
            resque.enqueue(queue, "MailJob", {})
        with pytest.raises(ValueError, match="invalid queue name"):
            resque.enqueue_call(queue, "MailJob")
        assert r.keys("*") == []

    @pytest.mark.parametrize("job_class", ["", "   ", None, 42, b"MailJob"])
    def test_invalid_class(self, resque, r, job_class):
        with pytest.raises(ValueError, match="invalid job class"):
            resque.enqueue("q", job_class, {})
        assert r.keys("*") == []

    @pytest.mark.parametrize("args", [
        {"when": object()},
        {"s": {1, 2}},
        {"b": b"bytes"},
        {"nan": float("nan")},   # NaN/Infinity are not JSON: PHP and Ruby could not decode it
        {"inf": float("inf")},
        [float("-inf")],
    ])
    def test_non_json_args_name_the_class(self, resque, r, args):
        with pytest.raises(ValueError, match="MailJob"):
            resque.enqueue("q", "MailJob", args)
        assert r.keys("*") == []

    def test_circular_args(self, resque, r):
        loop = []
        loop.append(loop)
        with pytest.raises(ValueError, match="MailJob"):
            resque.enqueue("q", "MailJob", loop)
        assert r.keys("*") == []

    def test_non_json_ruby_args(self, resque, r):
        with pytest.raises(ValueError, match="GoodJob"):
            resque.enqueue_call("q", "GoodJob", object())
        assert r.keys("*") == []


class TestEnqueueEvents:
    def test_before_and_after_enqueue(self, resque, r):
        seen = []
        events.listen("beforeEnqueue", lambda *a: seen.append(("before", *a, r.llen("resque:queue:q"))))
        events.listen("after_enqueue", lambda *a: seen.append(("after", *a, r.llen("resque:queue:q"))))
        job_id = resque.enqueue("q", "MailJob", {"to": "x"})
        assert seen == [("before", "MailJob", {"to": "x"}, "q", job_id, 0),
                        ("after", "MailJob", {"to": "x"}, "q", job_id, 1)]

    def test_ruby_style_listeners_get_the_arg_list(self, resque):
        seen = []
        events.listen("beforeEnqueue", lambda cls, args, queue, job_id: seen.append(args))
        resque.enqueue_call("q", "GoodJob", 1, 2)
        resque.enqueue_call("q", "GoodJob", 5)
        resque.enqueue_call("q", "GoodJob")
        # Always the whole argument list, whatever its length.
        assert seen == [[1, 2], [5], []]

    def test_dont_create_cancels(self, resque, r):
        after = []

        def veto(job_class, args, queue, job_id):
            if args.get("skip"):
                raise events.DontCreate()

        events.listen("beforeEnqueue", veto)
        events.listen("afterEnqueue", lambda *a: after.append(a))
        assert resque.enqueue("q", "MailJob", {"skip": True}, track_status=True) is None
        assert r.keys("*") == []
        assert after == []
        assert resque.enqueue("q", "MailJob", {"skip": False}) is not None
        assert resque.size("q") == 1 and len(after) == 1

    def test_other_listener_errors_propagate(self, resque, r):
        def boom(*a):
            raise RuntimeError("listener broke")

        events.listen("beforeEnqueue", boom)
        with pytest.raises(RuntimeError, match="listener broke"):
            resque.enqueue("q", "MailJob", {})
        assert r.keys("*") == []


# -- dequeue --------------------------------------------------------------------

@pytest.fixture
def dq(resque):
    """php-resque's dequeue scenario (30_dequeue_before): ids by letter."""
    ids = {
        "A1": resque.enqueue("dq", "GoldenOk", {"a": 1}),
        "A2": resque.enqueue("dq", "GoldenOk", {"a": 2}),
        "B1": resque.enqueue("dq", "GoldenFail", {"a": 1}),
        "A3": resque.enqueue("dq", "GoldenOk", {"b": 1}),
        "B2": resque.enqueue("dq", "GoldenFail", None),
        "C1": resque.enqueue("dq", "GoldenSetup", None),
        "A4": resque.enqueue("dq", "GoldenOk", {"a": 1, "c": 2}),
        "A5": resque.enqueue("dq", "GoldenOk", None),
    }
    resque.enqueue("keep", "GoldenOk", {"a": 1})
    return ids


def remaining(r, ids, queue="dq"):
    by_id = {v: k for k, v in ids.items()}
    return [by_id[item["id"]] for item in queue_items(r, queue)]


class TestDequeue:
    def test_by_class(self, resque, r, dq):
        assert resque.dequeue("dq", ["GoldenFail"]) == 2
        assert remaining(r, dq) == ["A1", "A2", "A3", "C1", "A4", "A5"]
        assert resque.size("keep") == 1

    def test_by_class_and_id(self, resque, r, dq):
        assert resque.dequeue("dq", [{"GoldenOk": dq["A2"]}]) == 1
        assert remaining(r, dq) == ["A1", "B1", "A3", "B2", "C1", "A4", "A5"]

    def test_id_of_another_class_does_not_match(self, resque, r, dq):
        assert resque.dequeue("dq", [{"GoldenFail": dq["A2"]}]) == 0
        assert len(remaining(r, dq)) == 8

    def test_by_args_is_exact(self, resque, r, dq):
        # php-resque compares only the values, so it also removed {"b": 1}.
        assert resque.dequeue("dq", [{"GoldenOk": {"a": 1}}]) == 1
        assert remaining(r, dq) == ["A2", "B1", "A3", "B2", "C1", "A4", "A5"]

    def test_by_args_ignores_key_order(self, resque, r, dq):
        assert resque.dequeue("dq", [{"GoldenOk": {"c": 2, "a": 1}}]) == 1
        assert "A4" not in remaining(r, dq)

    def test_by_null_args(self, resque, r, dq):
        assert resque.dequeue("dq", [{"GoldenFail": None}]) == 1
        assert remaining(r, dq) == ["A1", "A2", "B1", "A3", "C1", "A4", "A5"]

    def test_by_list_args_given_as_a_tuple(self, resque, r):
        resque.enqueue("q", "J", [1, 2])
        resque.enqueue("q", "J", [1, 3])
        assert resque.dequeue("q", [{"J": (1, 2)}]) == 1
        assert [i["args"] for i in queue_items(r, "q")] == [[[1, 3]]]

    def test_several_items(self, resque, r, dq):
        assert resque.dequeue("dq", ["GoldenSetup", {"GoldenOk": dq["A5"]}, {"GoldenOk": {"a": 2}}]) == 3
        assert remaining(r, dq) == ["A1", "B1", "A3", "B2", "A4"]

    def test_php_style_assoc_array(self, resque, r, dq):
        # php: Resque::dequeue('dq', ['GoldenOk' => $id]). A dict must not be
        # taken as a list of class names (which would drop every GoldenOk).
        assert resque.dequeue("dq", {"GoldenOk": dq["A2"], "GoldenSetup": dq["C1"]}) == 2
        assert remaining(r, dq) == ["A1", "B1", "A3", "B2", "A4", "A5"]

    def test_a_bare_string_is_one_class(self, resque, r, dq):
        assert resque.dequeue("dq", "GoldenFail") == 2
        assert "B1" not in remaining(r, dq)

    def test_no_match(self, resque, r, dq):
        assert resque.dequeue("dq", ["Nope", {"GoldenOk": "0" * 32}]) == 0
        assert len(remaining(r, dq)) == 8

    def test_whole_queue(self, resque, r, dq):
        assert resque.dequeue("dq") == 8
        assert resque.dequeue("dq", []) == 0
        assert r.exists("resque:queue:dq") == 0
        assert b"dq" in r.smembers("resque:queues")  # the name stays (php-resque)
        assert resque.size("keep") == 1

    def test_status_keys_are_left_alone(self, resque, r):
        job_id = resque.enqueue("q", "J", {}, track_status=True)
        assert resque.dequeue("q", ["J"]) == 1
        assert resque.status(job_id)["code"] == 1

    def test_undecodable_items_are_kept(self, resque, r):
        resque.enqueue("q", "J", {"n": 1})
        r.rpush("resque:queue:q", b"not json", b"\xff\xfe", b"[1,2]", b'{"class":"J"')
        resque.enqueue("q", "J", {"n": 2})
        resque.enqueue("q", "K", {"n": 3})
        assert resque.dequeue("q", ["J"]) == 2
        assert raw_items(r, "q")[:4] == [b"not json", b"\xff\xfe", b"[1,2]", b'{"class":"J"']
        assert queue_items_tail(r, "q") == "K"
        assert resque.dequeue("q") == 5

    def test_across_page_boundaries(self, resque, r):
        pipe = r.pipeline(transaction=False)
        for n in range(2500):
            pipe.rpush("resque:queue:big", wire.dumps(wire.payload("Odd" if n % 2 else "Even", [n], f"{n:032x}")))
        pipe.execute()
        assert resque.dequeue("big", ["Odd"]) == 1250
        assert [i["args"][0] for i in queue_items(r, "big")] == list(range(0, 2500, 2))

    @pytest.mark.parametrize("item", [42, {"A": 1, "B": 2}, {}, ["J"]])
    def test_bad_items(self, resque, dq, item):
        with pytest.raises(ValueError, match="dequeue item"):
            resque.dequeue("dq", [item])

    def test_bad_queue_name(self, resque):
        with pytest.raises(ValueError):
            resque.dequeue("a,b", ["J"])


# -- queues, size, peek, remove_queue ---------------------------------------------

class TestQueues:
    def test_size(self, resque):
        assert resque.size("q") == 0
        resque.enqueue("q", "J")
        resque.enqueue("q", "J")
        assert resque.size("q") == 2

    def test_peek(self, resque):
        ids = [resque.enqueue("q", "J", {"n": n}) for n in range(5)]
        assert [p["id"] for p in resque.peek("q")] == ids[:1]
        assert [p["id"] for p in resque.peek("q", 1, 3)] == ids[1:4]
        assert [p["args"] for p in resque.peek("q", 3, 10)] == [[{"n": 3}], [{"n": 4}]]
        assert resque.peek("q", 10, 5) == []
        assert resque.peek("empty") == []
        assert resque.size("q") == 5  # nothing removed

    @pytest.mark.parametrize("raw, text", [
        (b"not json", "not json"),
        (b"[1,2]", "[1,2]"),
        (b'{"args":[]}', '{"args":[]}'),
        (b'{"class":"J","args":"x"}', '{"class":"J","args":"x"}'),
        (b"\xff\xfe", "\\xff\\xfe"),
    ])
    def test_peek_malformed_item(self, resque, r, raw, text):
        r.rpush("resque:queue:q", raw)
        resque.enqueue("q", "J")
        bad, good = resque.peek("q", 0, 2)
        assert bad == {"class": None, "args": [], "raw": text}
        assert good["class"] == "J"

    def test_remove_queue(self, resque, r):
        resque.enqueue("gone", "J")
        resque.enqueue("gone", "J")
        resque.enqueue("stay", "J")
        assert resque.remove_queue("gone") == 2
        assert resque.queues() == ["stay"]
        assert r.exists("resque:queue:gone") == 0
        assert resque.remove_queue("gone") == 0
        assert resque.remove_queue("never") == 0

    def test_remove_queue_forgets_an_empty_queue_name(self, resque):
        resque.enqueue("q", "J")
        resque.dequeue("q")
        assert resque.queues() == ["q"]
        assert resque.remove_queue("q") == 0
        assert resque.queues() == []

    def test_push_payload(self, resque, r):
        payload = wire.payload("J", [{"a": "/x"}], "f" * 32, 123.5)
        resque.push_payload("q", payload)
        assert raw_items(r, "q") == [b'{"class":"J","args":[{"a":"\\/x"}],"id":"' + b"f" * 32
                                     + b'","queue_time":123.5}']
        assert resque.queues() == ["q"]
        with pytest.raises(ValueError):
            resque.push_payload("", payload)


# -- job status ------------------------------------------------------------------

class TestStatus:
    def test_status_and_stop_tracking(self, resque):
        job_id = resque.enqueue("q", "J", {}, track_status=True)
        status = resque.status(job_id)
        assert status["status"] == "waiting" and status["code"] == 1
        assert status["updated"] == status["started"]
        assert resque.stop_tracking(job_id) is True
        assert resque.status(job_id) is None
        assert resque.stop_tracking(job_id) is False

    @pytest.mark.parametrize("code, name", [(1, "waiting"), (2, "running"), (3, "failed"),
                                            (4, "complete"), (9, "unknown")])
    def test_codes(self, resque, r, code, name):
        r.set("resque:job:abc:status", wire.status_record(code, ts=1000))
        assert resque.status("abc") == {"status": name, "code": code, "updated": 1000}

    @pytest.mark.parametrize("raw", [b"garbage", b"[1]", b"5", b'"x"', b"{}", b'{"status":"abc"}',
                                     b'{"status":null}', b"\xff"])
    def test_garbage_status(self, resque, r, raw):
        r.set("resque:job:abc:status", raw)
        status = resque.status("abc")
        assert status["status"] == "unknown" and status["code"] is None
        assert isinstance(status["raw"], str)


# -- workers and stats -----------------------------------------------------------

class TestWorkersAndStats:
    def test_no_workers(self, resque):
        assert resque.workers() == []
        assert resque.worker_ids() == []

    def test_hand_made_registrations(self, resque, r):
        busy, idle = "vm:4077:golden", "vm:4100:high,low"
        working = wire.working_on("golden", {"class": "SlowJob", "args": [3]}, ts=0)
        r.sadd("resque:workers", busy, idle)
        r.set(f"resque:worker:{busy}", working)
        r.set(f"resque:worker:{busy}:started", "2026-11-22 02:24:52 +0000")
        r.set(f"resque:worker:{idle}:started", "2026-11-22 02:25:00 +0000")
        r.set(f"resque:stat:processed:{busy}", 4)
        r.set(f"resque:stat:failed:{busy}", 1)
        r.hset("resque:workers:heartbeat", busy, "2026-11-22T02:24:52+00:00")
        assert resque.worker_ids() == [busy, idle]
        w_busy, w_idle = resque.workers()
        assert w_busy == {
            "id": busy, "host": "vm", "pid": 4077, "queues": ["golden"], "state": "busy",
            "since": "1970-01-01T00:00:00Z",
            "job": {"queue": "golden", "run_at": "1970-01-01T00:00:00Z",
                    "payload": {"class": "SlowJob", "args": [3]}},
            "started": "2026-11-22T02:24:52Z", "heartbeat": "2026-11-22T02:24:52Z",
            "processed": 4, "failed": 1,
        }
        assert w_idle["state"] == "idle" and w_idle["job"] is None and w_idle["since"] is None
        assert w_idle["started"] == "2026-11-22T02:25:00Z"
        assert w_idle["queues"] == ["high", "low"] and w_idle["pid"] == 4100
        assert w_idle["heartbeat"] is None
        assert (w_idle["processed"], w_idle["failed"]) == (0, 0)

    def test_odd_registrations(self, resque, r):
        r.sadd("resque:workers", "justahost", "h:notapid:q", "h:1:*")
        r.set("resque:worker:h:1:*", b"{broken")
        workers = {w["id"]: w for w in resque.workers()}
        assert workers["justahost"]["pid"] is None
        assert workers["h:notapid:q"]["pid"] is None
        assert workers["h:1:*"]["queues"] == ["*"]
        assert workers["h:1:*"]["state"] == "busy" and workers["h:1:*"]["since"] is None
        assert workers["h:1:*"]["job"] == {"raw": "{broken"}

    def test_stats(self, resque, r):
        assert resque.stats() == {"processed": 0, "failed": 0, "pending": 0, "queues": {},
                                  "workers": 0, "failures": 0}
        resque.enqueue("a", "J")
        resque.enqueue("a", "J")
        resque.enqueue("b", "J")
        resque.dequeue("b")
        r.set("resque:stat:processed", 9)
        r.set("resque:stat:failed", 2)
        r.sadd("resque:workers", "vm:1:a", "vm:2:b")
        r.rpush("resque:failed", "{}", "{}")
        assert resque.stats() == {"processed": 9, "failed": 2, "pending": 2, "queues": {"a": 2, "b": 0},
                                  "workers": 2, "failures": 2}


# -- failure backend -------------------------------------------------------------

def add_failure(r, payload, queue="q", exception="RuntimeError", error="boom", worker="vm:1:q"):
    r.rpush("resque:failed", wire.failure_record(payload, exception, error, ["jobs.py:3:in `perform'"],
                                                 worker, queue))


class TestFailureBackend:
    def test_empty(self, resque):
        f = resque.failures
        assert f.count() == 0 and f.all() == [] and f.clear() == 0
        with pytest.raises(FailureError, match="no failure at index 0"):
            f.get(0)
        with pytest.raises(FailureError):
            f.remove(0)

    def test_all_get_count(self, resque, r):
        for n in range(5):
            add_failure(r, wire.payload("J", [{"n": n}], f"{n:032x}"), error=f"e{n}")
        r.rpush("resque:failed", b"\xffjunk", b"[1]")
        f = resque.failures
        assert f.count() == 7
        entries = f.all()
        assert [e["index"] for e in entries] == list(range(7))
        assert [e.get("error") for e in entries[:5]] == ["e0", "e1", "e2", "e3", "e4"]
        assert entries[5]["raw"] == "\\xffjunk" and entries[5]["exception"] is None
        assert entries[6]["raw"] == "[1]"
        assert [e["index"] for e in f.all(2, 2)] == [2, 3]
        assert f.get(3)["payload"]["args"] == [{"n": 3}]
        assert f.get(3)["index"] == 3
        with pytest.raises(FailureError, match="there are 7"):
            f.get(7)

    def test_requeue_tracked(self, resque, r):
        job_id = resque.enqueue("q", "MailJob", {"to": "x"}, track_status=True)
        payload = json.loads(r.lpop("resque:queue:q"))
        r.set(f"resque:job:{job_id}:status", wire.status_record(wire.STATUS_FAILED), ex=wire.STATUS_TTL)
        add_failure(r, payload)
        stored = resque.failures.requeue(0)
        assert HEX32.match(job_id)
        assert re.match(r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}$", stored["retried_at"])
        # The entry keeps its fields in order and gains retried_at at the end.
        entry = json.loads(r.lindex("resque:failed", 0), object_pairs_hook=list)
        assert [k for k, _ in entry] == ["failed_at", "payload", "exception", "error", "backtrace",
                                         "worker", "queue", "retried_at"]
        assert "index" not in dict(entry)
        # Same payload, same id, back on its queue.
        assert queue_items(r, "q") == [payload]
        status = resque.status(job_id)
        assert status["code"] == 1 and "started" in status
        assert r.ttl(f"resque:job:{job_id}:status") == -1
        assert resque.failures.count() == 1  # requeue keeps the entry (resque-web does too)

    def test_requeue_untracked_stays_untracked(self, resque, r):
        resque.enqueue("q", "MailJob", {})
        payload = json.loads(r.lpop("resque:queue:q"))
        add_failure(r, payload)
        resque.failures.requeue(0)
        assert r.keys("resque:job:*") == []
        assert queue_items(r, "q") == [payload]

    def test_requeue_to_another_queue(self, resque, r):
        payload = {"class": "GoodJob", "args": [1]}  # a Ruby payload: no id
        add_failure(r, payload, queue="golden")
        resque.failures.requeue(0, queue="retry")
        assert queue_items(r, "retry") == [payload]
        assert resque.size("golden") == 0
        assert "retry" in resque.queues()

    def test_requeue_refuses_raw_payloads(self, resque, r):
        add_failure(r, wire.raw_payload_record(b"not json"))
        r.rpush("resque:failed", b"undecodable entry")
        add_failure(r, "a string payload")
        before = r.lrange("resque:failed", 0, -1)
        for index in range(3):
            with pytest.raises(FailureError):
                resque.failures.requeue(index)
        assert r.lrange("resque:failed", 0, -1) == before
        assert resque.queues() == []

    def test_requeue_needs_a_queue(self, resque, r):
        r.rpush("resque:failed", wire.dumps({"payload": {"class": "J", "args": []}}))
        with pytest.raises(FailureError, match="names no queue"):
            resque.failures.requeue(0)
        resque.failures.requeue(0, queue="q")
        assert resque.size("q") == 1

    def test_remove_by_index(self, resque, r):
        for n in range(4):
            add_failure(r, {"class": "J", "args": [n]})
        resque.failures.remove(1)
        assert [e["payload"]["args"] for e in resque.failures.all()] == [[0], [2], [3]]
        resque.failures.remove(-1)
        assert [e["payload"]["args"] for e in resque.failures.all()] == [[0], [2]]
        with pytest.raises(FailureError, match="there are 2"):
            resque.failures.remove(5)

    def test_clear(self, resque, r):
        for n in range(3):
            add_failure(r, {"class": "J", "args": [n]})
        assert resque.failures.clear() == 3
        assert resque.failures.count() == 0 and r.exists("resque:failed") == 0


# -- connection ------------------------------------------------------------------

class TestNormalizeUrl:
    @pytest.mark.parametrize("backend, db, url", [
        (None, None, "redis://127.0.0.1:6379/0"),
        ("", None, "redis://127.0.0.1:6379/0"),
        ("localhost:6380", None, "redis://localhost:6380"),
        ("localhost", None, "redis://localhost:6379"),
        (" localhost:6380 ", None, "redis://localhost:6380"),
        ("localhost:6380", 3, "redis://localhost:6380/3"),
        ("localhost:6380", "3", "redis://localhost:6380/3"),
        ("localhost:6380", 0, "redis://localhost:6380/0"),
        ("localhost:6380", "", "redis://localhost:6380"),
        ("redis://h:1/2", None, "redis://h:1/2"),
        ("redis://h:1/2", 5, "redis://h:1/5"),
        ("redis://:pw@h:1/2?socket_timeout=3", 5, "redis://:pw@h:1/5?socket_timeout=3"),
        ("rediss://user:pw@h:6380/0", None, "rediss://user:pw@h:6380/0"),
        ("rediss://h:6380", 1, "rediss://h:6380/1"),
        ("unix:///tmp/r.sock", None, "unix:///tmp/r.sock"),
        ("unix:///tmp/r.sock", 2, "unix:///tmp/r.sock?db=2"),
        ("unix:///tmp/r.sock?db=1&password=x", 2, "unix:///tmp/r.sock?password=x&db=2"),
    ])
    def test_forms(self, backend, db, url):
        assert normalize_url(backend, db) == url

    @pytest.mark.parametrize("backend, db, message", [
        (":6379", None, "no host"),
        ("localhost:abc", None, "not a number"),
        ("localhost:-1", None, "not a number"),
        ("http://h:1", None, "scheme"),
        ("h:1", "x", "not a number"),
        ("h:1", -1, "not a number"),
    ])
    def test_bad(self, backend, db, message):
        with pytest.raises(BadRedisURL, match=message):
            normalize_url(backend, db)

    def test_bad_scheme_message_hides_the_password(self):
        with pytest.raises(BadRedisURL) as info:
            normalize_url("http://user:s3cret@h:1/0")
        assert "s3cret" not in str(info.value)

    @pytest.mark.parametrize("url", ["redis://h:abc/0", "redis://h:99999/0"])
    def test_bad_port_in_url(self, url):
        with pytest.raises(BadRedisURL, match="redis URL"):
            connect(url)
        with pytest.raises(BadRedisURL):
            Resque(url)

    def test_bad_port_message_hides_the_password(self):
        with pytest.raises(BadRedisURL) as info:
            connect("redis://:s3cret@h:abc/0")
        assert "s3cret" not in str(info.value)

    def test_client_uses_the_db(self, redis_server, r):
        client = Resque(redis_server.url, db=3)
        try:
            assert client.redis.connection_pool.connection_kwargs["db"] == 3
            client.enqueue("q", "J")
        finally:
            client.redis.close()
        assert r.keys("*") == []  # db 0 untouched
        other = connect(normalize_url(redis_server.url, 3))
        try:
            assert other.llen("resque:queue:q") == 1
        finally:
            other.close()


class TestRedact:
    @pytest.mark.parametrize("url, redacted", [
        ("redis://user:secret@h:6379/0", "redis://user:***@h:6379/0"),
        ("redis://:secret@h", "redis://:***@h"),
        ("rediss://:secret@h:6380/1", "rediss://:***@h:6380/1"),
        ("redis://u:p@ss@h:6379/0", "redis://u:***@h:6379/0"),          # a raw '@' in the password
        ("unix:///tmp/s.sock?db=0&password=secret", "unix:///tmp/s.sock?db=0&password=***"),
        ("unix:///tmp/s.sock?password=secret&db=0", "unix:///tmp/s.sock?password=***&db=0"),
        ("redis://h:6379/0?password=a@b", "redis://h:6379/0?password=***"),
        ("redis://h:6379?password=a@b", "redis://h:6379?password=***"),
        ("redis://user@h:6379/0", "redis://user@h:6379/0"),
        ("redis://h:6379/0", "redis://h:6379/0"),
        ("unix:///tmp/s.sock", "unix:///tmp/s.sock"),
        ("localhost:6379", "localhost:6379"),
    ])
    def test_redact(self, url, redacted):
        assert redact(url) == redacted

    def test_repr_of_client(self, redis_server):
        client = Resque(redis_server.url + "?password=hunter2", "myapp")
        try:
            text = repr(client)
        finally:
            client.redis.close()
        assert "hunter2" not in text and "password=***" in text and "myapp" in text


def test_enqueue_many_pushes_in_order_with_ids_and_status(resque, r):
    from resqued.jobs import events
    ids = resque.enqueue_many("bulk", "PhpJob", [{"n": i} for i in range(2500)], track_status=True, batch=1000)
    assert len(ids) == 2500 and len(set(ids)) == 2500
    items = [json.loads(x) for x in r.lrange("resque:queue:bulk", 0, -1)]
    assert [i["args"] for i in items] == [[{"n": n}] for n in range(2500)]
    assert [i["id"] for i in items] == ids and list(items[0]) == ["class", "args", "id", "queue_time"]
    assert json.loads(r.get(f"resque:job:{ids[-1]}:status"))["status"] == 1
    assert r.smembers("resque:queues") == {b"bulk"}

    def skip_odd(job_class, args, queue, job_id):
        if args["n"] % 2:
            raise events.DontCreate()

    events.listen("beforeEnqueue", skip_odd)
    ids = resque.enqueue_many("bulk2", "PhpJob", [{"n": i} for i in range(4)])
    assert ids[1] is None and ids[3] is None and r.llen("resque:queue:bulk2") == 2
    with pytest.raises(ValueError, match="must be a dict"):
        resque.enqueue_many("bulk3", "PhpJob", ["no"])
    assert r.llen("resque:queue:bulk3") == 0  # nothing half-pushed


def test_direct_execute_returns_raw_replies_in_one_round_trip(r):
    from resqued.redisio import direct
    assert direct.execute(r, [("SET", "t:a", "1"), ("INCRBY", "t:a", 2), ("GET", "t:a")]) == [b"OK", 3, b"3"]
    assert direct.execute(r, [("RPUSH", "t:l", "x"), ("LMOVE", "t:l", "t:m", "LEFT", "RIGHT")],
                          transaction=True) == [1, b"x"]


def test_direct_execute_raises_error_replies_and_leaves_the_connection_in_step(r):
    import redis
    from resqued.redisio import direct
    r.set("t:string", "v")
    # An error in the middle: the commands around it still ran (as in redis-py),
    # and the next call on the same pooled connection reads its own replies.
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        direct.execute(r, [("SET", "t:before", "1"), ("LPUSH", "t:string", "x"), ("SET", "t:after", "1")])
    assert r.mget("t:before", "t:after") == [b"1", b"1"]
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        direct.execute(r, [("INCRBY", "t:n", 1), ("LPUSH", "t:string", "x")], transaction=True)
    assert r.get("t:n") == b"1"
    # A command the server refuses to queue aborts the whole transaction.
    with pytest.raises(redis.ResponseError, match="EXECABORT|discarded|wrong number"):
        direct.execute(r, [("INCRBY", "t:n", 1), ("SET", "t:only-key")], transaction=True)
    assert r.get("t:n") == b"1"
    assert direct.execute(r, [("GET", "t:n")]) == [b"1"]


def _clients(r, name):
    return [c for c in r.client_list() if c.get("name") == name]


def test_enqueue_keeps_one_connection_per_thread_and_gives_it_back_when_the_thread_ends(redis_url, r):
    import threading
    resque = Resque(redis=connect(redis_url, client_name="held-test"))
    for i in range(20):  # one thread after another: each one's connection goes back to the pool
        thread = threading.Thread(target=lambda i=i: [resque.enqueue("held", "Job", {"i": i, "n": n})
                                                      for n in range(3)])
        thread.start()
        thread.join()
    assert len(_clients(r, "held-test")) == 1
    together = [threading.Thread(target=lambda: resque.enqueue("held", "Job", {"t": 1})) for _ in range(4)]
    for thread in together:
        thread.start()
    for thread in together:
        thread.join()
    assert r.llen("resque:queue:held") == 64
    assert len(_clients(r, "held-test")) <= 4


def test_enqueue_in_a_forked_child_uses_its_own_connection(resque, r):
    import os
    resque.enqueue("held", "Job", {"who": "parent"})
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            for n in range(50):
                resque.enqueue("held", "Job", {"who": "child", "n": n})
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    resque.enqueue("held", "Job", {"who": "parent again"})  # the parent's connection is intact
    whos = [item["args"][0]["who"] for item in queue_items(r, "held")]
    assert whos == ["parent"] + ["child"] * 50 + ["parent again"]


def test_enqueue_reconnects_a_kept_connection_the_server_closed(redis_url, r):
    resque = Resque(redis=connect(redis_url, client_name="held-kill"))
    resque.enqueue("held", "Job", {"n": 1})
    [client] = _clients(r, "held-kill")
    r.client_kill_filter(_id=client["id"])
    resque.enqueue("held", "Job", {"n": 2})  # no error: it notices the close and reconnects
    assert [item["args"][0]["n"] for item in queue_items(r, "held")] == [1, 2]


def _alive_threads_enqueue_in_turn(resque, count):
    """``count`` threads, each enqueueing once in turn and staying alive until
    all have: what a web server's thread pool does. Returns their errors."""
    import threading
    turns = [threading.Event() for _ in range(count + 1)]
    done, errors = threading.Event(), []

    def run(i):
        turns[i].wait(10)
        try:
            resque.enqueue("held", "Job", {"i": i})
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(f"thread {i}: {exc!r}")
        turns[i + 1].set()
        done.wait(10)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    turns[0].set()
    turns[count].wait(10)
    done.set()
    for thread in threads:
        thread.join()
    return errors


def test_many_live_threads_do_not_keep_a_connection_each(redis_url, r):
    import redis as redis_py
    pool = redis_py.ConnectionPool.from_url(redis_url, max_connections=16)
    resque = Resque(redis=redis_py.Redis(connection_pool=pool))
    assert _alive_threads_enqueue_in_turn(resque, 30) == []
    assert r.llen("resque:queue:held") == 30


def test_enqueue_keeps_no_connection_from_a_blocking_pool(redis_url, r):
    import redis as redis_py
    pool = redis_py.BlockingConnectionPool.from_url(redis_url, max_connections=1, timeout=1)
    resque = Resque(redis=redis_py.Redis(connection_pool=pool))
    assert _alive_threads_enqueue_in_turn(resque, 3) == []
    assert r.llen("resque:queue:held") == 3
