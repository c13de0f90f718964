"""A busy queue costs one request per job (worker/nextmark.py): the outcome
of one job, the take of the next, the working-on key that says it runs
and its running status are one transaction. Real workers and Redis."""

import json

import pytest

from conftest import stop, wait_until
from helpers import log_entries, wait_log, wait_registered
from resqued.resque import wire


def reads(r) -> int:
    """The requests the server has read so far (a pipeline sent at once is one)."""
    return r.info("stats")["total_reads_processed"]


@pytest.mark.parametrize("fork,jobs", [("false", 300), ("true", 50)])   # a fork per job is slower
def test_a_busy_queue_costs_one_request_per_job(procs, redis_url, r, fork, jobs):
    proc = procs.resqued(redis_url, extra_env={"FORK_PER_JOB": fork, "INTERVAL": "5"})
    wait_registered(r, proc)
    payloads = [wire.dumps(wire.payload("Nothing", [{"i": i}], wire.new_job_id())) for i in range(jobs)]
    polls = []

    def done():
        polls.append(1)
        return int(r.get("resque:stat:processed") or 0) >= jobs

    before = reads(r)
    r.rpush("resque:queue:default", *payloads)
    wait_until(done, interval=0.02, message="the jobs done")
    per_job = (reads(r) - before - len(polls) - 2) / jobs
    # Beside one per job: the first job's blocking take, a heartbeat.
    assert per_job < 1.3, f"{per_job:.2f} requests per job"   # 2 when the job was marked running apart
    stop(proc)


def test_a_job_taken_with_the_outcome_is_marked_running_by_its_take(procs, redis_url, r, resque):
    resque.enqueue("default", "Nothing")
    job_id = resque.enqueue("default", "Slow", {"seconds": 10}, track_status=True)
    queued = r.lrange("resque:queue:default", 1, 1)[0]
    proc = procs.resqued(redis_url, extra_env={"FORK_PER_JOB": "false"})
    key = f"resque:worker:{wait_registered(r, proc)}"
    wait_log(r, "started")
    record = json.loads(r.get(key))
    assert record["queue"] == "default" and record["run_at"].endswith("Z")
    assert record["payload"] == json.loads(queued)
    assert resque.status(job_id)["status"] == "running"
    r.rpush("test:release", "go")
    wait_until(lambda: resque.status(job_id)["status"] == "complete", message="the job complete")
    assert not r.exists(key)
    stop(proc)


def test_a_server_that_forgot_the_take_script_loses_no_job(procs, redis_url, r, resque):
    # The take runs its script by hash (EVALSHA); a server without it (a
    # restart, a failover, SCRIPT FLUSH) answers NOSCRIPT and takes nothing.
    r.script_flush()
    for tag in "abcde":
        resque.enqueue("default", "PhpJob", {"tag": tag})
    proc = procs.resqued(redis_url, extra_env={"FORK_PER_JOB": "false"})
    wait_registered(r, proc)
    wait_log(r, "perform:e")
    assert [e.split(":")[1] for e in log_entries(r) if e.startswith("perform:")] == list("abcde")
    wait_until(lambda: not r.keys("resque:resqued:inflight:*"), message="nothing in flight")
    r.script_flush()
    resque.enqueue("default", "PhpJob", {"tag": "f"})
    resque.enqueue("default", "PhpJob", {"tag": "g"})
    wait_log(r, "perform:g")
    assert [e.split(":")[1] for e in log_entries(r) if e.startswith("perform:")] == list("abcdefg")
    stop(proc)
