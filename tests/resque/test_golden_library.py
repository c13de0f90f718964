"""What the library writes, compared with what the real php-resque and Ruby
Resque wrote to Redis (the golden snapshots in tests/golden, see its README).

Shapes, field orders and formats must agree; where the two peers disagree the
choice made in resqued.resque.wire is asserted (and commented) here.
"""

import calendar
import json
import os
import re
import time

import pytest

from resqued import Resque
from resqued.resque import wire
from resqued.resque.keys import Keys
from resqued.resque.outcome import DIRTY_EXIT, Failure, add_outcome

from conftest import GOLDEN

PHP = os.path.join(GOLDEN, "php-resque")
RUBY = os.path.join(GOLDEN, "ruby-resque", "snapshots")


def snapshot(directory, name):
    with open(os.path.join(directory, name + ".json")) as f:
        return json.load(f)["keys"]


def ordered(raw):
    """A JSON object's keys in stored order."""
    return [k for k, _ in json.loads(raw, object_pairs_hook=list)]


def utc(*fields):
    return calendar.timegm(fields)


@pytest.fixture
def tz(monkeypatch):
    """Set the process time zone (POSIX TZ strings need no zoneinfo files)."""
    def set_tz(name):
        monkeypatch.setenv("TZ", name)
        time.tzset()
    yield set_tz
    monkeypatch.undo()
    time.tzset()


def keyspace(r):
    """The whole keyspace in the snapshots' shape: {key: value}."""
    result = {}
    for key in r.keys("*"):
        kind = r.type(key).decode()
        if kind == "list":
            value = [v.decode() for v in r.lrange(key, 0, -1)]
        elif kind == "set":
            value = sorted(v.decode() for v in r.smembers(key))
        elif kind == "hash":
            value = {k.decode(): v.decode() for k, v in r.hgetall(key).items()}
        else:
            value = r.get(key).decode()
        result[key.decode()] = value
    return result


def golden_keyspace(keys):
    return {k: sorted(v["value"]) if v["type"] == "set" else v["value"] for k, v in keys.items()}


# -- payloads -----------------------------------------------------------------

PHP_PAYLOAD = re.compile(r'^\{"class":"(?:[^"\\]|\\.)+","args":\[.*\],"id":"[0-9a-f]{32}",'
                         r'"queue_time":\d+(?:\.\d+)?\}$')


def test_payload_shape_matches_php(resque, r):
    golden = snapshot(PHP, "01_after_enqueue")["resque:queue:golden"]
    resque.enqueue("golden", "GoldenOk", {"n": 1, "s": "hello", "list": [1, 2], "f": 1.5})
    ours = [raw.decode() for raw in r.lrange("resque:queue:golden", 0, -1)]
    for raw in golden["value"] + ours:
        assert PHP_PAYLOAD.match(raw), raw
        assert ordered(raw) == ["class", "args", "id", "queue_time"]
        item = json.loads(raw)
        assert isinstance(item["class"], str)
        assert isinstance(item["args"], list) and len(item["args"]) == 1
        assert isinstance(item["id"], str)
        assert isinstance(item["queue_time"], float)


def test_queue_time_has_at_most_six_decimals_as_php_writes_it(resque, r):
    """php-resque writes microtime(true): microseconds. A float time.time()
    has a seventh decimal, which Ruby's Oj adapter wrote back as the string
    "0.17961577473370125e10" in a failure record."""
    six = re.compile(r'"queue_time":\d+(?:\.\d{1,6})?\}$')
    php = snapshot(PHP, "01_after_enqueue")["resque:queue:golden"]["value"]
    for _ in range(50):  # about one time.time() in four has six decimals or fewer
        resque.enqueue("q", "GoldenOk", {})
    resque.enqueue_many("q", "GoldenOk", [{}] * 50)
    ours = [raw.decode() for raw in r.lrange("resque:queue:q", 0, -1)]
    assert len(ours) == 100
    for raw in php + ours:
        assert six.search(raw), raw


