"""php-resque >= 1.3's per-job status prefix: ``Resque::enqueue('q', 'Cls',
$args, true, 'tenant1')`` writes ``"prefix": "tenant1"`` in the payload and
keeps the job's status at ``<ns>:job:tenant1_<id>:status``
(Resque_Job_Status::__toString), where ``new Resque_Job_Status($id,
'tenant1')`` reads it. The keys here are written exactly as php-resque 1.3
writes them (Resque_Job::create, Resque_Job_Status::create)."""

import json
import socket
import time

import pytest

from conftest import stop, wait_until
from helpers import failures, log_entries, wait_log, wait_registered
from resqued.ctl.cli import main
from resqued.resque import wire
from resqued.resque.recovery import Recovery

JOB_ID = "5f3c0d2e9b8a4c1d2e3f4a5b6c7d8e9f"
PREFIXED = f"resque:job:tenant1_{JOB_ID}:status"
UNPREFIXED = f"resque:job:{JOB_ID}:status"


def php_payload(job_class, args, prefix="tenant1") -> str:
    # json_encode of Resque_Job::create's array: class, args, id, prefix, queue_time.
    return wire.dumps({"class": job_class, "args": [args], "id": JOB_ID, "prefix": prefix,
                       "queue_time": round(time.time(), 6)})


def php_enqueue(r, job_class, args, prefix="tenant1", queue="default") -> int:
    """Resque::enqueue(queue, job_class, args, true, prefix), command for command."""
    r.sadd("resque:queues", queue)
    r.rpush(f"resque:queue:{queue}", php_payload(job_class, args, prefix))
    created = int(time.time()) - 100   # told apart from the worker's updates
    status_key = f"resque:job:{prefix}_{JOB_ID}:status" if prefix not in ("", "0") else UNPREFIXED
    r.set(status_key, json.dumps({"status": 1, "updated": created, "started": created, "result": None},
                                 separators=(",", ":")))
    return created


def record(r, key):
    raw = r.get(key)
    return None if raw is None else (list(json.loads(raw)), json.loads(raw))


def test_a_worker_updates_the_prefixed_status_of_a_job_that_completes(procs, redis_url, r, resque):
    created = php_enqueue(r, "Slow", {"seconds": 30})
    proc = procs.resqued(redis_url)
    wait_registered(r, proc)
    wait_log(r, "started:")
    wait_until(lambda: json.loads(r.get(PREFIXED))["status"] == wire.STATUS_RUNNING, message="running")
    fields, running = record(r, PREFIXED)
    # php-resque 1.3's Resque_Job_Status::update: started kept, result as it was.
    assert fields == ["status", "updated", "started", "result"]
    assert running["started"] == created and running["updated"] >= created + 100 and running["result"] is None
    assert r.ttl(PREFIXED) == -1
    r.rpush("test:release", 1)
    wait_until(lambda: json.loads(r.get(PREFIXED))["status"] == wire.STATUS_COMPLETE, message="complete")
    fields, done = record(r, PREFIXED)
    assert fields == ["status", "updated", "started", "result"]
    assert done == {"status": 4, "updated": done["updated"], "started": created, "result": None}
    assert 86390 <= r.ttl(PREFIXED) <= 86400
    assert not r.exists(UNPREFIXED)
    # The library reads it with the prefix, as Resque_Job_Status($id, 'tenant1') does.
    assert resque.status(JOB_ID, prefix="tenant1") == {"status": "complete", "code": 4, "updated": done["updated"],
                                                       "started": created, "result": None}
    assert resque.status(JOB_ID) is None
    stop(proc)


def test_a_worker_updates_the_prefixed_status_of_a_job_that_fails(procs, redis_url, r, resque):
    created = php_enqueue(r, "Failing", {"n": 1})
    proc = procs.resqued(redis_url)
    wait_registered(r, proc)
    wait_until(lambda: r.llen("resque:failed") == 1, message="the failure")
    wait_until(lambda: json.loads(r.get(PREFIXED))["status"] == wire.STATUS_FAILED, message="failed status")
    fields, failed = record(r, PREFIXED)
    assert fields == ["status", "updated", "started", "result"] and failed["started"] == created
    assert 86390 <= r.ttl(PREFIXED) <= 86400 and not r.exists(UNPREFIXED)
    assert failures(r)[0]["payload"]["prefix"] == "tenant1"
    assert resque.status(JOB_ID, "tenant1")["code"] == wire.STATUS_FAILED
    stop(proc)


@pytest.mark.parametrize("prefix", ["", "0"])
def test_an_empty_prefix_is_no_prefix(procs, redis_url, r, prefix):
    # php-resque 1.3 writes "prefix":"" when none is given; PHP's empty()
    # also takes "0" for none.
    php_enqueue(r, "GoldenOk", {"n": 1}, prefix=prefix)
    proc = procs.resqued(redis_url)
    wait_registered(r, proc)
    wait_log(r, "golden-ok")
    wait_until(lambda: json.loads(r.get(UNPREFIXED))["status"] == wire.STATUS_COMPLETE, message="complete")
    assert r.keys("resque:job:*_*") == []
    stop(proc)


