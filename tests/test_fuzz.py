"""Bad input, fuzzed: random and adversarial payloads, class names, config
files and control-socket requests. Nothing but the documented error comes out
of the parsers, and a real worker and a real master fed such input keep
running and give each bad item one clear error."""

import json
import os
import socket
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import JOBS_FILE, ROOT, log_text, wait_until
from helpers import wait_log, wait_registered
from resqued.ctl import masterclient
from resqued.protocols import controlsocket
from resqued.resque import wire
from resqued.config.loader import load_config
from resqued.config.model import Config, ConfigError
from resqued.jobs.allowlist import JobRegistry, UnknownJob
from resqued.config.yamlnodes import MAX_FILE_BYTES
from masters import Master

PURE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# The live tests build their ~200 items in a handful of examples, the same on every run.
LIVE = settings(max_examples=5, deadline=None, derandomize=True, print_blob=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])

# What tests/jobs.py allows: a generated payload must never name one of these.
JOB_NAMES = frozenset(JobRegistry.build([JOBS_FILE]).names())
HOSTILE_NAMES = [
    "os.system", "subprocess.Popen", "builtins.exec", "builtins.eval", "builtins.__import__", "__import__",
    "eval", "..relative", ".add", "add.", "..add", "resqued_app_jobs..add", "add.__class__",
    "add.__globals__", "add.__code__", "PhpJob.perform", "PhpJob.__init__", "PhpJob.__class__.__base__",
    "__class__", "__builtins__", "__dict__", "__main__", "resqued_app_jobs.__dict__",
    "resqued_app_jobs._client", "resqued_app_jobs.os", "resqued_app_jobs.redis",
    "resqued_app_jobs.DontPerform", "DontPerform", "importlib.import_module", "resqued.jobs.allowlist.JobRegistry",
    "tests.jobs.add", "add\x00", "\x00", " add", "add ", "ADD", "add\n", "/etc/passwd",
    "../../tmp/x.py", "Common\\Job\\MailJob", "A" * 100_000, "add." * 25_000,
]

# -- strategies --------------------------------------------------------------------

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-2**70, 2**70),
                         st.floats(), st.text(max_size=30))
json_values = st.recursive(json_scalars, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)), max_leaves=20)
class_names = st.one_of(st.sampled_from(HOSTILE_NAMES), st.text(max_size=40),
                        st.integers(1000, 100_000).map(lambda n: "x" * n),
                        st.sampled_from(sorted(JOB_NAMES)).map(lambda name: name + ".__class__"))
INVALID_UTF8 = [b"\xff", b"\xfe", b"\xc3", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80"]


def nested(depth: int, kind: str) -> str:
    return ("[" * depth + "]" * depth) if kind == "list" else ('{"a":' * depth + "1" + "}" * depth)


@st.composite
def payload_dicts(draw):
    """Something shaped like a payload, wrong in one or more ways."""
    payload = {"class": draw(st.one_of(class_names, json_values))}
    if draw(st.booleans()):
        payload["args"] = draw(json_values)
    for field in ("id", "queue_time", "__class__", "prefix"):
        if draw(st.integers(0, 3)) == 0:
            payload[field] = draw(json_values)
    return json.dumps(payload, allow_nan=True).encode()


@st.composite
def deep_payloads(draw):
    depth = draw(st.one_of(st.integers(1, 600), st.integers(400, 6000)))
    value = nested(depth, draw(st.sampled_from(["list", "dict"])))
    job_class = json.dumps(draw(st.sampled_from(["os.system", "builtins.__import__", "A" * 5000])))
    where = draw(st.sampled_from(["args", "class", "top", "id"]))
    if where == "top":
        return value.encode()
    if where == "args":
        return f'{{"class":{job_class},"args":[{value}]}}'.encode()
    return f'{{"class":{job_class if where == "id" else value},"args":[],"id":{value}}}'.encode()


@st.composite
def not_utf8(draw):
    head, tail = draw(st.sampled_from([('{"class":"', '","args":[]}'), ('{"class":"os.system","args":["', '"]}'),
                                       ('{"', '":1,"class":"x"}'), ("", "")]))
    junk = draw(st.binary(max_size=5)) + draw(st.sampled_from(INVALID_UTF8)) + draw(st.binary(max_size=5))
    return head.encode() + junk + tail.encode()


@st.composite
def escaped_strings(draw):
    """Valid JSON escapes, among them lone UTF-16 surrogates and NUL, in each kind of string."""
    escape = draw(st.sampled_from(["\\ud800", "\\udfff", "\\ud83d\\ude00", "\\u0000", "\\ud83d", "\\n",
                                   "\\\\", "\\/"]))
    text = f'"x{escape}y"'
    return draw(st.sampled_from([
        f'{{"class":{text},"args":[]}}',
        f'{{"class":"os.system","args":[],"id":{text}}}',
        f'{{"class":"os.system","args":[{text}]}}',
        f'{{"class":"os.system","args":[{{{text}:1}}]}}',
        f'{{"class":"os.system","args":[],{text}:1}}',
    ])).encode()


numbers = st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999", b"1" * 5000, b"1e-400",
                           b"0." + b"0" * 5000 + b"1", b"-0"]).map(
    lambda n: b'{"class":"os.system","args":[' + n + b']}')

