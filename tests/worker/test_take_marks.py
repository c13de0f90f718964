"""The take that comes with an outcome (worker/nextmark.py, reserve.py
``taken_after_outcome``): what it marks, and that nothing it meets makes
the outcome be recorded twice. Real workers and Redis."""

import json

import redis

from conftest import stop, wait_until
from helpers import failures, log_entries, wait_log, wait_registered
from resqued.redisio import direct
from resqued.resque import wire
from resqued.resque.keys import Keys
from resqued.worker import nextmark
from resqued.worker.reserve import Reserver


def test_a_status_written_after_the_take_ends_complete_with_its_ttl(procs, redis_url, r, resque):
    # php-resque's Resque_Job::create pushes the job, then writes its status
    # in another request: the job may be taken in between.
    r.script_load(nextmark.TAKE_MARKED)   # so that it is: taken by the first job's outcome
    resque.enqueue("default", "Slow", {"seconds": 10})
    job_id = wire.new_job_id()
    raw = wire.dumps(wire.payload("Slow", [{"seconds": 10}], job_id))
    r.rpush("resque:queue:default", raw)
    proc = procs.resqued(redis_url, extra_env={"FORK_PER_JOB": "false"})
    worker_key = f"resque:worker:{wait_registered(r, proc)}"
    wait_log(r, "started")
    r.rpush("test:release", "go")   # the first job's outcome takes the second
    wait_log(r, "started", count=2)
    assert json.loads(r.get(worker_key))["payload"]["id"] == job_id   # marked by its take
    status_key = f"resque:job:{job_id}:status"
    r.set(status_key, wire.status_record(wire.STATUS_WAITING, started=True))   # php's, after the take
    r.rpush("test:release", "go")
    wait_until(lambda: resque.status(job_id)["status"] == "complete", message="the job complete")
    assert 86000 < r.ttl(status_key) <= 86400
    stop(proc)


def test_a_tracked_job_taken_with_the_outcome_is_marked_running_in_that_request(procs, redis_url, r, resque):
    r.script_load(nextmark.TAKE_MARKED)
    resque.enqueue("default", "Slow", {"seconds": 10})
    job_id = resque.enqueue("default", "Slow", {"seconds": 10}, track_status=True)
    proc = procs.resqued(redis_url, extra_env={"FORK_PER_JOB": "false"})
    wait_registered(r, proc)
    wait_log(r, "started")
    calls = lambda: r.info("commandstats").get("cmdstat_eval", {}).get("calls", 0)   # noqa: E731
    before = calls()
    r.rpush("test:release", "go")
    wait_log(r, "started", count=2)
    assert resque.status(job_id)["status"] == "running"
    # One EVAL: the first job's outcome updating its (absent) status. The
    # second's running status came with its take (EVALSHA), not apart.
    assert calls() == before + 1
    r.rpush("test:release", "go")
    wait_until(lambda: resque.status(job_id)["status"] == "complete", message="the job complete")
    stop(proc)


def test_a_payload_that_is_not_json_gets_no_working_on_record(r):
    # Ruby's Worker#job would raise reading it (resque-web's workers page, prune).
    keys, wid = Keys(), "host:1:default"
    reserver = Reserver(r, keys, wid, signals=None)
    for item, record in [(b"{not json", False), (wire.dumps(wire.payload("PhpJob", [], "x1")).encode(), True)]:
        r.rpush("resque:queue:default", item)
        for _ in range(2):   # the first may answer NOSCRIPT (the server lacks the script)
            batch = direct.Batch()
            count = reserver.take_in(batch, ["default"])
            replies = direct.execute(r, batch.commands, transaction=True, raise_errors=False)
            if found := reserver.taken(["default"], replies[-count:]):
                break
        assert found == ("default", item)
        assert r.exists(keys.worker(wid)) == record and reserver.premarked is (True if record else None)
        if record:
            assert json.loads(r.get(keys.worker(wid)))["payload"]["id"] == "x1"


def test_a_forgotten_take_script_that_may_not_be_loaded_records_the_outcome_once(procs, redis_url, r, resque):
    # The take runs by hash; after SCRIPT FLUSH it answers NOSCRIPT. Nothing
    # sent after the outcome's committed transaction may fail it, or it is
    # sent again (the job counted twice): here SCRIPT (LOAD) is refused.
    # The scripts a worker runs as it starts and stops are loaded first (by a
    # worker of the default user): this user could not (redis-py's
    # register_script loads a script it finds missing), and the test is
    # about the take's script, which is flushed once the worker works.
    warm = procs.resqued(redis_url, extra_env={"FORK_PER_JOB": "false"})
    wait_registered(r, warm)
    stop(warm)
    r.execute_command("ACL", "SETUSER", "noload", "on", ">pw", "~*", "&*", "+@all", "-script")
    try:
        resque.enqueue("default", "Slow", {"seconds": 10})
        for tag in "bc":
            resque.enqueue("default", "PhpJob", {"tag": tag})
        scheme, rest = redis_url.split("://", 1)
        url = f"{scheme}://noload:pw@{rest}"
        proc = procs.resqued(url, extra_env={"FORK_PER_JOB": "false"})
        wait_registered(r, proc)
        wait_log(r, "started")
        r.script_flush()
        r.rpush("test:release", "go")
        wait_log(r, "perform:c")
        resque.enqueue("default", "PhpJob", {"tag": "d"})
        wait_log(r, "perform:d")
        assert [e.split(":")[1] for e in log_entries(r) if e.startswith("perform:")] == list("bcd")
        wait_until(lambda: r.get("resque:stat:processed") == b"4", message="4 processed")
        assert failures(r) == [] and proc.poll() is None
        stop(proc)
    finally:
        r.execute_command("ACL", "DELUSER", "noload")


def test_an_error_reply_of_the_take_after_the_outcome_is_not_raised(r):
    reserver = Reserver(r, Keys(), "host:1:default", signals=None)
    found, doubtful = reserver.taken_after_outcome(["default"], [redis.ResponseError("ERR boom"), None, []])
    assert (found, doubtful) == (None, True)
    assert reserver.taken_after_outcome([], []) == (None, False)


def test_a_job_marked_by_its_take_and_given_back_is_waiting_again(r, resque):
    r.script_load(nextmark.TAKE_MARKED)
    job_id = resque.enqueue("default", "PhpJob", track_status=True)
    keys, wid = Keys(), "host:1:default"
    reserver = Reserver(r, keys, wid, signals=None)
    batch = direct.Batch()
    count = reserver.take_in(batch, ["default"])
    replies = direct.execute(r, batch.commands, transaction=True, raise_errors=False)
    assert reserver.taken(["default"], replies[-count:])[0] == "default"
    assert resque.status(job_id)["status"] == "running" and r.exists(keys.worker(wid))
    reserver.give_back("default")   # not run: the worker paused, say
    assert resque.status(job_id)["status"] == "waiting" and not r.exists(keys.worker(wid))
    assert r.llen("resque:queue:default") == 1