@pytest.mark.parametrize("index, args", [
    (0, {"n": 1, "s": "hello", "list": [1, 2], "f": 1.5}),
    (1, None),
    (2, []),
])
def test_payload_bytes_match_php_up_to_id(resque, r, index, args):
    """class and args byte for byte; id and queue_time are per job."""
    golden = snapshot(PHP, "01_after_enqueue")["resque:queue:golden"]["value"][index]
    resque.enqueue("golden", "GoldenOk", args)
    ours = r.lindex("resque:queue:golden", 0).decode()
    assert ours.split(',"id":')[0] == golden.split(',"id":')[0]


def test_enqueue_of_an_empty_dict_differs_harmlessly_from_php(resque, r):
    # php has no empty object: {} and [] are both array() and encode as [[]].
    # We keep {} ([{}]); php decodes it (json_decode(..., true)) to array(),
    # the same value its own [[]] gives, so a PHP job sees no difference.
    resque.enqueue("q", "GoldenOk", {})
    assert json.loads(r.lindex("resque:queue:q", 0))["args"] == [{}]


def test_enqueued_payload_is_a_ruby_payload_plus_extra_fields(resque, r):
    """Ruby reads class and args and ignores id/queue_time: our item starts
    with exactly the bytes Ruby's Resque.enqueue writes."""
    golden = snapshot(RUBY, "01_after_enqueue")
    resque.enqueue_call("golden", "GoodJob", 1, "two")
    resque.enqueue_call("golden", "GoodJob", 1, "two", {"three": 3, "f": 1.5, "n": None, "b": True})
    resque.enqueue_call("other", "GoodJob", "x")
    for queue in ("golden", "other"):
        ours = [raw.decode() for raw in r.lrange(f"resque:queue:{queue}", 0, -1)]
        theirs = golden[f"resque:queue:{queue}"]["value"]
        assert len(ours) == len(theirs)
        for mine, ruby in zip(ours, theirs):
            assert ruby.endswith("}")
            assert mine.startswith(ruby[:-1] + ',"id":')
            assert ordered(ruby) == ["class", "args"]
    assert sorted(golden["resque:queues"]["value"]) == resque.queues()


@pytest.mark.parametrize("source, name, key", [
    (PHP, "01_after_enqueue", "resque:queue:golden"),
    (PHP, "50_encoding_after_enqueue", "resque:queue:enc"),
    (PHP, "30_dequeue_before", "resque:queue:dq"),
    (RUBY, "01_after_enqueue", "resque:queue:golden"),
    (RUBY, "01_after_enqueue", "resque:queue:other"),
])
def test_golden_payloads_decode(source, name, key):
    for raw in snapshot(source, name)[key]["value"]:
        payload = wire.decode_payload(raw.encode())
        assert payload == json.loads(raw)
        assert isinstance(payload["class"], str) and isinstance(payload["args"], list)
        if source is RUBY:
            assert "id" not in payload and "queue_time" not in payload


def test_golden_working_on_payloads_decode():
    php = json.loads(snapshot(PHP, "03_while_running")["resque:worker:vm:14608:golden"]["value"])
    ruby = json.loads(snapshot(RUBY, "03_during_job")["resque:worker:vm:4077:golden"]["value"])
    for record in (php, ruby):
        payload = wire.decode_payload(wire.dumps(record["payload"]))
        assert payload == record["payload"]


# -- JSON encoding (php 50) -------------------------------------------------------

def test_dumps_reencodes_php_payloads_byte_for_byte():
    raws = snapshot(PHP, "50_encoding_after_enqueue")["resque:queue:enc"]["value"]
    first, namespaced, listed = raws
    # No floats but queue_time (shortest repr in both languages): identical.
    assert wire.dumps(json.loads(namespaced)) == namespaced
    assert wire.dumps(json.loads(listed)) == listed
    # The first one has all of PHP's escapes. One field is skipped: "exp".
    # PHP writes the float 1.5e-9 as "1.5e-9", Python as "1.5e-09" (same value).
    # "float2" is PHP's 1.0, written as 1; it decodes to the int 1 here, so it
    # round-trips, but a Python float 1.0 would be written "1.0" (same value).
    assert '"exp":1.5e-9' in first
    assert wire.dumps(json.loads(first)) == first.replace('"exp":1.5e-9', '"exp":1.5e-09')