raw_items = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v, allow_nan=True).encode()),
    payload_dicts(),
    deep_payloads(),
    not_utf8(),
    escaped_strings(),
    numbers,
)


# Every kind of bad item at least once, ahead of the random ones.
ADVERSARIAL_ITEMS = [
    *(json.dumps({"class": name, "args": ["touch /tmp/resqued-fuzz"]}).encode() for name in HOSTILE_NAMES),
    f'{{"class":"os.system","args":{nested(5000, "list")}}}'.encode(),
    f'{{"class":"os.system","args":[{nested(5000, "dict")}]}}'.encode(),
    f'{{"class":"os.system","args":{nested(511, "list")}}}'.encode(),
    nested(100_000, "list").encode(),
    b'{"class":"os.system","args":[NaN]}', b'{"class":"os.system","args":[1e400]}',
    b'{"class":"\\ud800","args":[]}', b'{"class":"os.system","args":[],"id":"\\udfff"}',
    b'{"class":"os.system","args":[],"id":"\xed\xa0\x80"}', b'{"class":"caf\xe9","args":[]}',
    b"\xff\xfe", b"", b" ", b"null", b"[]", b'"add"', b"{}", b'{"class":null}', b'{"class":["add"]}',
    b'{"class":"add","args":{"a":1}}', b'{"class":"add","args":[1,2],"id":7}',
    b'{"class":"os.system","args":[' + b"1" * 5000 + b"]}",
]


def decoded_or_invalid(raw):
    """decode_payload's result, or the InvalidPayload it raised."""
    try:
        return wire.decode_payload(raw)
    except wire.InvalidPayload as exc:
        return exc


def one_line(message: str) -> bool:
    return isinstance(message, str) and message.strip() != "" and "\n" not in message and "\r" not in message


# -- payload decoding --------------------------------------------------------------

def check_decoding(raw):
    outcome = decoded_or_invalid(raw)
    if isinstance(outcome, wire.InvalidPayload):
        assert one_line(str(outcome)) and len(str(outcome)) < 500, str(outcome)[:300]
    else:
        assert isinstance(outcome, dict)
        assert isinstance(outcome["class"], str) and outcome["class"]
        assert isinstance(outcome.get("args", []), list)
        assert outcome.get("id") is None or isinstance(outcome["id"], str)
        # What the worker writes back about it is JSON any reader can parse, in UTF-8.
        written = wire.failure_record(outcome, "resqued.UnknownJob", "refused", [], "vm:1:q", "q")
        written.encode("utf-8")
        json.loads(written, parse_constant=pytest.fail)
        wire.working_on("q", outcome).encode("utf-8")
    record = wire.raw_payload_record(raw)
    assert set(record) == {"class", "args", "raw"} and record["class"] is None
    json.loads(wire.dumps(record).encode("ascii"))


@PURE
@given(raw=raw_items)
def test_decode_gives_a_payload_or_one_invalid_payload_error(raw):
    check_decoding(raw)
    check_decoding(raw.decode("latin-1"))  # the same item as str (as a client may hold it)


@PURE
@given(text=st.text())
def test_decode_of_any_text(text):
    check_decoding(text)
    assert wire.raw_payload_record(text)["raw"] == text


