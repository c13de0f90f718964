"""Job timeouts, run for real: a pool's job_timeout and a job class's own
timeout stop a job (TERM, then KILL after term_timeout), fail it as
resqued.JobTimeout, and the worker takes the next job."""

import os
import re
import time

import pytest

from conftest import HERE, JOBS_FILE, log_text, stop, wait_until
from helpers import check_pool_yml as check
from helpers import failures, job_child_pid, log_entries, pid_gone, title, wait_log, wait_registered
from resqued.process.title import PREFIX

TIMEOUT_JOBS = os.path.join(HERE, "timeoutjobs.py")
# The three ways a job child comes to be: a standby of the job forker, a
# standby the worker forks itself, a child forked on demand after a
# beforeFork listener (hookjobs.py registers one).
PATHS = {"job forker": {}, "worker forks standbys": {"JOB_FORKER": "false"},
         "forked on demand": {"APP_INCLUDE": f"{JOBS_FILE},{TIMEOUT_JOBS},{os.path.join(HERE, 'hookjobs.py')}"}}


def start_worker(procs, redis_url, r, **env):
    env = {"APP_INCLUDE": f"{JOBS_FILE},{TIMEOUT_JOBS}", "RESQUE_TERM_TIMEOUT": "1", **env}
    proc = procs.resqued(redis_url, extra_env=env)
    wait_registered(r, proc)
    return proc


def wait_failure(r, timeout=15):
    wait_until(lambda: r.llen("resque:failed") == 1, timeout, message="a failure")
    return failures(r)[0]


@pytest.mark.parametrize("path", PATHS)
def test_a_job_past_the_pool_timeout_fails_as_job_timeout_and_the_worker_goes_on(procs, redis_url, r, resque, path):
    worker = start_worker(procs, redis_url, r, JOB_TIMEOUT="1", **PATHS[path])
    resque.enqueue("default", "Slow", {"seconds": 30})
    resque.enqueue_call("default", "add", 1, 2)
    child = job_child_pid(r)
    started = time.monotonic()
    failure = wait_failure(r)
    took = time.monotonic() - started
    # The limit (less the time the test took to see the job start), at most term_timeout more, and slack.
    assert 0.5 <= took <= 1 + 1 + 1.0, took
    assert failure["exception"] == "resqued.JobTimeout" and failure["payload"]["class"] == "Slow"
    assert re.fullmatch(r"job ran past its 1 s timeout \(ran 1\.\d s\)", failure["error"]), failure["error"]
    wait_log(r, "add:3")                                    # the next job ran
    wait_until(lambda: pid_gone(child), message="the job child gone")
    assert "finished:" + str(child) not in log_entries(r)
    # Failed, not requeued; the listeners got JobTimeout, in the worker.
    assert r.llen("resque:queue:default") == 0 and r.get("resque:stat:failed") == b"1"
    assert "onFailure:resqued.JobTimeout:Slow:True" in log_entries(r)
    assert "past its 1 s timeout" in log_text(worker)


def test_a_job_that_ignores_term_is_killed_after_term_timeout(procs, redis_url, r, resque):
    start_worker(procs, redis_url, r, JOB_TIMEOUT="1", RESQUE_TERM_TIMEOUT="1.5")
    resque.enqueue("default", "IgnoresTerm")
    child = job_child_pid(r)
    started = time.monotonic()
    failure = wait_failure(r)
    assert 1.8 <= time.monotonic() - started <= 4.5     # 1 s, then 1.5 s between TERM and KILL
    assert failure["exception"] == "resqued.JobTimeout"
    assert re.fullmatch(r"job ran past its 1 s timeout \(ran (2\.[5-9]|3\.\d) s\)", failure["error"]), failure["error"]
    wait_until(lambda: pid_gone(child), message="the job child killed")
    resque.enqueue_call("default", "add", 2, 2)
    wait_log(r, "add:4")


def test_what_a_timed_out_job_left_running_ends_with_it(procs, redis_url, r, resque):
    start_worker(procs, redis_url, r, JOB_TIMEOUT="1")
    resque.enqueue("default", "LeavesAHelper")
    helper = int(wait_log(r, "helper:")[-1].split(":")[1])
    assert wait_failure(r)["exception"] == "resqued.JobTimeout"
    wait_until(lambda: pid_gone(helper), message="the job's helper gone")


def test_a_job_that_raises_on_term_is_still_a_timeout(procs, redis_url, r, resque):
    start_worker(procs, redis_url, r, JOB_TIMEOUT="1")
    resque.enqueue("default", "RaisesOnTerm")
    failure = wait_failure(r)
    assert failure["exception"] == "resqued.JobTimeout"
    assert failure["error"].endswith("; on TERM it raised RuntimeError: terminated"), failure["error"]
    # Its listeners ran once, in the child, with what the job raised.
    onfailure = [e for e in log_entries(r) if e.startswith("onFailure:")]
    assert onfailure == ["onFailure:builtins.RuntimeError:RaisesOnTerm:False"]