def test_enqueue_writes_php_escapes(resque, r):
    golden = snapshot(PHP, "50_encoding_after_enqueue")["resque:queue:enc"]["value"]
    resque.enqueue("enc", "GoldenOk", {
        "path": "/a/b", "text": "h\u00e9llo \u2603 \U0001F600", "quote": 'say "hi"', "float": 0.1,
        "float2": 1.0, "exp": 1.5e-9, "int": 42, "big": 9223372036854775807, "neg": -7, "bool": True,
        "null": None, "empty_obj_from_php": [], "list": [1, "2", 3.5], "nested": {"k": {"x": [True, False]}},
    })
    resque.enqueue("enc", "Some\\Namespaced\\JobClass", {"a": 1})
    resque.enqueue("enc", "GoldenOk", [1, 2, 3])
    ours = [raw.decode() for raw in r.lrange("resque:queue:enc", 0, -1)]
    # Skipped, as above: PHP's "float2":1 (a float 1.0) and "exp":1.5e-9 are
    # Python's 1.0 and 1.5e-09. Everything else, escapes included, is identical.
    expected = golden[0].replace('"float2":1,', '"float2":1.0,').replace('"exp":1.5e-9', '"exp":1.5e-09')
    assert ours[0].split(',"id":')[0] == expected.split(',"id":')[0]
    for mine, php in zip(ours[1:], golden[1:]):
        assert mine.split(',"id":')[0] == php.split(',"id":')[0]
    assert json.loads(ours[0])["args"] == json.loads(golden[0])["args"]


@pytest.mark.parametrize("value, php", [
    ("/a/b", '"\\/a\\/b"'),
    ("h\u00e9llo", '"h\\u00e9llo"'),
    ("\u2603", '"\\u2603"'),
    ("\U0001F600", '"\\ud83d\\ude00"'),   # astral: a surrogate pair
    ('say "hi"', '"say \\"hi\\""'),
    ("Some\\Namespaced", '"Some\\\\Namespaced"'),
    ("\x01\t\n", '"\\u0001\\t\\n"'),
    (9223372036854775807, "9223372036854775807"),
    (0.1, "0.1"),
    ({"a": [1, None, True]}, '{"a":[1,null,true]}'),
])
def test_dumps_escapes(value, php):
    assert wire.dumps(value) == php
    assert json.loads(wire.dumps(value)) == value


def test_dumps_refuses_nan_when_asked():
    with pytest.raises(ValueError):
        wire.dumps({"x": float("nan")}, allow_nan=False)


# -- status records ---------------------------------------------------------------

def test_waiting_status_matches_php(resque, r):
    golden = snapshot(PHP, "01_after_enqueue")["resque:job:761a1024538fcdc3e39773f3b0a88ac8:status"]
    job_id = resque.enqueue("golden", "GoldenOk", {}, track_status=True)
    key = f"resque:job:{job_id}:status"
    ours = r.get(key).decode()
    assert ordered(ours) == ordered(golden["value"]) == ["status", "updated", "started"]
    assert re.fullmatch(r'\{"status":1,"updated":(\d+),"started":\1\}', ours)
    assert r.ttl(key) == golden["ttl"] == -1
    # Byte for byte at the same second.
    assert wire.status_record(1, ts=1795312062.9, started=True) == golden["value"]


def test_running_status_matches_php():
    golden = snapshot(PHP, "03_while_running")["resque:job:fdeb30bdd8257bb454644f80d13bedd2:status"]
    assert golden["ttl"] == -1
    # started is dropped once the job runs.
    assert wire.status_record(wire.STATUS_RUNNING, ts=1795312063.5) == golden["value"]


