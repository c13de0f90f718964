"""The forking worker, run for real: a resqued process, a real redis-server,
real forks and real signals."""

import json
import os
import re
import signal

import pytest

import resqued
from conftest import log_text, stop, wait_until
from helpers import (failures, job_child_pid, log_entries, pid_gone, title, wait_log,
                     wait_registered, worker_id)
from resqued.process.title import PREFIX


@pytest.fixture
def worker(procs, redis_url, r):
    proc = procs.resqued(redis_url)
    wait_registered(r, proc)
    return proc


def test_runs_php_ruby_and_function_jobs(worker, resque, r):
    job_id = resque.enqueue("default", "PhpJob", {"tag": "a"}, track_status=True)
    resque.enqueue_call("default", "RubyJob", 2, 3)
    resque.enqueue_call("default", "add", 40, 2)
    resque.enqueue_call("default", "tests_jobs_module_is_not_a_prefix.add", 1, 1)  # unknown: fails
    wait_log(r, "add:")
    entries = log_entries(r)
    # setUp, perform and tearDown ran in order, in one job child.
    setup, perform, teardown = entries[:3]
    assert setup.startswith("setUp:") and teardown == "tearDown:" + setup.split(":")[1]
    assert perform == f"perform:a:default:{job_id}"
    assert "ruby:5" in entries and "add:42" in entries
    wait_until(lambda: r.get("resque:stat:processed") == b"4", message="4 processed")
    status = json.loads(r.get(f"resque:job:{job_id}:status"))
    assert status["status"] == 4 and 86000 < r.ttl(f"resque:job:{job_id}:status") <= 86400
    assert r.get(f"resque:stat:processed:{worker_id(worker)}") == b"4"