def test_the_job_classs_own_timeout_beats_a_longer_pool_timeout(procs, redis_url, r, resque):
    start_worker(procs, redis_url, r, JOB_TIMEOUT="30")
    resque.enqueue("default", "OwnTimeout", {"seconds": 30})      # timeout = 1: stopped at 1 s
    failure = wait_failure(r, timeout=6)
    assert failure["exception"] == "resqued.JobTimeout" and "its 1 s timeout" in failure["error"]


def test_the_job_classs_own_timeout_beats_a_shorter_pool_timeout(procs, redis_url, r, resque):
    start_worker(procs, redis_url, r, JOB_TIMEOUT="1")
    resque.enqueue("default", "LongOwnTimeout", {"seconds": 2})    # timeout = 5: runs its 2 s
    wait_log(r, "finished:")
    wait_until(lambda: r.get("resque:stat:processed") == b"1", message="the job recorded")
    assert r.llen("resque:failed") == 0


def test_the_processing_title_shows_the_deadline(procs, redis_url, r, resque):
    start_worker(procs, redis_url, r, JOB_TIMEOUT="30")
    resque.enqueue("default", "Slow")
    child = job_child_pid(r)
    shown = title(child)
    # Resque's title, byte for byte, then the deadline.
    found = re.fullmatch(rf"{re.escape(PREFIX)}: Processing default since (\S+ \S+) \[Slow\] until (\S+ \S+)", shown)
    assert found, shown
    since, until = (time.mktime(time.strptime(t, "%Y-%m-%d %H:%M:%S")) for t in found.groups())
    assert until - since == 30
    r.rpush("test:release", 1)
    wait_log(r, "finished:")


def test_a_stop_during_the_timeouts_kill_does_not_requeue_the_job(procs, redis_url, r, resque):
    worker = start_worker(procs, redis_url, r, JOB_TIMEOUT="1", RESQUE_TERM_TIMEOUT="3")
    resque.enqueue("default", "IgnoresTerm")
    job_child_pid(r)
    wait_until(lambda: "past its 1 s timeout" in log_text(worker), message="the timeout's TERM")
    stop(worker, sig=15)
    assert failures(r)[0]["exception"] == "resqued.JobTimeout"
    assert r.llen("resque:queue:default") == 0


def test_a_pool_yml_job_timeout_reaches_the_workers(master_factory, r, resque):
    master = master_factory(["queues: [default]\ncount: 1\njob_timeout: 1"], term_timeout=1)
    master.wait_workers(1)
    resque.enqueue("default", "Slow")
    failure = wait_failure(r, timeout=20)
    assert failure["exception"] == "resqued.JobTimeout" and "its 1 s timeout" in failure["error"]


# -- fork: false, and bad values ----------------------------------------------------

@pytest.mark.parametrize("pool, line, problem", [
    ("job_timeout: -1", 6, "pools[0].job_timeout: must be greater than 0, got -1"),
    ("job_timeout: soon", 6, "pools[0].job_timeout: expected a number of seconds, got a string ('soon')"),
    ("job_timeout: 0", 6, "pools[0].job_timeout: must be greater than 0, got 0"),
    ("fork: false\n    job_timeout: 5", 7, "pools[0].job_timeout: is not enforced in a fork: false pool"),
])
def test_a_bad_job_timeout_is_refused_with_file_and_line(tmp_path, redis_url, pool, line, problem):
    code, out = check(tmp_path, f"redis: {redis_url}\njobs: [{JOBS_FILE}]\npools:\n"
                                f"  - queues: [default]\n    count: 1\n    {pool}\n")
    assert code == 78, out
    assert out.startswith(f"resqued: {tmp_path / 'pool.yml'}:{line}: {problem}") and "\n" not in out, out


def test_a_job_timeout_from_defaults_names_the_fork_false_pool(tmp_path, redis_url):
    code, out = check(tmp_path, f"redis: {redis_url}\njobs: [{JOBS_FILE}]\ndefaults: {{job_timeout: 5}}\npools:\n"
                                "  - queues: [a]\n    count: 1\n  - queues: [b]\n    count: 1\n    fork: false\n")
    assert code == 78 and "pool.yml:9: pools[1].fork: job_timeout (line 3) is not enforced" in out, out
    assert "set job_timeout: null in this pool" in out
    code, out = check(tmp_path, f"redis: {redis_url}\njobs: [{JOBS_FILE}]\ndefaults: {{job_timeout: 5}}\npools:\n"
                                "  - queues: [b]\n    count: 1\n    fork: false\n    job_timeout: null\n")
    assert code == 0 and "b: count 1; max_memory none; max_jobs none; interval 5s; fork false" in out, out
    code, out = check(tmp_path, f"redis: {redis_url}\njobs: [{JOBS_FILE}]\ndefaults: {{job_timeout: 5}}\npools:\n"
                                "  - queues: [a]\n    count: 1\n")
    assert code == 0 and "a: count 1; " in out and "; job_timeout 5s" in out, out   # what --check shows