def run_outcome(r, keys, worker_id, queue, payload, failure, processed=True):
    pipe = r.pipeline(transaction=True)
    add_outcome(pipe, keys, worker_id, queue, payload, failure, processed=processed)
    pipe.execute()


def assert_final_status(r, key, code, golden, started):
    raw = r.get(key).decode()
    # The captured php-resque (1.3-dev) dropped `started` here; php-resque 1.3
    # (Resque_Job_Status::update) keeps it after the same two fields, as we do.
    assert ordered(golden["value"]) == ["status", "updated"]
    assert re.fullmatch(r'\{"status":%d,"updated":\d+,"started":%d\}' % (code, started), raw)
    assert golden["ttl"] == 86400
    assert 86390 <= r.ttl(key) <= 86400


def test_complete_status_and_stats_match_php(resque, r):
    golden = snapshot(PHP, "02_after_success")
    job_id = resque.enqueue("golden", "GoldenOk", {}, track_status=True)
    started = resque.status(job_id)["started"]
    payload = json.loads(r.lpop("resque:queue:golden"))
    run_outcome(r, resque.keys, "vm:14608:golden", "golden", payload, None)
    assert_final_status(r, f"resque:job:{job_id}:status", 4,
                        golden["resque:job:761a1024538fcdc3e39773f3b0a88ac8:status"], started)
    assert r.get("resque:stat:processed") == b"1"
    assert r.get("resque:stat:processed:vm:14608:golden") == b"1"
    assert r.exists("resque:failed", "resque:stat:failed") == 0


def test_failed_status_failure_and_stats_match_php(resque, r):
    golden = snapshot(PHP, "05_after_failure")
    job_id = resque.enqueue("golden", "GoldenFail", {"why": "test"}, track_status=True)
    started = resque.status(job_id)["started"]
    payload = json.loads(r.lpop("resque:queue:golden"))
    failure = Failure("RuntimeException", 'golden failure: {"why":"test"}', ["jobs.py:3:in `perform'"])
    run_outcome(r, resque.keys, "vm:14608:golden", "golden", payload, failure)
    assert_final_status(r, f"resque:job:{job_id}:status", 3,
                        golden["resque:job:60e4ce5a355205aa23bc5458df8d991b:status"], started)
    (ours,) = r.lrange("resque:failed", 0, -1)
    (theirs,) = golden["resque:failed"]["value"]
    assert ordered(ours) == ordered(theirs)
    mine, php = json.loads(ours), json.loads(theirs)
    assert mine["payload"] == payload  # the payload exactly as popped
    for field in ("exception", "error", "worker", "queue"):
        assert mine[field] == php[field]
    # Both stats (global and per worker) count the failure, and the job as processed.
    for key in ("resque:stat:failed", "resque:stat:failed:vm:14608:golden",
                "resque:stat:processed", "resque:stat:processed:vm:14608:golden"):
        assert key in golden
        assert r.get(key) == b"1"


def test_outcome_of_an_untracked_job_writes_no_status(resque, r):
    resque.enqueue("golden", "GoldenOk", {})
    payload = json.loads(r.lpop("resque:queue:golden"))
    run_outcome(r, resque.keys, "vm:1:golden", "golden", payload, None)
    run_outcome(r, resque.keys, "vm:1:golden", "golden", payload, Failure("E", "e"))
    assert r.keys("resque:job:*") == []


def test_outcome_without_processed(resque, r):
    run_outcome(r, resque.keys, "vm:1:golden", "golden", {"class": "J", "args": []},
                Failure(DIRTY_EXIT, "gone"), processed=False)
    assert r.exists("resque:stat:processed", "resque:stat:processed:vm:1:golden") == 0
    assert r.get("resque:stat:failed") == b"1"


def test_outcome_with_a_raw_payload(resque, r):
    record = wire.raw_payload_record(b"\xffnot json")
    run_outcome(r, resque.keys, "vm:1:golden", "golden", record, Failure("resqued.InvalidPayload", "bad"))
    entry = json.loads(r.lindex("resque:failed", 0))
    assert entry["payload"] == {"class": None, "args": [], "raw": "\\xffnot json"}