def test_failure_record_and_stats(worker, resque, r):
    job_id = resque.enqueue("default", "Failing", {"n": 1}, track_status=True)
    wait_until(lambda: r.llen("resque:failed") == 1, message="a failure")
    raw = r.lindex("resque:failed", 0).decode()
    entry = json.loads(raw)
    assert list(entry) == ["failed_at", "payload", "exception", "error", "backtrace", "worker", "queue"]
    assert entry["exception"] == "ValueError" and entry["error"] == "boom {'n': 1}"
    assert entry["payload"]["id"] == job_id and entry["queue"] == "default"
    assert entry["worker"] == worker_id(worker)
    assert re.fullmatch(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \w+", entry["failed_at"])
    assert any("jobs.py" in frame and "in `perform'" in frame for frame in entry["backtrace"])
    own_source = os.path.dirname(resqued.__file__) + os.sep  # not a checkout that happens to be named resqued
    assert not any(own_source in frame for frame in entry["backtrace"])
    wait_until(lambda: r.get("resque:stat:processed") == b"1")
    assert r.get("resque:stat:failed") == b"1"
    assert json.loads(r.get(f"resque:job:{job_id}:status"))["status"] == 3
    assert r.ttl(f"resque:job:{job_id}:status") > 86000


@pytest.mark.parametrize("raw,why", [
    (b"{not json", "not valid JSON"),
    (b'{"args":[]}', "no 'class'"),
    (b'{"class":"PhpJob","args":"x"}', "'args' is a JSON str"),
    (b'[1,2]', "not an object"),
    (b'{"class":"PhpJob","args":["\xff\xfe"]}', "not valid UTF-8"),
    (b'{"class":"os.system","args":["touch /tmp/resqued-pwned"]}', "not allowed"),
    (b'{"class":"builtins.eval","args":["1"]}', "not allowed"),
    (b'{"class":"subprocess.Popen","args":[["true"]]}', "not allowed"),
    (b'{"class":"DontPerform","args":[]}', "not allowed"),  # imported into the job module
])
def test_bad_payloads_fail_cleanly_and_worker_goes_on(worker, resque, r, raw, why):
    r.rpush("resque:queue:default", raw)
    resque.enqueue_call("default", "add", 1, 1)
    wait_log(r, "add:2")
    [entry] = failures(r)
    assert why in entry["error"]
    if b"not json" in raw or b"\xff" in raw:
        assert entry["payload"]["raw"].startswith(raw[:5].decode(errors="backslashreplace"))
    assert worker.poll() is None


def test_dirty_exits_are_failures_and_worker_goes_on(worker, resque, r):
    resque.enqueue("default", "SelfKill", track_status=True)
    resque.enqueue("default", "HardExit", {"code": 3})
    resque.enqueue("default", "CallsExit")
    resque.enqueue_call("default", "add", 2, 2)
    wait_log(r, "add:4")
    wait_until(lambda: r.llen("resque:failed") == 3, message="3 failures")
    kill, hard, calls_exit = failures(r)
    assert kill["exception"] == "Resque::DirtyExit"
    assert re.fullmatch(r"Child process received unhandled signal pid \d+ SIGKILL \(signal 9\)", kill["error"])
    assert hard["exception"] == "Resque::DirtyExit" and "exit code 3" in hard["error"]
    assert calls_exit["exception"] == "SystemExit"
    wait_until(lambda: r.get("resque:stat:processed") == b"4")
    assert r.get("resque:stat:failed") == b"3"  # a dirty exit is counted, unlike in Ruby Resque


def test_sigkill_of_job_child_from_outside(worker, resque, r):
    resque.enqueue("default", "Slow")
    child = job_child_pid(r)
    import os
    os.kill(child, signal.SIGKILL)
    wait_until(lambda: r.llen("resque:failed") == 1, message="dirty exit failure")
    assert "SIGKILL" in failures(r)[0]["error"]
    resque.enqueue_call("default", "add", 3, 3)
    wait_log(r, "add:6")


def test_titles_and_working_on_record(worker, resque, r):
    wait_until(lambda: title(worker.pid) == f"{PREFIX}: Waiting for default", message="idle title")
    job_id = resque.enqueue("default", "Slow", track_status=True)
    child = job_child_pid(r)
    assert re.fullmatch(rf"{re.escape(PREFIX)}: Processing default since \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d \[Slow\]",
                        title(child))
    wait_until(lambda: re.fullmatch(rf"{re.escape(PREFIX)}: Forked {child} at [-\d]+ [:\d]+", title(worker.pid)),
               message="forked title")
    # Sent as the job starts, without waiting for the reply (deferred.py).
    working = json.loads(wait_until(lambda: r.get(f"resque:worker:{worker_id(worker)}"), message="working-on"))
    wait_until(lambda: json.loads(r.get(f"resque:job:{job_id}:status"))["status"] == 2, message="running status")
    assert list(working) == ["queue", "run_at", "payload"] and working["payload"]["class"] == "Slow"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", working["run_at"])
    r.rpush("test:release", 1)
    wait_log(r, "finished:")
    wait_until(lambda: r.get(f"resque:worker:{worker_id(worker)}") is None, message="working-on cleared")


def test_registration_keys_and_clean_quit(worker, r):
    wid = worker_id(worker)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}", r.get(f"resque:worker:{wid}:started").decode())
    beat = r.hget("resque:workers:heartbeat", wid).decode()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", beat)
    assert stop(worker, signal.SIGQUIT) == 0
    assert not r.sismember("resque:workers", wid)
    assert not r.exists(f"resque:worker:{wid}:started")
    assert not r.hexists("resque:workers:heartbeat", wid)


def test_quit_while_blocked_acts_at_once(procs, redis_url, r):
    # INTERVAL=60: if the BLPOP were not interrupted, QUIT would wait a minute.
    proc = procs.resqued(redis_url, extra_env={"INTERVAL": "60"})
    wait_registered(r, proc)
    wait_until(lambda: "Waiting for" in title(proc.pid))
    assert stop(proc, signal.SIGQUIT, timeout=10) == 0


def test_quit_mid_job_finishes_the_job(worker, resque, r):
    resque.enqueue("default", "Slow", track_status=True)
    job_child_pid(r)
    worker.send_signal(signal.SIGQUIT)
    wait_until(lambda: "received SIGQUIT" in log_text(worker), message="QUIT received")
    r.rpush("test:release", 1)
    assert worker.wait(15) == 0
    assert any(e.startswith("finished:") for e in log_entries(r))
    assert r.get("resque:stat:processed") == b"1" and r.llen("resque:failed") == 0
    assert r.scard("resque:workers") == 0