def test_a_bad_class_timeout_is_refused_at_start(tmp_path, redis_url):
    jobs = tmp_path / "badtimeout.py"
    jobs.write_text("class Soon:\n    job_timeout = 'soon'\n\n    def perform(self):\n        pass\n")
    code, out = check(tmp_path, f"redis: {redis_url}\njobs: [{jobs}]\npools:\n  - queues: [default]\n    count: 1\n")
    assert code == 78, out
    assert f"jobs: job Soon ({jobs}): job_timeout must be a number of seconds greater than 0 (or None), not 'soon'" \
        in out, out


@pytest.mark.parametrize("env, problem", [
    ({"JOB_TIMEOUT": "-1"}, "JOB_TIMEOUT: must be greater than 0, got -1"),
    ({"JOB_TIMEOUT": "soon"}, "JOB_TIMEOUT: expected a number of seconds, got a string ('soon')"),
    ({"JOB_TIMEOUT": "5", "FORK_PER_JOB": "false"}, "JOB_TIMEOUT: is not enforced in a fork: false pool"),
])
def test_env_mode_refuses_a_bad_job_timeout(procs, redis_url, env, problem):
    proc = procs.resqued(redis_url, extra_env=env)
    assert proc.wait(15) == 78, log_text(proc)
    out = log_text(proc).strip()
    assert out.startswith(f"resqued: {problem}") and "\n" not in out, out


def test_a_class_timeout_in_a_fork_false_pool_is_said_once_and_ignored(procs, redis_url, r, resque):
    worker = start_worker(procs, redis_url, r, FORK_PER_JOB="false")
    resque.enqueue("default", "OwnTimeout", {"seconds": 1.5})     # timeout = 1, not enforced inline
    wait_log(r, "finished:")
    wait_until(lambda: r.get("resque:stat:processed") == b"1", message="the job recorded")
    assert r.llen("resque:failed") == 0
    said = [line for line in log_text(worker).splitlines() if "is not enforced" in line]
    assert len(said) == 1 and "timeoutjobs.OwnTimeout" in said[0] and "LongOwnTimeout" in said[0], said


FOREIGN_ATTRIBUTES = """
import os, redis

class CallsAnApi:
    timeout = (3.05, 27)        # meant for requests.get(..., timeout=timeout)

    def retry(self):            # its own helper, not a policy
        pass

    def perform(self):
        redis.Redis.from_url(os.environ["REDIS_URL"]).rpush("test:log", "ran:CallsAnApi")


class HasATimeoutMethod:
    def timeout(self):
        return 5

    def perform(self):
        pass
"""


def test_a_timeout_or_retry_meant_for_something_else_is_ignored_with_one_warning(procs, tmp_path, redis_url, r,
                                                                                 resque):
    jobs = tmp_path / "foreign.py"
    jobs.write_text(FOREIGN_ATTRIBUTES)
    code, out = check(tmp_path, f"redis: {redis_url}\njobs: [{jobs}]\npools:\n  - queues: [default]\n    count: 1\n")
    assert code == 0, out
    assert (f"job CallsAnApi ({jobs}): timeout must be a number of seconds greater than 0 (or None), not "
            "(3.05, 27): ignored (set job_timeout for the job's own); retry is not a retry policy") in out, out
    assert out.count("job HasATimeoutMethod (") == 1 and out.count("job CallsAnApi (") == 1, out
    worker = procs.resqued(redis_url, extra_env={"APP_INCLUDE": str(jobs), "REDIS_URL": redis_url})
    wait_registered(r, worker)
    resque.enqueue("default", "CallsAnApi")
    wait_log(r, "ran:CallsAnApi")
    wait_until(lambda: r.get("resque:stat:processed") == b"1", message="the job recorded")
    assert r.llen("resque:failed") == 0
    assert log_text(worker).count(f"job CallsAnApi ({jobs}): timeout must be") == 1


def test_job_timeout_beats_a_plain_timeout(procs, redis_url, r, resque):
    start_worker(procs, redis_url, r)
    resque.enqueue("default", "OwnJobTimeout", {"seconds": 30})
    failure = wait_failure(r)
    assert failure["exception"] == "resqued.JobTimeout" and "its 1 s timeout" in failure["error"], failure