# -- failure records (Ruby 04, 06) ------------------------------------------------

RUBY_FAILURE_FIELDS = ["failed_at", "payload", "exception", "error", "backtrace", "worker", "queue"]


def test_failure_record_matches_ruby(tz):
    tz("UTC")
    (theirs, dirty) = snapshot(RUBY, "06_after_child_sigkill")["resque:failed"]["value"]
    assert theirs == snapshot(RUBY, "04_after_failure")["resque:failed"]["value"][0]
    ours = wire.failure_record({"class": "FailingJob", "args": ["x"]}, "ArgumentError",
                               'boom: FailingJob got ["x"]', ["peers/ruby/jobs.rb:13:in `perform'"],
                               "vm:4077:golden", "golden", ts=utc(2026, 11, 22, 2, 24, 57))
    assert ordered(ours) == ordered(theirs) == RUBY_FAILURE_FIELDS
    # Byte for byte except that we escape '/' as PHP's json_encode does
    # ("2026\/11\/22", "peers\/ruby\/..."); Ruby's JSON parser reads both the same.
    assert "2026\\/11\\/22 02:24:57 UTC" in ours
    assert ours.replace("\\/", "/") == theirs
    assert json.loads(ours) == json.loads(theirs)
    # A failure resque itself creates (dirty exit, empty backtrace).
    ours = wire.failure_record({"class": "SelfKillJob", "args": []}, DIRTY_EXIT,
                               "Child process received unhandled signal pid 5130 SIGKILL (signal 9)",
                               [], "vm:4077:golden", "golden", ts=utc(2026, 11, 22, 2, 24, 58))
    assert ours.replace("\\/", "/") == dirty


def test_failure_record_types_match_ruby():
    golden = json.loads(snapshot(RUBY, "04_after_failure")["resque:failed"]["value"][0])
    ours = json.loads(wire.failure_record({"class": "J", "args": []}, "E", "e", ["f.py:1:in `x'"], "h:1:q", "q"))
    for field in RUBY_FAILURE_FIELDS:
        assert type(ours[field]) is type(golden[field]), field
    assert all(isinstance(line, str) for line in ours["backtrace"])


# -- time formats (Ruby 03/04, heartbeat samples) ---------------------------------

RUBY_TIMES = snapshot(RUBY, "03_during_job")
STARTED = RUBY_TIMES["resque:worker:vm:4077:golden:started"]["value"]
RUN_AT = json.loads(RUBY_TIMES["resque:worker:vm:4077:golden"]["value"])["run_at"]
HEARTBEAT = RUBY_TIMES["resque:workers:heartbeat"]["value"]["vm:4077:golden"]
FAILED_AT = json.loads(snapshot(RUBY, "04_after_failure")["resque:failed"]["value"][0])["failed_at"]

