"""resquectl's inspection commands against a real redis-server: a few runs of
the real program, the rest through ``main(argv)`` in this process."""

import json
import os
import re
import selectors
import subprocess
import sys
import time
import types

import pytest
import redis

from conftest import ROOT, stop, wait_until
from helpers import log_entries
from resqued.resque import wire
from resqued.ctl.cli import connection_settings, main
from resqued.resque.failures import FailureError
from resqued.resque.keys import Keys

KEYS = Keys()
MISSING_SOCKET = "unix:///nonexistent/resqued-test/redis.sock"


@pytest.fixture
def ctl(redis_url, capsys, monkeypatch):
    """Run ``resquectl ARGS`` in-process against the test server:
    returns (exit code, stdout, stderr)."""
    for name in ("REDIS_URL", "REDIS_BACKEND", "REDIS_BACKEND_DB", "PREFIX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args):
        code = main(["--redis", redis_url, *args])
        out, err = capsys.readouterr()
        # What Redis holds is said after which Redis it is: checked here, and
        # left out of what the tests compare.
        if out.startswith("Redis "):
            heading, out = out.split("\n", 1)
            namespace = next((a for a, b in zip(args[1:], args) if b == "--namespace"),
                             os.environ.get("PREFIX", "resque").rstrip(":"))
            assert heading == f"Redis {redis_url} namespace {namespace} (--redis)"
        return code, out, err
    return run


def run_cli(*args, env=None):
    full_env = dict(os.environ, PYTHONPATH=ROOT, **(env or {}))
    return subprocess.run([sys.executable, "-m", "resqued.ctl", *args], env=full_env,
                          capture_output=True, text=True, timeout=60)


def add_failure(r, job_class="MailJob", args=({"to": "a@b.c"},), error="boom", queue="mail",
                exception="RuntimeError", job_id=None):
    payload = wire.payload(job_class, list(args), job_id or wire.new_job_id())
    r.rpush(KEYS.failed, wire.failure_record(payload, exception, error, ["line 1", "line 2"],
                                             "host:1:mail", queue))
    return payload


def queued(r, queue):
    return [json.loads(raw) for raw in r.lrange(KEYS.queue(queue), 0, -1)]


def one_line_error(err):
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("resquectl: "), err
    return err


# -- the real program ---------------------------------------------------------

def test_cli_enqueue_then_inspect(redis_url, r):
    done = run_cli("--redis", redis_url, "enqueue", "default", "MailJob", '{"to": "x@y.z"}')
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    assert len(job_id) == 32
    assert queued(r, "default")[0]["args"] == [{"to": "x@y.z"}]

    listing = run_cli("queues", "--redis", redis_url)
    assert listing.returncode == 0
    assert listing.stdout.split()[-4:] == ["QUEUE", "SIZE", "default", "1"]

    stats = run_cli("stats", "--json", env={"REDIS_URL": redis_url})
    assert stats.returncode == 0
    assert json.loads(stats.stdout)["pending"] == 1


def test_cli_unreachable_redis_redacts_password():
    done = run_cli("--redis", "redis://admin:s3cr3t@127.0.0.1:1/0", "queues")
    assert done.returncode == 1
    assert done.stdout == ""
    one_line_error(done.stderr)
    assert done.stderr.startswith("resquectl: cannot reach Redis at redis://admin:***@127.0.0.1:1/0: ")
    assert "s3cr3t" not in done.stderr


def test_human_output_names_the_redis_it_read(redis_url, resque, tmp_path):
    """An empty answer from the wrong Redis must not pass for an empty system:
    the output starts with the Redis read (password masked) and why that one."""
    resque.enqueue("default", "MailJob")
    env = {name: "" for name in ("REDIS_URL", "REDIS_BACKEND", "REDIS_BACKEND_DB", "PREFIX")}
    cfg = tmp_path / "pool.yml"
    cfg.write_text("redis: redis://:hunter2@127.0.0.1:1/0\npools:\n  - queues: [default]\n    count: 1\n")
    overridden = run_cli("-c", str(cfg), "queues", env={**env, "REDIS_URL": redis_url})
    assert overridden.returncode == 0, overridden.stderr
    assert overridden.stdout.splitlines() == [
        f"Redis {redis_url} namespace resque (REDIS_URL, overriding redis: redis://:***@127.0.0.1:1/0 of {cfg})",
        "QUEUE    SIZE", "default  1"]
    cfg.write_text(f"redis: {redis_url}\nnamespace: app\npools:\n  - queues: [default]\n    count: 1\n")
    from_file = run_cli("-c", str(cfg), "workers", env=env)
    assert from_file.stdout.splitlines() == [f"Redis {redis_url} namespace app (redis: of {cfg})",
                                             "no workers registered"]
    backend = run_cli("stats", env={**env, "REDIS_BACKEND": redis_url})
    assert backend.stdout.splitlines()[0] == f"Redis {redis_url} namespace resque (REDIS_BACKEND)"
    origin = connection_settings(types.SimpleNamespace(redis=None, namespace=None), {})[2]
    assert origin == "the default: no --redis, REDIS_URL, REDIS_BACKEND or -c pool.yml"
    # --json stays one document.
    assert json.loads(run_cli("queues", "--json", env={**env, "REDIS_URL": redis_url}).stdout) == {"default": 1}


def test_cli_bad_json_is_usage_error(redis_url):
    done = run_cli("--redis", redis_url, "enqueue", "default", "MailJob", "{oops")
    assert done.returncode == 2
    assert "JSON_ARGS is not valid JSON" in one_line_error(done.stderr)


class LineReader:
    """Lines from a child's stdout, each awaited with a deadline."""

    def __init__(self, proc):
        self.proc = proc
        self.buffer = b""
        self.selector = selectors.DefaultSelector()
        self.selector.register(proc.stdout, selectors.EVENT_READ)

    def next(self, timeout=10.0) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not self.selector.select(left):
                raise AssertionError(f"no line within {timeout}s; have {self.buffer!r}")
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                raise AssertionError(f"stdout closed; have {self.buffer!r}")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()


@pytest.fixture
def watch(redis_url):
    started = []

    def start(job_id, *extra):
        proc = subprocess.Popen([sys.executable, "-m", "resqued.ctl", "--redis", redis_url, "job", job_id,
                                 "--watch", *extra], env=dict(os.environ, PYTHONPATH=ROOT),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        started.append(proc)
        return proc, LineReader(proc)
    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


@pytest.mark.parametrize("final, code", [(wire.STATUS_COMPLETE, 0), (wire.STATUS_FAILED, 1)])
def test_cli_job_watch_follows_changes_until_the_end(resque, r, watch, final, code):
    job_id = resque.enqueue("default", "MailJob", None, track_status=True)
    proc, lines = watch(job_id)
    assert lines.next().startswith(f"{job_id}: waiting (updated ")
    r.set(KEYS.status(job_id), wire.status_record(wire.STATUS_RUNNING))
    assert lines.next().startswith(f"{job_id}: running (updated ")
    r.set(KEYS.status(job_id), wire.status_record(final))
    assert lines.next().startswith(f"{job_id}: {wire.STATUS_NAMES[final]} (updated ")
    assert proc.wait(10) == code


def test_cli_job_watch_json_streams_one_document_per_change(resque, r, watch):
    job_id = resque.enqueue("default", "MailJob", None, track_status=True)
    proc, lines = watch(job_id, "--json")
    assert json.loads(lines.next())["status"] == "waiting"
    r.set(KEYS.status(job_id), wire.status_record(wire.STATUS_COMPLETE))
    last = json.loads(lines.next())
    assert (last["id"], last["status"], last["code"]) == (job_id, "complete", 4)
    assert proc.wait(10) == 0


def test_cli_job_watch_stops_when_the_status_disappears(resque, r, watch):
    job_id = resque.enqueue("default", "MailJob", None, track_status=True)
    proc, lines = watch(job_id)
    lines.next()
    resque.stop_tracking(job_id)
    assert proc.wait(10) == 1
    assert "is not tracked (or its status expired)" in proc.stderr.read().decode()


# -- enqueue ------------------------------------------------------------------

@pytest.mark.parametrize("text, args", [('{"a": 1}', [{"a": 1}]), ("[1, 2]", [[1, 2]]),
                                        ("null", [None]), (None, [])])
def test_enqueue_takes_object_array_or_null(ctl, r, text, args):
    code, out, _ = ctl("enqueue", "default", "MailJob", *([text] if text else []))
    assert code == 0
    job = queued(r, "default")[0]
    assert (job["class"], job["args"], job["id"]) == ("MailJob", args, out.strip())
    assert r.get(KEYS.status(job["id"])) is None


def test_enqueue_without_args_runs_a_zero_argument_job(procs, redis_url, r, resque):
    """No JSON_ARGS is no arguments: a real worker calls noop(), not noop(None)."""
    worker = procs.resqued(redis_url)
    wait_until(lambda: r.scard("resque:workers") == 1, message="the worker")
    result = run_cli("--redis", redis_url, "enqueue", "default", "noop", "--track")
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip()
    wait_until(lambda: resque.status(job_id)["status"] in ("complete", "failed"), message="the job to end")
    assert resque.status(job_id)["status"] == "complete", r.lrange(KEYS.failed, 0, -1)
    assert log_entries(r) == ["noop"]
    assert stop(worker) == 0


def test_enqueue_track_and_json(ctl, r, resque):
    code, out, _ = ctl("enqueue", "high", "MailJob", "[]", "--track", "--json")
    assert code == 0
    data = json.loads(out)
    assert data == {"id": data["id"], "queue": "high", "class": "MailJob", "args": [], "tracked": True}
    assert resque.status(data["id"])["status"] == "waiting"


def test_enqueue_call_passes_positional_args_as_ruby_does(ctl, r):
    code, out, _ = ctl("enqueue", "--call", "default", "ResizeImage", '["a.png", 10, 10]')
    assert code == 0
    [job] = queued(r, "default")
    assert (job["class"], job["args"], job["id"]) == ("ResizeImage", ["a.png", 10, 10], out.strip())
    code, _, err = ctl("enqueue", "--call", "default", "ResizeImage", '{"a": 1}')
    assert code == 2 and "--call takes a JSON array" in one_line_error(err)


@pytest.mark.parametrize("args, message", [
    (["default", "MailJob", "{oops"], "JSON_ARGS is not valid JSON"),
    (["default", "MailJob", "42"], "must be a JSON object, array or null, not a number"),
    (["default", "MailJob", '"text"'], "not a string"),
    (["default", "MailJob", "true"], "not a boolean"),
    (["bad,queue", "MailJob"], "invalid queue name"),
    (["default", " "], "invalid job class"),
])
def test_enqueue_rejects_bad_input(ctl, r, args, message):
    code, out, err = ctl("enqueue", *args)
    assert code == 2 and out == ""
    assert message in one_line_error(err)
    assert r.keys("*") == []


# -- queues, workers, stats ---------------------------------------------------

def test_queues_table_and_json(ctl, resque):
    assert ctl("queues") == (0, "no queues\n", "")
    for queue, n in [("mail", 2), ("high", 1)]:
        for _ in range(n):
            resque.enqueue(queue, "MailJob")
    resque.redis.sadd(KEYS.queues, "empty")
    code, out, _ = ctl("queues")
    assert code == 0
    assert [line.split() for line in out.splitlines()] == [
        ["QUEUE", "SIZE"], ["empty", "0"], ["high", "1"], ["mail", "2"]]
    code, out, _ = ctl("queues", "--json")
    assert json.loads(out) == {"empty": 0, "high": 1, "mail": 2}


def register_worker(r, worker_id, job=None, processed=0, failed=0):
    r.sadd(KEYS.workers, worker_id)
    r.set(KEYS.worker_started(worker_id), wire.started_time())
    r.hset(KEYS.heartbeats, worker_id, wire.heartbeat_time(time.time()))
    r.set(KEYS.worker_processed(worker_id), processed)
    r.set(KEYS.worker_failed(worker_id), failed)
    if job:
        queue, payload = job
        r.set(KEYS.worker(worker_id), wire.working_on(queue, payload, ts=0))


ISO_UTC = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def test_workers_table_and_json(ctl, r):
    assert ctl("workers") == (0, "no workers registered\n", "")
    register_worker(r, "box:100:high,mail", processed=7, failed=2)
    register_worker(r, "box:200:mail", job=("mail", wire.payload("MailJob", [], "abc")), processed=3)
    register_worker(r, "box:300:low")
    r.hset(KEYS.paused_workers, "box:300:low", "2026-11-22T02:24:53Z")   # as a paused resqued worker says
    code, out, _ = ctl("workers")
    assert code == 0
    header, idle, busy, paused = [line.split() for line in out.splitlines()]
    assert header == ["WORKER", "STATE", "QUEUE", "CLASS", "SINCE", "PROCESSED", "FAILED", "HEARTBEAT"]
    assert idle[:7] == ["box:100:high,mail", "idle", "-", "-", "-", "7", "2"]
    assert busy[:7] == ["box:200:mail", "busy", "mail", "MailJob", "1970-01-01T00:00:00Z", "3", "0"]
    assert paused[:7] == ["box:300:low", "paused", "-", "-", "2026-11-22T02:24:53Z", "0", "0"]
    code, out, _ = ctl("workers", "--json")
    workers = json.loads(out)
    assert [(w["id"], w["state"]) for w in workers] == [
        ("box:100:high,mail", "idle"), ("box:200:mail", "busy"), ("box:300:low", "paused")]
    assert workers[1]["job"]["payload"]["id"] == "abc"
    # Every time in UTC ISO 8601, whatever format Resque stored it in.
    assert [w["since"] for w in workers] == [None, "1970-01-01T00:00:00Z", "2026-11-22T02:24:53Z"]
    for w in workers:
        assert re.fullmatch(ISO_UTC, w["started"]) and re.fullmatch(ISO_UTC, w["heartbeat"])
    assert (workers[0]["pid"], workers[0]["processed"]) == (100, 7)


def test_workers_times_from_ruby_and_php(ctl, r):
    register_worker(r, "ruby:1:q")
    r.set(KEYS.worker_started("ruby:1:q"), "2026-11-22 03:24:52 +0100")
    r.hset(KEYS.heartbeats, "ruby:1:q", "2026-11-22T03:24:52+01:00")
    register_worker(r, "php:2:q")
    r.set(KEYS.worker_started("php:2:q"), "Sun Nov 22 01:47:42 UTC 2026")
    r.hdel(KEYS.heartbeats, "php:2:q")
    r.set(KEYS.worker("php:2:q"), '{"queue":"q","run_at":"Sun Nov 22 01:47:43 UTC 2026","payload":{"class":"J"}}')
    php, ruby = json.loads(ctl("workers", "--json")[1])
    assert (ruby["started"], ruby["heartbeat"]) == ("2026-11-22T02:24:52Z", "2026-11-22T02:24:52Z")
    assert (php["started"], php["heartbeat"], php["since"]) == ("2026-11-22T01:47:42Z", None, "2026-11-22T01:47:43Z")
    assert php["job"]["run_at"] == "Sun Nov 22 01:47:43 UTC 2026"   # the record itself, as stored


def test_stats_text_and_json(ctl, r, resque):
    resque.enqueue("mail", "MailJob")
    r.set(KEYS.processed, 5)
    r.set(KEYS.failed_count, 1)
    add_failure(r)
    register_worker(r, "box:1:mail")
    add_failure(r)
    code, out, _ = ctl("stats")
    assert code == 0
    assert [line.split()[:2] for line in out.splitlines()] == [
        ["processed:", "5"], ["failed:", "1"], ["pending:", "1"], ["workers:", "1"], ["failures:", "2"]]
    # failed (a counter) and failures (the list) say what each counts.
    lines = dict(line.split(":", 1) for line in out.splitlines())
    assert "ever failed (stat:failed)" in lines["failed"] and "retry, remove and clear leave" in lines["failed"]
    assert "in the failed list now (resquectl failed)" in lines["failures"]
    code, out, _ = ctl("--json", "stats")
    assert json.loads(out) == {"processed": 5, "failed": 1, "pending": 1, "queues": {"mail": 1},
                               "workers": 1, "failures": 2}


def test_queues_clear(ctl, r, resque):
    for _ in range(3):
        resque.enqueue("mail", "MailJob")
    resque.enqueue("high", "MailJob")
    code, out, err = ctl("queues", "clear", "mail")          # refused without --yes, and says what it would do
    assert code == 2 and out == ""
    assert "this deletes 3 jobs (mail: 3); add --yes to do it" in one_line_error(err)
    assert resque.size("mail") == 3
    code, out, err = ctl("queues", "clear", "mail", "nosuch", "--yes")
    assert code == 1 and "no queue named nosuch (queues: high, mail); nothing cleared" in one_line_error(err)
    assert resque.size("mail") == 3
    assert ctl("queues", "clear", "mail", "--yes") == (0, "cleared 3 jobs from queue mail\n", "")
    assert resque.size("mail") == 0 and resque.size("high") == 1
    assert "mail" in resque.queues()                          # still listed (and watched by "*" workers)
    code, out, _ = ctl("queues", "clear", "mail", "high", "--yes", "--json")
    assert json.loads(out) == {"ok": True, "cleared": {"mail": 0, "high": 1}}
    assert ctl("queues", "list")[1].split() == ["QUEUE", "SIZE", "high", "0", "mail", "0"]


def test_inflight_lists_each_held_job_and_whether_its_worker_lives(ctl, r):
    assert ctl("inflight") == (0, "no jobs in flight\n", "")
    live, dead, silent, fast = "box:1:mail", "box:2:a:b,c", "box:3:q", "box:4:q"
    jobs = {w: wire.payload(f"Job{i}", [], f"{i:032x}") for i, w in enumerate([live, dead, silent, fast])}
    register_worker(r, live)
    register_worker(r, silent)
    register_worker(r, fast)
    r.hset(KEYS.heartbeats, silent, wire.heartbeat_time(time.time() - 600))   # Resque's 60 s x 5 ago and more
    r.hset(KEYS.heartbeat_intervals, fast, "1.0")
    r.hset(KEYS.heartbeats, fast, wire.heartbeat_time(time.time() - 10))      # 5 of its own 1 s beats ago
    for worker, queue in [(live, "mail"), (dead, "a:b"), (silent, "q"), (fast, "q")]:
        r.rpush(KEYS.inflight(worker, queue), wire.dumps(jobs[worker]))
    r.rpush(KEYS.inflight(live, "mail"), b"{not json")
    found = json.loads(ctl("inflight", "--json")[1])
    assert [(j["worker"], j["queue"], j["id"], j["class"], j["registered"], j["alive"]) for j in found] == [
        (live, "mail", jobs[live]["id"], "Job0", True, True),
        (live, "mail", None, None, True, True),
        (dead, "a:b", jobs[dead]["id"], "Job1", False, False),
        (silent, "q", jobs[silent]["id"], "Job2", True, False),
        (fast, "q", jobs[fast]["id"], "Job3", True, False)]
    assert re.fullmatch(ISO_UTC, found[0]["heartbeat"]) and found[2]["heartbeat"] is None
    code, out, _ = ctl("inflight")
    rows = [line.split(None, 4) for line in out.splitlines()]
    assert rows[0] == ["WORKER", "QUEUE", "CLASS", "JOB_ID", "ALIVE"]
    assert rows[1][4] == "yes" and rows[3][4] == "no (not registered)"
    assert rows[4][4].startswith("no (last heartbeat 20")


# -- job ----------------------------------------------------------------------

def test_job_status(ctl, resque, r):
    job_id = resque.enqueue("default", "MailJob", None, track_status=True)
    r.set(KEYS.status(job_id), wire.status_record(wire.STATUS_RUNNING))
    code, out, _ = ctl("job", job_id)
    assert code == 0 and out.startswith(f"{job_id}: running (updated 20")
    code, out, _ = ctl("job", job_id, "--json")
    data = json.loads(out)
    assert (data["id"], data["status"], data["code"]) == (job_id, "running", 2)
    assert re.fullmatch(ISO_UTC, data["updated"])      # stored as epoch seconds (php-resque's record)


def test_job_unknown_id(ctl, redis_url):
    code, out, err = ctl("job", "feedface", "--watch")
    assert code == 1 and out == ""
    assert one_line_error(err) == ("resquectl: job feedface is not tracked (or its status expired) "
                                   f"in {redis_url} namespace resque\n")


# -- failed -------------------------------------------------------------------

def test_failed_list_table_paging_and_json(ctl, r):
    assert ctl("failed") == (0, "no failures\n", "")
    for i in range(3):
        add_failure(r, job_class=f"Job{i}", error=f"error {i}\nsecond line")
    code, out, _ = ctl("failed")
    lines = out.splitlines()
    assert lines[0].split() == ["INDEX", "FAILED_AT", "RETRIED_AT", "QUEUE", "CLASS", "JOB_ID", "EXCEPTION", "ERROR"]
    assert len(lines) == 4
    assert lines[1].split()[0] == "0" and "Job0" in lines[1] and lines[1].endswith("error 0 second line")

    code, out, _ = ctl("failed", "list", "--start", "1", "--count", "1")
    lines = out.splitlines()
    assert "Job1" in lines[1] and len(lines) == 3
    assert lines[2] == "showing 1-1 of 3 failures (see --start, --count)"
    assert ctl("failed", "--start", "9")[1] == "no failures from index 9 (there are 3)\n"

    code, out, _ = ctl("failed", "--json", "--count", "2")
    entries = json.loads(out)
    assert [(e["index"], e["payload"]["class"]) for e in entries] == [(0, "Job0"), (1, "Job1")]


def test_failed_list_truncates_the_error_to_the_terminal(ctl, r, monkeypatch):
    add_failure(r, error="x" * 500)
    monkeypatch.setenv("COLUMNS", "150")
    code, out, _ = ctl("failed")
    row = out.splitlines()[1]
    assert len(row) == 150 and row.endswith("x...")


def test_failed_show(ctl, r):
    payload = add_failure(r, error="it broke")
    code, out, _ = ctl("failed", "show", "0")
    assert code == 0
    assert f"\nid:         {payload['id']}\n" in out
    assert "\nerror:      it broke\nretried_at: never\n" in out
    assert out.endswith("backtrace:\n  line 1\n  line 2\n")
    code, out, _ = ctl("failed", "show", "0", "--json")
    assert json.loads(out)["payload"] == payload


@pytest.mark.parametrize("action", [["show"], ["retry"], ["remove"]])
@pytest.mark.parametrize("index, message", [
    ("5", "no failure at index 5 (there are 1)"), ("-1", "failure index must be 0 or more, not -1")])
def test_failed_bad_index(ctl, r, action, index, message):
    add_failure(r)
    code, out, err = ctl("failed", *action, index)
    assert code == 1 and out == ""
    assert message in one_line_error(err)
    assert r.llen(KEYS.failed) == 1


@pytest.mark.parametrize("args", [["show"], ["retry"], ["retry", "--remove"], ["retry", "0", "--all"], ["remove"],
                                  ["--count", "-3"], ["bogus"]])
def test_failed_usage_errors(ctl, args):
    code, out, err = ctl("failed", *args)
    assert code == 2 and out == ""
    assert "usage: resquectl failed" in err


def test_failed_retry_requeues_by_index(ctl, r, resque):
    first = add_failure(r, queue="mail")
    add_failure(r, queue="mail")
    third = add_failure(r, queue="high")
    r.set(KEYS.status(third["id"]), wire.status_record(wire.STATUS_FAILED))
    code, out, _ = ctl("failed", "retry", "2", "0")
    assert code == 0
    assert out.splitlines() == [f"retried failure 0: MailJob {first['id']} -> queue mail",
                                f"retried failure 2: MailJob {third['id']} -> queue high"]
    assert queued(r, "mail") == [first] and queued(r, "high") == [third]
    assert resque.status(third["id"])["status"] == "waiting"
    assert resque.status(first["id"]) is None  # an untracked job stays untracked
    entries = resque.failures.all()
    assert [bool(e.get("retried_at")) for e in entries] == [True, False, True]


def test_an_all_digits_job_id_is_never_taken_for_an_index(ctl, r, resque):
    """php-resque lets a caller choose the id (an order number, say), which
    JSON may even hold as a number."""
    add_failure(r, queue="mail")
    add_failure(r, queue="mail")
    order = add_failure(r, queue="mail", job_id="1")
    code, _, err = ctl("failed", "remove", "1")
    assert code == 2 and "1 is both an index and a job's id: say id:1" in one_line_error(err)
    assert resque.failures.count() == 3                      # nothing removed
    code, out, _ = ctl("failed", "retry", "id:1")
    assert code == 0 and queued(r, "mail") == [order]
    numeric = wire.payload("MailJob", [], 42)
    r.rpush(KEYS.failed, wire.failure_record(numeric, "RuntimeError", "boom", [], "host:1:mail", "mail"))
    assert ctl("failed", "show", "id:42")[0] == 0


def test_retry_remove_keeps_a_jobs_records_when_it_could_not_be_requeued(ctl, r, resque):
    job = add_failure(r, queue="mail")
    newest = wire.payload("MailJob", [], job["id"])
    r.rpush(KEYS.failed, wire.failure_record(newest, "RuntimeError", "again", [], "host:1:mail", ""))
    code, _, _ = ctl("failed", "retry", "--remove", job["id"])
    assert code != 0                                          # the newest names no queue
    assert resque.failures.count() == 2 and queued(r, "mail") == []


def test_failed_retry_all_reports_undecodable_entries(ctl, r):
    good = add_failure(r)
    r.rpush(KEYS.failed, b"{not json")
    code, out, err = ctl("failed", "retry", "--all", "--json")
    assert code == 1
    result = json.loads(out)
    assert [e["index"] for e in result["retried"]] == [0]
    assert result["errors"] == [{"index": 1, "error": result["errors"][0]["error"]}]
    assert "failure 1 holds no runnable payload" in one_line_error(err)
    assert queued(r, "mail") == [good]


def test_failed_retry_undecodable_entry(ctl, r):
    r.rpush(KEYS.failed, b"\xff\xfe garbage")
    code, out, err = ctl("failed", "retry", "0")
    assert code == 1 and out == ""
    assert "holds no runnable payload (it was undecodable); remove it instead" in one_line_error(err)
    assert ctl("failed", "retry", "--all")[0] == 1
    code, out, _ = ctl("failed", "show", "0")
    assert "undecodable failure entry" in out and "raw:" in out


def test_failed_retry_all_with_nothing_to_do(ctl):
    assert ctl("failed", "retry", "--all") == (0, "no failures to retry\n", "")


def test_failed_remove_several(ctl, r, resque):
    payloads = [add_failure(r, job_class=f"Job{i}") for i in range(5)]
    code, out, _ = ctl("failed", "remove", "3", "1", "1")
    assert code == 0
    assert out == f"removed failure 1: Job1 {payloads[1]['id']}\nremoved failure 3: Job3 {payloads[3]['id']}\n"
    assert [e["payload"]["class"] for e in resque.failures.all()] == ["Job0", "Job2", "Job4"]
    code, out, err = ctl("failed", "remove", "0", "3")
    assert code == 1 and "no failure at index 3 (there are 3)" in one_line_error(err)
    assert resque.failures.count() == 3   # one name unknown: nothing removed
    code, out, _ = ctl("failed", "remove", "0", "--json")
    assert json.loads(out) == {"ok": True, "removed": [{"index": 0, "queue": "mail", "payload": payloads[0]}],
                               "errors": []}


def fail_again(r, payload, error="boom again"):
    """The job failed once more, after a retry: a second entry, same id."""
    r.rpush(KEYS.failed, wire.failure_record(payload, "RuntimeError", error, [], "host:1:mail", "mail"))


def test_failed_entries_by_job_id(ctl, r, resque):
    first = add_failure(r, job_class="Job0")
    second = add_failure(r, job_class="Job1")
    fail_again(r, second)
    code, out, _ = ctl("failed", "show", second["id"])        # the job's newest failure
    assert code == 0
    assert "\nindex:      2\n" in out or out.startswith("index:      2\n")
    assert "\nerror:      boom again\n" in out and out.endswith("earlier failures of this job: index 1\n")
    assert json.loads(ctl("failed", "show", second["id"], "--json")[1])["index"] == 2
    # The list says which job each entry is, and which were retried.
    assert second["id"] in ctl("failed")[1].splitlines()[2]

    code, out, _ = ctl("failed", "retry", second["id"])        # put back once, from its newest entry
    assert code == 0 and out == f"retried failure 2: Job1 {second['id']} -> queue mail\n"
    assert queued(r, "mail") == [second]
    assert [bool(e.get("retried_at")) for e in resque.failures.all()] == [False, False, True]
    assert "retried_at: 20" in ctl("failed", "show", "2")[1]
    assert ctl("failed")[1].splitlines()[3].split()[4].startswith("20")   # RETRIED_AT, after FAILED_AT's 3 words

    # Indexes shift as entries go; ids do not.
    assert ctl("failed", "remove", first["id"])[0] == 0
    code, out, _ = ctl("failed", "remove", second["id"])        # every entry of the job
    assert code == 0 and out.splitlines() == [f"removed failure 0: Job1 {second['id']}",
                                              f"removed failure 1: Job1 {second['id']}"]
    assert resque.failures.count() == 0


@pytest.mark.parametrize("action", [["show"], ["retry"], ["remove"]])
def test_failed_unknown_job_id_changes_nothing(ctl, r, action):
    add_failure(r)
    code, out, err = ctl("failed", *action, *(["0"] if action != ["show"] else []), "f" * 32)
    assert code == 1 and out == ""
    assert f"no failure of job {'f' * 32}" in one_line_error(err)
    assert r.llen(KEYS.failed) == 1 and r.llen(KEYS.queue("mail")) == 0
    assert json.loads(r.lindex(KEYS.failed, 0)).get("retried_at") is None


def test_failed_retry_and_remove(ctl, r, resque):
    keep = add_failure(r, job_class="Keep")
    by_index = add_failure(r, job_class="ByIndex", queue="high")
    by_id = add_failure(r, job_class="ById")
    fail_again(r, by_id)
    r.set(KEYS.status(by_id["id"]), wire.status_record(wire.STATUS_FAILED))
    code, out, _ = ctl("failed", "retry", "--remove", "1", by_id["id"])
    assert code == 0
    assert out.splitlines() == [f"retried and removed failure 1: ByIndex {by_index['id']} -> queue high",
                                f"retried and removed failure 3: ById {by_id['id']} -> queue mail",
                                f"removed failure 2: ById {by_id['id']} (an earlier failure of the job)"]
    assert queued(r, "high") == [by_index] and queued(r, "mail") == [by_id]   # each job once
    assert [e["payload"]["id"] for e in resque.failures.all()] == [keep["id"]]
    assert resque.status(by_id["id"])["status"] == "waiting"
    code, out, _ = ctl("failed", "retry", "--remove", "--all", "--json")
    result = json.loads(out)
    assert result["ok"] is True and [(e["index"], e["removed"]) for e in result["retried"]] == [(0, True)]
    assert resque.failures.count() == 0 and queued(r, "mail") == [by_id, keep]


def test_failed_entry_changed_meanwhile_is_not_mistaken_for_another(r, resque):
    """What the index-free changes guard against: the list moved between
    reading an entry and acting on it."""
    for i in range(3):
        add_failure(r, job_class=f"Job{i}")
    failures = resque.failures
    entry = failures.get(1)
    failures.remove(0)                          # entry 1 is now at index 0
    failures.requeue(entry)                     # found where it is now
    assert [bool(e.get("retried_at")) for e in failures.all()] == [True, False]
    with pytest.raises(FailureError, match="failure 1 changed or was removed meanwhile"):
        failures.requeue(entry, remove=True)    # it has changed (retried_at) since it was read
    failures.remove(failures.get(0))
    assert [e["payload"]["class"] for e in failures.all()] == ["Job2"]
    assert [j["class"] for j in queued(r, "mail")] == ["Job1"]


def test_failed_clear(ctl, r):
    add_failure(r)
    add_failure(r)
    assert ctl("failed", "clear") == (0, "cleared 2 failures\n", "")
    assert r.exists(KEYS.failed) == 0
    code, out, _ = ctl("failed", "clear", "--json")
    assert json.loads(out) == {"cleared": 0}


# -- connection ---------------------------------------------------------------

@pytest.mark.parametrize("args", [["enqueue", "q", "C"], ["queues"], ["workers"], ["stats"], ["job", "x"],
                                  ["failed"], ["failed", "show", "0"], ["failed", "retry", "--all"],
                                  ["failed", "remove", "0"], ["failed", "clear"], ["queues", "clear", "q"],
                                  ["inflight"]])
def test_unreachable_redis_is_one_line(args, capsys):
    assert main(["--redis", MISSING_SOCKET, *args]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert one_line_error(err).startswith(f"resquectl: cannot reach Redis at {MISSING_SOCKET}: ")


@pytest.mark.parametrize("args, code, message", [
    (["--redis", MISSING_SOCKET, "queues"], 1, f"cannot reach Redis at {MISSING_SOCKET}: "),
    (["--redis", "ftp://x", "stats"], 2, "scheme must be redis, rediss, unix or redis+sentinel"),
    (["failed", "show", "7"], 1, "no failure at index 7 (there are 0)"),
    (["enqueue", "q", "C", "42"], 2, "JSON_ARGS must be a JSON object, array or null"),
    (["failed", "retry"], 2, "resquectl failed retry: error: one of the arguments"),
    (["bogus"], 2, "resquectl: error: argument COMMAND: invalid choice: 'bogus'"),
    (["job", "nope", "--watch"], 1, "job nope is not tracked"),
])
def test_json_errors_are_json_on_stdout(ctl, args, code, message):
    """With --json an error is also a JSON object on stdout, with the exit status."""
    got, out, err = ctl(*args, "--json")
    assert got == code
    error = json.loads(out)
    assert error == {"ok": False, "error": error["error"], "exit": code}
    assert message in error["error"] and "\n" not in error["error"]
    assert message in err                     # and the one line (or argparse's usage) on stderr


def test_password_in_a_query_is_redacted(capsys):
    assert main(["queues", "--redis", MISSING_SOCKET + "?password=hunter2"]) == 1
    err = capsys.readouterr().err
    assert "hunter2" not in err and "password=***" in one_line_error(err)


def test_bad_redis_url_is_usage_error(capsys):
    assert main(["--redis", "ftp://example.com", "queues"]) == 2
    assert "scheme must be redis, rediss, unix or redis+sentinel" in one_line_error(capsys.readouterr().err)


def test_namespace_flag_and_prefix(ctl, r, monkeypatch):
    assert ctl("--namespace", "myapp", "enqueue", "default", "MailJob")[0] == 0
    assert r.llen("myapp:queue:default") == 1
    monkeypatch.setenv("PREFIX", "myapp:")
    assert ctl("queues")[1].split() == ["QUEUE", "SIZE", "default", "1"]
    assert ctl("queues", "--namespace", "other")[1] == "no queues\n"


def test_redis_backend_and_db_from_the_environment(redis_url, monkeypatch, capsys):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("REDIS_BACKEND", redis_url)
    monkeypatch.setenv("REDIS_BACKEND_DB", "3")
    assert main(["enqueue", "default", "MailJob"]) == 0
    client = redis.Redis.from_url(redis_url, db=3)
    assert client.llen(KEYS.queue("default")) == 1
    client.close()


@pytest.mark.parametrize("flag, environ, expected", [
    (None, {}, ("redis://127.0.0.1:6379/0", "resque")),
    (None, {"REDIS_BACKEND": "cache:6380", "REDIS_BACKEND_DB": "2", "PREFIX": "app"},
     ("redis://cache:6380/2", "app")),
    (None, {"REDIS_URL": "redis://a:1/4", "REDIS_BACKEND": "b:2"}, ("redis://a:1/4", "resque")),
    ("redis://flag:1/0", {"REDIS_URL": "redis://a:1/4"}, ("redis://flag:1/0", "resque")),
])
def test_connection_settings_precedence(flag, environ, expected):
    args = types.SimpleNamespace(redis=flag, namespace=None)
    assert connection_settings(args, environ)[:2] == expected


def test_inflight_skips_a_key_of_another_type_under_its_pattern(ctl, r):
    r.set("resque:resqued:inflight:h:1:q:q", "not a list")
    r.rpush("resque:resqued:inflight:h:2:q:q", wire.dumps(wire.payload("MailJob", [], "a" * 32)))
    code, out, _ = ctl("inflight", "--json")
    assert code == 0
    assert [entry["worker"] for entry in json.loads(out)] == ["h:2:q"]