@pytest.mark.parametrize("raw,problem", [
    (f'{{"class":"os.system","args":{nested(5000, "list")}}}', "nested more than 512 levels"),
    (f'{{"class":"os.system","args":[{nested(5000, "dict")}]}}', "nested more than 512 levels"),
    (nested(100_000, "list"), "nested more than 512 levels"),
    (f'{{"class":"os.system","args":{nested(511, "list")}}}', None),
    (f'{{"class":"os.system","args":{nested(512, "list")}}}', "nested more than 512 levels"),
    ('{"class":"os.system","args":[NaN]}', "NaN is not a JSON value"),
    ('{"class":"os.system","args":[{"a":Infinity}]}', "Infinity is not a JSON value"),
    ('{"class":"os.system","args":[-Infinity]}', "-Infinity is not a JSON value"),
    ('{"class":"os.system","args":[1e400]}', "too large for a double"),
    ('{"class":"\\ud800","args":[]}', "unpaired UTF-16 surrogate \\ud800"),
    ('{"class":"os.system","args":[],"id":"a\\udfff"}', "unpaired UTF-16 surrogate \\udfff"),
    ('{"class":"os.system","args":[{"\\udc00":1}]}', "unpaired UTF-16 surrogate \\udc00"),
    ('{"class":"os.system","args":["\\ud83d\\ude00"]}', None),
    # json.loads lets UTF-8-encoded surrogates through ('surrogatepass'); they are refused all the same.
    (b'{"class":"os.system","args":["\xed\xa0\x80"]}', "unpaired UTF-16 surrogate \\ud800"),
    (b'{"class":"caf\xe9","args":[]}', "not valid UTF-8"),
    ('{"class":"' + "A" * 100_000 + '","args":[]}', None),
    ('{"class":"os.system","args":[' + "1" * 5000 + "]}", "not valid JSON"),
])
def test_adversarial_payloads(raw, problem):
    outcome = decoded_or_invalid(raw)
    if problem is None:
        assert isinstance(outcome, dict)
    else:
        assert isinstance(outcome, wire.InvalidPayload) and problem in str(outcome), outcome
    check_decoding(raw)


# -- class resolution, from the payload on ------------------------------------------

@pytest.fixture(scope="module")
def registry():
    return JobRegistry.build([JOBS_FILE])


@PURE
@given(raw=st.one_of(payload_dicts(), escaped_strings(), st.sampled_from(HOSTILE_NAMES).map(
    lambda name: json.dumps({"class": name, "args": []}).encode())))
def test_only_allowed_names_resolve_from_decoded_payloads(registry, raw):
    payload = decoded_or_invalid(raw)
    if isinstance(payload, wire.InvalidPayload):
        return
    try:
        target = registry.resolve(payload["class"])
    except UnknownJob as exc:
        assert payload["class"] not in JOB_NAMES
        assert one_line(str(exc)) and len(str(exc)) < 500 and "not allowed" in str(exc)
    else:
        assert payload["class"] in JOB_NAMES and callable(target)


def test_a_long_name_is_cut_short_in_the_error(registry):
    with pytest.raises(UnknownJob) as info:
        registry.resolve("A" * 100_000)
    assert "(100000 characters)" in str(info.value) and len(str(info.value)) < 500


# -- config files ------------------------------------------------------------------

VALID = b"pools:\n  - queues: [a]\n    count: 1\n"


def config_or_one_line_error(path):
    try:
        config = load_config(str(path), environ={})
    except ConfigError as exc:
        assert one_line(str(exc)), str(exc)
        return exc
    assert isinstance(config, Config) and config.pools
    return config


@PURE
@given(data=st.one_of(
    st.binary(max_size=400),
    st.builds(lambda head, junk, tail: VALID[:head] + junk + VALID[tail:],
              st.integers(0, len(VALID)), st.binary(min_size=1, max_size=8), st.integers(0, len(VALID))),
    st.builds(lambda junk, bad: VALID + b"# " + junk + bad, st.binary(max_size=20), st.sampled_from(INVALID_UTF8)),
))
def test_random_bytes_give_config_or_config_error(tmp_path, data):
    path = tmp_path / "pool.yml"
    path.write_bytes(data)
    config_or_one_line_error(path)