def test_a_prune_reads_the_prefixed_status_of_a_dead_php_workers_job(procs, redis_url, r):
    """A php-resque worker was killed; its job child finished and wrote its
    (prefixed) status. The prune must see that, not fail the job."""
    dead = f"{socket.gethostname()}:999999:default"
    started = int(time.time()) - 5
    r.sadd("resque:workers", dead)
    r.set(f"resque:worker:{dead}:started", "Sun Nov 22 01:47:42 UTC 2026")
    r.set(f"resque:worker:{dead}", wire.dumps({"queue": "default", "run_at": wire.run_at_time(started),
                                               "payload": json.loads(php_payload("GoldenOk", {"n": 1}))}))
    r.set(PREFIXED, json.dumps({"status": 4, "updated": started + 3, "started": started - 10, "result": True}))
    proc = procs.resqued(redis_url)
    wait_registered(r, proc)
    assert not r.sismember("resque:workers", dead)
    assert failures(r) == [] and r.get("resque:stat:failed") is None
    assert json.loads(r.get(PREFIXED))["status"] == 4 and not r.exists(UNPREFIXED)
    assert log_entries(r) == []
    stop(proc)


@pytest.mark.parametrize("on_lost,code,ttl", [("requeue", wire.STATUS_WAITING, -1),
                                              ("fail", wire.STATUS_FAILED, 86400)])
def test_a_lost_prefixed_job_is_settled_in_its_prefixed_status(r, resque, on_lost, code, ttl):
    worker = "gone:1:default"
    created = php_enqueue(r, "GoldenOk", {"n": 1})
    r.lmove("resque:queue:default", resque.keys.inflight(worker, "default"), "LEFT", "RIGHT")
    Recovery(r, resque.keys, on_lost).recover(worker, "its worker died", live_name=True)
    fields, status = record(r, PREFIXED)
    assert fields == ["status", "updated", "started", "result"]
    assert status["status"] == code and status["started"] == created and status["updated"] > created
    assert (r.ttl(PREFIXED) == -1) if ttl < 0 else (86390 <= r.ttl(PREFIXED) <= ttl)
    assert not r.exists(UNPREFIXED)


def test_enqueue_with_a_prefix_writes_what_php_resque_writes(r, resque):
    job_id = resque.enqueue("golden", "GoldenOk", {"n": 1}, track_status=True, prefix="tenant1")
    (raw,) = r.lrange("resque:queue:golden", 0, -1)
    assert list(json.loads(raw)) == ["class", "args", "id", "prefix", "queue_time"]
    assert json.loads(raw)["prefix"] == "tenant1"
    key = f"resque:job:tenant1_{job_id}:status"
    assert resque.status(job_id, prefix="tenant1")["code"] == wire.STATUS_WAITING
    assert r.exists(key) and not r.exists(f"resque:job:{job_id}:status")
    assert resque.stop_tracking(job_id, prefix="tenant1") and not r.exists(key)
    # Without one, the payload stays php-resque's four fields (byte-compatible with the captures).
    resque.enqueue("plain", "GoldenOk", {"n": 1})
    assert list(json.loads(r.lindex("resque:queue:plain", 0))) == ["class", "args", "id", "queue_time"]
    for bad in ("0", 5, None):
        with pytest.raises(ValueError, match="invalid status prefix"):
            resque.enqueue("golden", "GoldenOk", {}, prefix=bad)


def test_resquectl_job_reads_a_prefixed_status(redis_url, r, capsys, monkeypatch):
    for name in ("REDIS_URL", "REDIS_BACKEND", "REDIS_BACKEND_DB", "PREFIX"):
        monkeypatch.delenv(name, raising=False)
    created = php_enqueue(r, "GoldenOk", {"n": 1})
    assert main(["--redis", redis_url, "job", JOB_ID, "--prefix", "tenant1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["id"], data["status"], data["code"], data["result"]) == (JOB_ID, "waiting", 1, None)
    assert data["started"] == wire.utc_iso(created)
    assert main(["--redis", redis_url, "job", JOB_ID]) == 1
    assert f"job {JOB_ID} is not tracked (or its status expired) in " in capsys.readouterr().err


def test_retrying_a_failed_prefixed_job_sets_its_prefixed_status_waiting(r, resque):
    php_enqueue(r, "GoldenOk", {"n": 1})
    payload = json.loads(r.lpop("resque:queue:default"))
    r.rpush("resque:failed", wire.failure_record(payload, "RuntimeException", "boom", [], "vm:1:default", "default"))
    r.set(PREFIXED, json.dumps({"status": 3, "updated": 1, "started": 1, "result": None}))
    resque.failures.requeue(0)
    assert resque.status(JOB_ID, "tenant1")["code"] == wire.STATUS_WAITING
    assert json.loads(r.lindex("resque:queue:default", 0))["prefix"] == "tenant1"
    assert not r.exists(UNPREFIXED)