def test_term_mid_job_kills_the_job_requeues_it_and_exits(worker, resque, r):
    job_id = resque.enqueue("default", "Slow", {"seconds": 60})
    child = job_child_pid(r)
    assert stop(worker, signal.SIGTERM) == 0
    assert pid_gone(child)
    [raw] = r.lrange("resque:queue:default", 0, -1)
    assert json.loads(raw)["id"] == job_id and json.loads(raw)["resqued_lost"] == 1
    assert failures(r) == [] and r.get("resque:stat:failed") is None
    assert "killing job child" in log_text(worker) and "the worker is stopping (SIGTERM)" in log_text(worker)
    assert r.scard("resque:workers") == 0 and not r.keys("resque:resqued:inflight:*")


def test_a_job_killed_by_stops_again_and_again_is_failed_after_max_lost(procs, redis_url, resque, r):
    job_id = resque.enqueue("default", "Slow", {"seconds": 60})
    for stops in range(1, 5):
        proc = procs.resqued(redis_url)
        wait_until(lambda: len([e for e in log_entries(r) if e.startswith("started:")]) == stops,
                   message=f"run {stops} of the job")
        assert stop(proc, signal.SIGTERM) == 0
    [entry] = failures(r)       # lost 4 times, more than max_lost 3
    assert entry["exception"] == "resqued.LostJob" and entry["payload"]["id"] == job_id
    assert "lost 4 times, more than max_lost 3" in entry["error"] and r.llen("resque:queue:default") == 0


def test_usr1_kills_the_job_and_keeps_working(worker, resque, r):
    resque.enqueue("default", "Slow", {"seconds": 60})
    child = job_child_pid(r)
    worker.send_signal(signal.SIGUSR1)
    wait_until(lambda: r.llen("resque:failed") == 1, message="killed job recorded")
    assert pid_gone(child)
    resque.enqueue_call("default", "add", 5, 5)
    wait_log(r, "add:10")
    assert worker.poll() is None


def test_usr2_pauses_and_cont_resumes(worker, resque, r):
    worker.send_signal(signal.SIGUSR2)
    wait_until(lambda: title(worker.pid) == f"{PREFIX}: Paused", message="paused title")
    resque.enqueue_call("default", "add", 1, 2)
    # Rendezvous on a second signal: once the worker logged it, it has been
    # through its loop while paused and the job must still be queued.
    worker.send_signal(signal.SIGUSR2)
    wait_until(lambda: log_text(worker).count("received SIGUSR2") == 2)
    assert r.llen("resque:queue:default") == 1
    worker.send_signal(signal.SIGCONT)
    wait_log(r, "add:3")


def test_pause_all_workers_key_is_honoured(worker, resque, r):
    r.set("resque:pause-all-workers", "true")
    wait_until(lambda: title(worker.pid) == f"{PREFIX}: Paused", message="paused by key")
    resque.enqueue_call("default", "add", 1, 3)
    r.delete("resque:pause-all-workers")
    wait_log(r, "add:4")


def test_queue_priority_order(procs, redis_url, resque, r):
    for n in range(3):
        resque.enqueue_call("low", "add", 0, n)
    resque.enqueue_call("high", "add", 100, 0)
    proc = procs.resqued(redis_url, queue="high,low")
    wait_log(r, "add:", 4)
    assert log_entries(r)[0] == "add:100"
    stop(proc)


def test_star_means_every_queue_alphabetically_and_new_ones(procs, redis_url, resque, r):
    resque.enqueue_call("bbb", "add", 0, 2)
    resque.enqueue_call("aaa", "add", 0, 1)
    proc = procs.resqued(redis_url, queue="*", extra_env={"INTERVAL": "0.2"})
    wait_log(r, "add:", 2)
    assert log_entries(r)[:2] == ["add:1", "add:2"]
    resque.enqueue_call("brand-new", "add", 0, 3)
    wait_log(r, "add:3")
    assert r.sismember("resque:workers", worker_id(proc, "*"))
    stop(proc)


