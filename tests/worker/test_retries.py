"""Retries with backoff, run for real: a worker, the scheduler process
(python -m resqued.scheduler) and Redis. A retried attempt becomes a delayed
job carrying its attempt number; only the final failure reaches the failed
list and stat:failed."""

import json
import os
import signal

import pytest

from conftest import HERE, JOBS_FILE, log_text, stop, wait_until
from helpers import check_pool_yml as check, failures, log_entries, wait_log, wait_registered
from resqued.scheduler.command import command

RETRY_JOBS = os.path.join(HERE, "retryjobs.py")


@pytest.fixture
def running(procs, redis_url, r):
    """A worker with the retry jobs, and a scheduler to move their retries."""
    procs.spawn(command(redis_url), name="scheduler")
    worker = procs.resqued(redis_url, extra_env={"APP_INCLUDE": f"{JOBS_FILE},{RETRY_JOBS}",
                                                 "RESQUE_TERM_TIMEOUT": "1"})
    wait_registered(r, worker)
    return worker


def runs(r, job_class):
    return [e for e in log_entries(r) if e.startswith(f"run:{job_class}:")]


def wait_settled(r, processed, timeout=20):
    """The worker recorded ``processed`` runs and nothing waits delayed."""
    wait_until(lambda: r.get("resque:stat:processed") == str(processed).encode()
               and not r.exists("resque:delayed_queue_schedule") and not r.llen("resque:queue:default"),
               timeout, message=f"{processed} runs recorded")


def test_a_job_failing_twice_then_succeeding_ends_done_with_no_failure(running, r, resque):
    job_id = resque.enqueue("default", "FlakyTwice", {"n": 1}, track_status=True)
    wait_log(r, "run:FlakyTwice:3:")
    wait_settled(r, 3)
    # Each run carried its attempt number in its payload.
    assert [e.split(":")[2] for e in runs(r, "FlakyTwice")] == ["1", "2", "3"]
    assert r.llen("resque:failed") == 0 and r.get("resque:stat:failed") in (None, b"0")
    status = json.loads(r.get(f"resque:job:{job_id}:status"))
    assert status["status"] == 4                     # complete, under the id it had from the start
    text = log_text(running)
    assert f"job {job_id} FlakyTwice on default failed (attempt 1 of 3): ConnectionError: " \
           "the service is away; retry in 0.0 s" in text
    assert "failed (attempt 2 of 3)" in text and "(attempt 3 of 3)" not in text
    # onFailure listeners hear of each failed attempt, as resque-retry's jobs' hooks do.
    assert log_entries(r).count("onFailure:ConnectionError:FlakyTwice") == 2


def test_a_fork_false_worker_retries_too(procs, redis_url, r, resque):
    procs.spawn(command(redis_url), name="scheduler")
    worker = procs.resqued(redis_url, extra_env={"APP_INCLUDE": f"{JOBS_FILE},{RETRY_JOBS}", "FORK_PER_JOB": "false"})
    wait_registered(r, worker)
    resque.enqueue("default", "FlakyTwice")
    wait_log(r, "run:FlakyTwice:3:")
    wait_settled(r, 3)
    assert r.llen("resque:failed") == 0 and "failed (attempt 2 of 3)" in log_text(worker)


def test_a_job_failing_every_attempt_is_failed_once_with_its_attempts(running, r, resque):
    job_id = resque.enqueue("default", "AlwaysFails", track_status=True)
    wait_until(lambda: r.llen("resque:failed") == 1, 20, message="the final failure")
    wait_settled(r, 3)
    assert len(runs(r, "AlwaysFails")) == 3
    failure = failures(r)[0]
    assert failure["exception"] == "ValueError" and failure["error"] == "bad data"
    assert failure["attempts"] == 3
    assert "attempt" not in failure["payload"] and failure["payload"]["id"] == job_id
    assert r.get("resque:stat:failed") == b"1"
    assert json.loads(r.get(f"resque:job:{job_id}:status"))["status"] == 3       # failed, at the end
    assert "failed (attempt 2 of 3): ValueError: bad data; retry in 1 s" in log_text(running)