def test_huge_files(tmp_path):
    path = tmp_path / "pool.yml"
    # Exactly at the limit: read (comments cost nothing to check).
    path.write_bytes(VALID + b"#" * (MAX_FILE_BYTES - len(VALID) - 1) + b"\n")
    assert isinstance(config_or_one_line_error(path), Config)
    # One byte over, or far over: refused without reading it all.
    for size in (MAX_FILE_BYTES + 1, 64 * MAX_FILE_BYTES):
        with open(path, "wb") as stream:
            stream.write(VALID)
            stream.truncate(size)
        assert "larger than" in str(config_or_one_line_error(path))
    # Invalid UTF-8 deep inside a large file: named with its line.
    path.write_bytes(VALID + b"#\n" * 100_000 + b"# \xff\n")
    assert str(config_or_one_line_error(path)).endswith(f":{100_004}: not UTF-8 text (byte 0xff)")


def merge_bomb(levels: int) -> str:
    """Mappings merging 8 aliases of the one before: 8**levels entries to a naive loader."""
    node = "&d0 {max_jobs: 1}"
    for level in range(1, levels + 1):
        node = f"&d{level} {{<<: [{node}" + f", *d{level - 1}" * 7 + "]}"
    return f"defaults: {node}\npools:\n  - <<: *d{levels}\n    queues: [a]\n    count: 1\n"


def test_a_merge_bomb_loads_at_once(tmp_path):
    path = tmp_path / "pool.yml"
    path.write_text(merge_bomb(30) + f"jobs: [{JOBS_FILE}]\n")
    assert len(path.read_bytes()) < 5000
    # In a process of its own, so that a regression fails instead of hanging the suite.
    result = subprocess.run([sys.executable, "-m", "resqued", "--check", "-c", str(path)], capture_output=True,
                            text=True, timeout=30, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert result.returncode == 0, result.stderr
    assert "a: count 1; max_memory none; max_jobs 1 " in result.stdout


# -- control requests --------------------------------------------------------------

def parse_or_bad_request(data):
    try:
        request = controlsocket.decode_request(data)
    except controlsocket.BadRequest as exc:
        assert one_line(str(exc)), str(exc)
        return None
    assert isinstance(request, controlsocket.Request) and request.command in controlsocket.COMMANDS
    return request


request_bytes = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v, allow_nan=True).encode()),
    st.fixed_dictionaries({"command": st.one_of(json_values, st.sampled_from(
        ["STATUS", "status ", " status", "rm -rf /", "__class__", "", "status\x00", "shutdown", "kill"]))},
        optional={"now": json_values, "timeout": json_values}).map(lambda d: json.dumps(d).encode()),
    st.integers(1, 70_000).map(lambda n: b"[" * n),
    st.integers(1, 5000).map(lambda n: ('{"command":' * n + '"status"' + "}" * n).encode()),
    not_utf8(),
)


@PURE
@given(data=request_bytes)
def test_decode_request_gives_a_request_or_bad_request(data):
    parse_or_bad_request(data)


@pytest.mark.parametrize("data,problem", [
    (b"[" * 60_000, "nested too deeply"),
    (b'{"command":' * 3000, "nested too deeply"),
    (b"\xff\xfe", "not JSON"),
    (b'{"command":NaN}', "unknown command \\(a number\\)"),
    (b'{"command":"' + b"x" * 60_000 + b'"}', "60000 characters"),
])
def test_adversarial_requests(data, problem):
    with pytest.raises(controlsocket.BadRequest, match=problem):
        controlsocket.decode_request(data)


# -- a live master fed random requests -------------------------------------------

# A request is sent as a line (the client then reads the answer), or without a
# newline and followed by end-of-file (the same), or the client hangs up at once.
live_requests = st.tuples(
    st.one_of(request_bytes,
              st.integers(60_000, 300_000).map(lambda n: b'{"command":"status","pad":"' + b"a" * n + b'"}'),
              st.dictionaries(st.text(max_size=5), json_values, max_size=3).map(
                  lambda extra: json.dumps({**extra, "command": "status"}).encode())),
    st.sampled_from(["line", "eof", "hangup"]))