FORMATS = {
    "started": (wire.started_time, STARTED, utc(2026, 11, 22, 2, 24, 52),
                r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}"),
    "run_at": (wire.run_at_time, RUN_AT, utc(2026, 11, 22, 2, 24, 53),
               r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"),
    "heartbeat": (wire.heartbeat_time, HEARTBEAT, utc(2026, 11, 22, 2, 24, 52),
                  r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d"),
    "failed_at": (wire.failed_at_time, FAILED_AT, utc(2026, 11, 22, 2, 24, 57),
                  r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d [A-Za-z+\-0-9]+"),
}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_time_formats_match_ruby(tz, name):
    func, golden, ts, pattern = FORMATS[name]
    assert re.fullmatch(pattern, golden)
    tz("UTC")
    assert func(ts) == golden
    assert func(ts + 0.999) == golden  # whole seconds
    assert re.fullmatch(pattern, func(None))
    # Another zone: still the same format (run_at stays UTC).
    tz("IST-5:30")
    assert re.fullmatch(pattern, func(ts))
    if name == "run_at":
        assert func(ts) == golden


def test_local_times_carry_the_offset(tz):
    tz("IST-5:30")
    ts = utc(2026, 11, 22, 2, 24, 52)
    assert wire.started_time(ts) == "2026-11-22 07:54:52 +0530"
    assert wire.heartbeat_time(ts) == "2026-11-22T07:54:52+05:30"
    assert wire.failed_at_time(ts) == "2026/11/22 07:54:52 IST"
    assert wire.retried_at_time(ts) == "2026/11/22 07:54:52"


def test_heartbeats_parse(tz):
    tz("UTC")
    assert wire.parse_heartbeat(HEARTBEAT) == utc(2026, 11, 22, 2, 24, 52)
    assert wire.parse_heartbeat(HEARTBEAT.encode()) == utc(2026, 11, 22, 2, 24, 52)
    with open(os.path.join(GOLDEN, "ruby-resque", "heartbeat_samples.txt")) as f:
        samples = re.findall(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", f.read())
    assert samples
    for sample in samples:
        assert wire.heartbeat_time(wire.parse_heartbeat(sample)) == sample
    assert wire.parse_heartbeat("garbage") is None
    assert wire.parse_heartbeat(None) is None
    ts = 1795312000
    assert wire.parse_heartbeat(wire.heartbeat_time(ts)) == ts


def test_working_on_matches_ruby():
    golden = RUBY_TIMES["resque:worker:vm:4077:golden"]["value"]
    # No slash in it, so byte for byte (run_at is UTC whatever the zone).
    assert wire.working_on("golden", {"class": "SlowJob", "args": [3]}, ts=utc(2026, 11, 22, 2, 24, 53)) == golden
    # php-resque's record has the same fields in the same order (its run_at is
    # in its own date format, which php-resque never reads back).
    php = snapshot(PHP, "03_while_running")["resque:worker:vm:14608:golden"]["value"]
    assert ordered(php) == ordered(golden) == ["queue", "run_at", "payload"]


# -- key names ------------------------------------------------------------------

WORKER_ID = r"[^:]+:\d+:[^:]+"


def producible_keys(keys, golden):
    """Every name our Keys builds for the ids and queues a snapshot mentions."""
    names = set(golden)
    p = re.escape(keys.prefix)
    job_ids = {m for k in names for m in re.findall(rf"^{p}job:([0-9a-f]{{32}}):status$", k)}
    workers = {m for k in names for m in re.findall(
        rf"^{p}(?:worker|stat:processed|stat:failed):({WORKER_ID})(?::started)?$", k)}
    if keys.workers in golden:
        workers |= set(golden[keys.workers]["value"])
    queues = {k[len(keys.prefix) + len("queue:"):] for k in names if k.startswith(keys.prefix + "queue:")}
    if keys.queues in golden:
        queues |= set(golden[keys.queues]["value"])
    made = {keys.queues, keys.workers, keys.heartbeats, keys.prune_lock, keys.pause_all, keys.failed,
            keys.processed, keys.failed_count}
    made |= {keys.queue(q) for q in queues} | {keys.status(j) for j in job_ids}
    for w in workers:
        made |= {keys.worker(w), keys.worker_started(w), keys.worker_processed(w), keys.worker_failed(w)}
    return made


def all_snapshots():
    for directory in (PHP, RUBY):
        for name in sorted(os.listdir(directory)):
            if re.match(r"\d+b?_.*\.json$", name):
                yield directory, name[:-5]


@pytest.mark.parametrize("directory, name", list(all_snapshots()))
def test_every_golden_key_is_one_of_ours(directory, name):
    golden = snapshot(directory, name)
    for namespace in ("resque", "myapp"):
        keys = Keys(namespace)
        ours = {k: v for k, v in golden.items() if k.startswith(keys.prefix)}
        assert set(ours) <= producible_keys(keys, ours), name
    assert all(k.startswith(("resque:", "myapp:")) for k in golden)


def test_fixed_key_names():
    keys = Keys()
    assert (keys.queues, keys.workers, keys.failed, keys.processed, keys.failed_count) == (
        "resque:queues", "resque:workers", "resque:failed", "resque:stat:processed", "resque:stat:failed")
    assert keys.heartbeats == "resque:workers:heartbeat"
    assert keys.prune_lock == "resque:pruning_dead_workers_in_progress"
    assert keys.pause_all == "resque:pause-all-workers"
    assert keys.worker_processed("vm:1:a,b") == "resque:stat:processed:vm:1:a,b"
    assert keys.worker_started("vm:1:a,b") == "resque:worker:vm:1:a,b:started"
    assert keys.queue_name(b"resque:queue:golden") == "golden"
    assert keys.queue_name("resque:queue:a:b") == "a:b"
    assert Keys("").prefix == Keys(":").prefix == "resque:"


@pytest.mark.parametrize("namespace", ["myapp", "myapp:"])
def test_prefix_keys_match_php(namespace, redis_url, r):
    golden = snapshot(PHP, "22_prefix_after_enqueue")
    keys = Keys(namespace)
    assert keys.prefix == "myapp:"
    assert {keys.queues, keys.queue("golden"), keys.status("6ac003b7d53efb11b1aa769658806b73")} == {
        k for k in golden if k.startswith("myapp:")}
    # And the client writes exactly those keys.
    client = Resque(redis_url, namespace)
    try:
        job_id = client.enqueue("golden", "GoldenOk", {"mode": "prefix"}, track_status=True)
    finally:
        client.redis.close()
    assert sorted(k.decode() for k in r.keys("*")) == sorted(
        ["myapp:queues", "myapp:queue:golden", f"myapp:job:{job_id}:status"])
    assert r.lindex("myapp:queue:golden", 0).decode().split(',"id":')[0] == \
        golden["myapp:queue:golden"]["value"][0].split(',"id":')[0]


# -- dequeue replayed against php's run (30..35) ----------------------------------

def test_dequeue_replay_against_php(resque, r):
    before = snapshot(PHP, "30_dequeue_before")
    for key in ("resque:queue:dq", "resque:queue:keep"):
        r.rpush(key, *before[key]["value"])
    r.sadd("resque:queues", *before["resque:queues"]["value"])
    with open(os.path.join(PHP, "dequeue_results.jsonl")) as f:
        steps = {s["step"]: s for s in map(json.loads, f)}
    ids = steps["setup"]["ids"]

    assert resque.dequeue("dq", steps["by_class"]["spec"]) == steps["by_class"]["returned"] == 2
    assert keyspace(r) == golden_keyspace(snapshot(PHP, "31_dequeue_after_by_class"))

    # php's spec {"GoldenOk": id} is an associative array: the same dict here.
    assert resque.dequeue("dq", steps["by_id"]["spec"]) == steps["by_id"]["returned"] == 1
    assert keyspace(r) == golden_keyspace(snapshot(PHP, "32_dequeue_after_by_id"))

    # Deliberate difference: php removed {"a":1} *and* {"b":1} (it compares
    # values only); we remove exactly {"a":1} and keep A3 in its place.
    assert steps["by_args"]["returned"] == 2
    assert resque.dequeue("dq", steps["by_args"]["spec"]) == 1
    php_after = golden_keyspace(snapshot(PHP, "33_dequeue_after_by_args"))
    a3 = next(raw for raw in before["resque:queue:dq"]["value"] if ids["A3"] in raw)
    php_after["resque:queue:dq"].insert(0, a3)
    assert keyspace(r) == php_after

    assert steps["whole"]["returned"] == 3
    assert resque.dequeue("dq") == 4  # one more: A3
    assert keyspace(r) == golden_keyspace(snapshot(PHP, "34_dequeue_after_whole"))

    assert resque.remove_queue("keep") == steps["removeQueue"]["returned"] == 1
    assert keyspace(r) == golden_keyspace(snapshot(PHP, "35_dequeue_after_removeQueue"))