def test_the_status_reads_waiting_between_attempts(running, r, resque):
    job_id = resque.enqueue("default", "AlwaysFails", track_status=True)
    wait_log(r, "run:AlwaysFails:1:")
    wait_until(lambda: r.exists("resque:delayed_queue_schedule"), message="the retry scheduled")
    assert json.loads(r.get(f"resque:job:{job_id}:status"))["status"] == 1       # waiting
    [ts] = r.zrange("resque:delayed_queue_schedule", 0, -1)
    [item] = r.lrange(b"resque:delayed:" + ts, 0, -1)
    entry = json.loads(item)
    assert list(entry)[:3] == ["class", "args", "queue"]                # resque-scheduler's layout
    assert entry["id"] == job_id and entry["attempt"] == 2
    assert r.sismember(b"resque:timestamps:" + item, b"delayed:" + ts)


@pytest.mark.parametrize("job_class, exception", [
    ("Refuses", "resqued.DontRetry"), ("GivesUpOnKeyError", "KeyError")])
def test_dont_retry_and_give_up_on_stop_at_once(running, r, resque, job_class, exception):
    resque.enqueue("default", job_class)
    wait_until(lambda: r.llen("resque:failed") == 1, message="the failure")
    wait_settled(r, 1)
    assert len(runs(r, job_class)) == 1
    failure = failures(r)[0]
    assert failure["exception"] == exception and failure["attempts"] == 1


def test_retry_on_limits_retries_to_those_exceptions(running, r, resque):
    resque.enqueue("default", "RetriesOnlyOSErrors", {"raise": "ValueError"})
    wait_until(lambda: r.llen("resque:failed") == 1, message="the ValueError failure")
    wait_settled(r, 1)
    resque.enqueue("default", "RetriesOnlyOSErrors", {"raise": "ConnectionError"})   # an OSError
    wait_until(lambda: r.llen("resque:failed") == 2, 20, message="the ConnectionError's final failure")
    wait_settled(r, 4)
    assert [f["attempts"] for f in failures(r)] == [1, 3]


@pytest.mark.parametrize("job_class, exception", [("DiesOnce", "Resque::DirtyExit"),
                                                  ("SlowOnce", "resqued.JobTimeout")])
def test_a_dirty_exit_and_a_timeout_count_as_attempts(running, r, resque, job_class, exception):
    resque.enqueue("default", job_class)
    wait_log(r, f"run:{job_class}:2:", timeout=20)
    wait_settled(r, 2)
    assert r.llen("resque:failed") == 0
    assert f"failed (attempt 1 of 3): {exception}: " in log_text(running)


def test_dirty_exit_false_fails_a_dirty_exit_at_once(running, r, resque):
    resque.enqueue("default", "NoRetryOnDeath")
    wait_until(lambda: r.llen("resque:failed") == 1, message="the failure")
    failure = failures(r)[0]
    assert failure["exception"] == "Resque::DirtyExit" and failure["attempts"] == 1
    assert len(runs(r, "NoRetryOnDeath")) == 1


def test_a_job_killed_by_a_stop_goes_back_to_its_queue_without_using_an_attempt(procs, redis_url, r, resque,
                                                                               running):
    resque.enqueue("default", "SleepsFirst")
    wait_log(r, "run:SleepsFirst:1:")
    assert stop(running, signal.SIGTERM) == 0
    assert not r.exists("resque:delayed_queue_schedule") and r.llen("resque:failed") == 0
    [raw] = r.lrange("resque:queue:default", 0, -1)
    assert "attempt" not in json.loads(raw)                  # still its first attempt
    worker = procs.resqued(redis_url, extra_env={"APP_INCLUDE": f"{JOBS_FILE},{RETRY_JOBS}"})
    wait_registered(r, worker)
    wait_log(r, "run:SleepsFirst:1:", count=2)
    wait_until(lambda: r.get("resque:stat:processed") == b"1", message="the second run recorded")
    assert r.llen("resque:failed") == 0 and "failed (attempt" not in log_text(worker)