def test_payloads_captured_from_php_and_ruby_run(worker, r):
    from conftest import GOLDEN
    php = json.load(open(f"{GOLDEN}/php-resque/01_after_enqueue.json"))
    ruby = json.load(open(f"{GOLDEN}/ruby-resque/snapshots/01_after_enqueue.json"))
    php_items = php["keys"]["resque:queue:golden"]["value"]
    ruby_items = ruby["keys"]["resque:queue:golden"]["value"]
    for item in php_items + ruby_items:
        r.rpush("resque:queue:default", item)
    wait_log(r, "good-job:", len(ruby_items))
    wait_log(r, "golden-ok:", len(php_items))
    assert r.llen("resque:failed") == 0


def test_a_job_without_id_is_logged_by_class_and_queue(worker, r):
    # Ruby's Resque.enqueue writes class and args only.
    for payload in ({"class": "RubyJob", "args": [2, 3]}, {"class": "Failing", "args": [{"n": 2}]},
                    {"class": "NoSuchJob", "args": []}):
        r.rpush("resque:queue:default", json.dumps(payload))
    lines = ["job (no id) RubyJob on default done", "job (no id) Failing on default failed",
             "job (no id) on default refused: job class 'NoSuchJob'"]
    wait_until(lambda: all(line in log_text(worker) for line in lines), message=f"log lines {lines}")
    job_lines = [line for line in log_text(worker).splitlines() if "job " in line]
    assert not [line for line in job_lines if "None" in line], job_lines


def test_prunes_dead_worker_and_records_its_job(procs, redis_url, resque, r):
    import socket
    dead = f"{socket.gethostname()}:999999:default"
    r.sadd("resque:workers", dead)
    r.set(f"resque:worker:{dead}:started", "2026-11-22 00:00:00 +0000")
    payload = {"class": "PhpJob", "args": [{}], "id": "f" * 32, "queue_time": 1.0}
    r.set(f"resque:worker:{dead}", json.dumps({"queue": "default", "run_at": "x", "payload": payload}))
    proc = procs.resqued(redis_url)
    wait_registered(r, proc)
    assert not r.sismember("resque:workers", dead)
    assert not r.exists(f"resque:worker:{dead}")
    [entry] = failures(r)
    assert entry["exception"] == "Resque::DirtyExit" and entry["payload"]["id"] == "f" * 32
    stop(proc)


def test_prunes_by_expired_heartbeat_on_any_host(procs, redis_url, r):
    other = "elsewhere:123:default"
    r.sadd("resque:workers", other)
    r.hset("resque:workers:heartbeat", other, "2020-01-01T00:00:00+00:00")
    proc = procs.resqued(redis_url)
    wait_registered(r, proc)
    assert not r.sismember("resque:workers", other)
    assert not r.hexists("resque:workers:heartbeat", other)
    stop(proc)


def test_heartbeat_beats_while_a_job_runs(procs, redis_url, resque, r):
    proc = procs.resqued(redis_url, extra_env={"RESQUED_HEARTBEAT_INTERVAL": "1"})   # the shortest allowed
    wid = wait_registered(r, proc)
    resque.enqueue("default", "Slow")
    job_child_pid(r)
    first = r.hget("resque:workers:heartbeat", wid)
    wait_until(lambda: r.hget("resque:workers:heartbeat", wid) != first, timeout=5, message="a new beat mid-job")
    r.rpush("test:release", 1)
    stop(proc)


def test_unknown_setting_values_exit_78(procs, redis_url):
    for env in ({"COUNT": "zero"}, {"INTERVAL": "-1"}, {"QUEUE": ""}, {"QUEUE": "a b"},
                {"REDIS_BACKEND": "http://x"}, {"APP_INCLUDE": "/no/such/jobs.py"},
                {"APP_INCLUDE": ""}, {"APP_INCLUDE": "", "COUNT": "2"}, {"RESQUED_HEARTBEAT_INTERVAL": "0.5"}):
        proc = procs.resqued(redis_url, extra_env=env)
        assert proc.wait(15) == 78, (env, log_text(proc))
        out = log_text(proc).strip()
        assert out.startswith("resqued: ") and "\n" not in out and "Traceback" not in out