def send(path, data: bytes, mode: str):
    """Send one request on a fresh connection; the answer, if one was read."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    try:
        sock.connect(path)
        try:
            sock.sendall(data + (b"\n" if mode == "line" else b""))
            if mode == "eof":
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the master answered an oversized request before reading it all
        if mode == "hangup":
            return None
        reply = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return None  # the master closed with our unread bytes in its buffer
            if not chunk:
                return reply
            reply += chunk
    finally:
        sock.close()


def test_master_survives_random_control_requests(procs, tmp_path, redis_url):
    master = Master(procs, tmp_path, redis_url, ["queues: [default]\ncount: 2"])
    workers = master.wait_workers(2)
    path = str(tmp_path / "var/run/resqued.sock")
    sent = []

    @LIVE
    @given(requests=st.lists(live_requests, min_size=40, max_size=40))
    def feed(requests):
        for data, mode in requests:
            line = data.split(b"\n", 1)[0]
            request = parse_or_bad_request(line) if len(line) <= controlsocket.MAX_REQUEST else None
            if request is not None and request.command != "status":
                continue  # a real command (pause, stop, …) is not bad input
            sent.append(data)
            reply = send(path, data, mode)
            assert master.proc.poll() is None, (data[:200], log_text(master.proc)[-3000:])
            if reply is None:
                continue
            if reply == b"":
                assert not line.strip(), (data[:200], log_text(master.proc)[-3000:])  # only an empty one gets none
                continue
            answer = json.loads(reply)
            assert reply.count(b"\n") == 1, reply[:200]
            if answer["ok"]:
                assert request is not None and answer["master"]["pid"] == master.pid
            else:
                assert one_line(answer["error"]) and len(answer["error"]) < 1000, answer
                # A status request fails only for its size.
                assert request is None or "longer than" in answer["error"], answer
        status = masterclient.request(path, "status", timeout=10)
        assert status["master"]["pid"] == master.pid
        assert sorted(w["pid"] for w in status["workers"]) == workers
        assert master.workers() == workers

    feed()
    assert len(sent) >= 150
    assert "Traceback" not in log_text(master.proc)


# -- a live worker fed random queue items ------------------------------------------

def runnable(raw) -> bool:
    payload = decoded_or_invalid(raw)
    return isinstance(payload, dict) and payload["class"] in JOB_NAMES


def test_worker_survives_random_queue_items(procs, redis_url, r, resque):
    worker = procs.resqued(redis_url)
    wait_registered(r, worker)
    examples = []

    @LIVE
    @example(items=ADVERSARIAL_ITEMS)
    @given(items=st.lists(raw_items.filter(lambda raw: not runnable(raw)), min_size=40, max_size=40))
    def feed(items):
        examples.append(items)
        sentinel = 1000 + len(examples)
        failed_before, processed_before = r.llen("resque:failed"), int(r.get("resque:stat:processed") or 0)
        stat_failed_before = int(r.get("resque:stat:failed") or 0)
        r.rpush("resque:queue:default", *items)
        resque.enqueue_call("default", "add", sentinel, 0)
        wait_log(r, f"add:{sentinel}")
        wait_until(lambda: int(r.get("resque:stat:processed") or 0) == processed_before + len(items) + 1
                   or worker.poll() is not None, message="every item and the sentinel counted as processed")
        assert worker.poll() is None, log_text(worker)[-3000:]
        entries = [json.loads(e) for e in r.lrange("resque:failed", failed_before, -1)]
        assert len(entries) == len(items)
        assert int(r.get("resque:stat:failed")) == stat_failed_before + len(items)
        for raw, entry in zip(items, entries):
            expected = decoded_or_invalid(raw)
            assert one_line(entry["error"]) and len(entry["error"]) < 1000, entry["error"][:300]
            if isinstance(expected, wire.InvalidPayload):
                assert entry["exception"] == "resqued.InvalidPayload" and str(expected) in entry["error"]
                assert entry["payload"]["raw"] == raw.decode("utf-8", errors="backslashreplace")
            else:
                assert entry["exception"] == "resqued.UnknownJob" and "not allowed" in entry["error"]
                assert entry["payload"]["class"] == expected["class"]

    assert not any(map(runnable, ADVERSARIAL_ITEMS))
    feed()
    assert sum(map(len, examples)) >= 200 + len(ADVERSARIAL_ITEMS)
    assert worker.poll() is None
    assert "Traceback" not in log_text(worker)