def test_a_pools_retry_applies_to_jobs_without_their_own(procs, master_factory, redis_url, r, resque):
    procs.spawn(command(redis_url), name="scheduler")
    master = master_factory(["queues: [default]\ncount: 1\nretry: {attempts: 2, backoff: fixed, base: 0}"],
                            jobs=f"[{JOBS_FILE}, {RETRY_JOBS}]")
    master.wait_workers(1)
    resque.enqueue("default", "UsesThePoolsRetry")
    wait_log(r, "run:UsesThePoolsRetry:2:", timeout=20)
    wait_settled(r, 2)
    assert r.llen("resque:failed") == 0


# -- bad settings ----------------------------------------------------------------------

@pytest.mark.parametrize("pool, line, problem", [
    ("retry: 0", 6, "pools[0].retry: attempts: expected a whole number >= 1, got 0"),
    ("retry: {attempts: 3, backoff: soon}", 6,
     "pools[0].retry.backoff: expected exponential, linear, fixed or a list of delays, got 'soon'"),
    ("retry:\n      attempts: 3\n      jitter: 2", 8,
     "pools[0].retry.jitter: a fraction of the delay, at most 1, got 2"),
    ("retry:\n      attempts: 3\n      tries: 2", 8, "pools[0].retry.tries: unknown key"),
    ("retry: {backoff: [1, -1]}", 6, "pools[0].retry.backoff: must be at least 0, got -1"),
    ("retry: {base: 2}", 6, "pools[0].retry: attempts: missing"),
])
def test_a_bad_pool_retry_is_refused_with_file_and_line(tmp_path, redis_url, pool, line, problem):
    code, out = check(tmp_path, f"redis: {redis_url}\njobs: [{JOBS_FILE}]\npools:\n"
                                f"  - queues: [default]\n    count: 1\n    {pool}\n")
    assert code == 78, out
    assert out.startswith(f"resqued: {tmp_path / 'pool.yml'}:{line}: {problem}") and "\n" not in out, out


def test_check_shows_a_pools_retry(tmp_path, redis_url):
    code, out = check(tmp_path, f"redis: {redis_url}\njobs: [{JOBS_FILE}]\ndefaults: {{retry: 4}}\npools:\n"
                                "  - queues: [a]\n    count: 1\n  - queues: [b]\n    count: 1\n"
                                "    retry: {backoff: [5, 60]}\n")
    assert code == 0, out
    assert "a: count 1; " in out and "; retry 4 attempts, exponential backoff, base 2s, max 3600s" in out, out
    assert "; retry 3 attempts, delays 5s, 60s" in out, out


@pytest.mark.parametrize("attributes, problem", [
    ("job_retry = {'attempts': 'many'}", "job_retry: attempts: expected a whole number >= 1, got 'many'"),
    ("retry = 3\n    retry_on = (3,)", "retry_on must be exception classes or their names, not 3"),
    ("job_retry = 'x'\n    retry = 3", "job_retry: expected a number of attempts or a mapping, got 'x'"),
])
def test_a_bad_class_retry_is_refused_at_start(tmp_path, redis_url, attributes, problem):
    jobs = tmp_path / "badretry.py"
    jobs.write_text(f"class Flaky:\n    {attributes}\n\n    def perform(self):\n        pass\n")
    code, out = check(tmp_path, f"redis: {redis_url}\njobs: [{jobs}]\npools:\n  - queues: [default]\n    count: 1\n")
    assert code == 78, out
    assert f"jobs: job Flaky ({jobs}): {problem}" in out, out


@pytest.mark.parametrize("bad_key", ["resque:delayed_queue_schedule", "timestamp"])
def test_a_retry_into_keys_of_the_wrong_type_is_failed_not_lost(procs, redis_url, r, resque, bad_key):
    # A MULTI goes on past a failing ZADD: the retry is one script that checks first.
    worker = procs.resqued(redis_url, extra_env={"APP_INCLUDE": f"{JOBS_FILE},{RETRY_JOBS}"})
    wait_registered(r, worker)
    if bad_key == "timestamp":
        # AlwaysFails retries 1 s later: every delayed:<ts> near now is a string.
        import time
        now = int(time.time())
        for ts in range(now, now + 30):
            r.set(f"resque:delayed:{ts}", "oops")
        bad_key = "resque:delayed:"
    else:
        r.set(bad_key, "oops")
    job_id = resque.enqueue("default", "AlwaysFails", track_status=True)
    wait_until(lambda: r.llen("resque:failed") == 1, 20, message="the failure")
    failure = failures(r)[0]
    assert failure["exception"] == "ValueError" and failure["attempts"] == 1
    assert "could not be scheduled: " + bad_key in failure["error"] and "is not of its type" in failure["error"]
    assert failure["payload"]["id"] == job_id and "attempt" not in failure["payload"]
    assert r.get("resque:stat:failed") == b"1"
    assert json.loads(r.get(f"resque:job:{job_id}:status"))["status"] == 3
    assert not [k for k in r.keys("resque:resqued:inflight:*") if r.llen(k)]
    assert not r.exists("resque:delayed_queue_schedule") or r.type("resque:delayed_queue_schedule") == b"string"
    resque.enqueue("default", "FlakyTwice")
    wait_until(lambda: r.llen("resque:failed") == 2, 20, message="the next job's failure")
    assert worker.poll() is None                 # it lived on
    # Its "retry in 1 s" line is corrected, naming the keys it could not write.
    assert "the retry could not be scheduled (resque:delayed:" in log_text(worker)


def test_a_plain_retry_that_is_no_policy_is_ignored_and_job_retry_wins(procs, redis_url, r, resque):
    worker = procs.resqued(redis_url, extra_env={"APP_INCLUDE": f"{JOBS_FILE},{RETRY_JOBS}"})
    wait_registered(r, worker)
    assert log_text(worker).count(f"job HasARetryMethod ({RETRY_JOBS}): retry is not a retry policy") == 1
    resque.enqueue("default", "HasARetryMethod")
    resque.enqueue("default", "OwnJobRetry")
    wait_until(lambda: r.llen("resque:failed") == 1 and r.exists("resque:delayed_queue_schedule"), 20,
               message="one failure, one retry")
    assert failures(r)[0]["payload"]["class"] == "HasARetryMethod"       # no policy: failed at once


@pytest.mark.parametrize("fork", ["true", "false"])
def test_retry_on_matches_a_class_only_the_job_imported(procs, redis_url, r, resque, fork):
    procs.spawn(command(redis_url), name="scheduler")
    worker = procs.resqued(redis_url, extra_env={"APP_INCLUDE": f"{JOBS_FILE},{RETRY_JOBS}", "FORK_PER_JOB": fork})
    wait_registered(r, worker)
    resque.enqueue("default", "RaisesAClassOnlyItsChildKnows")
    wait_log(r, "run:RaisesAClassOnlyItsChildKnows:2:")
    wait_settled(r, 2)
    assert r.llen("resque:failed") == 0


def test_a_pools_retry_without_the_scheduler_is_warned_of_at_check_and_start(tmp_path, master_factory, redis_url):
    pools = "pools:\n  - queues: [a]\n    count: 1\n    retry: 3\n  - queues: [b]\n    count: 1\n"
    code, out = check(tmp_path, f"redis: {redis_url}\njobs: [{JOBS_FILE}]\n{pools}")
    assert code == 0, out
    assert out.count("resqued: warning: retries wait for a scheduler: set scheduler: true (pools with retry: a)") \
        == 1, out
    code, out = check(tmp_path, f"redis: {redis_url}\njobs: [{JOBS_FILE}]\nscheduler: true\n{pools}")
    assert code == 0 and "retries wait" not in out, out
    master = master_factory(["queues: [a]\ncount: 1\nretry: 3"], jobs=f"[{JOBS_FILE}]")
    master.wait_workers(1)
    assert log_text(master.proc).count("retries wait for a scheduler: set scheduler: true") == 1
