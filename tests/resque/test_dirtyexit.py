"""A dead command worker's job, settled from its working-on record
(resque/dirtyexit.py), on the keys the real php-resque left while running a
job (tests/golden/php-resque/03_while_running.json): requeued, or failed as
Resque's prune would, once; its registration removed."""

import json
import os

from resqued.resque.dirtyexit import DirtyExits, jobs_done
from resqued.resque.keys import Keys

from conftest import GOLDEN

WORKER = "vm:14608:golden"
JOB = "fdeb30bdd8257bb454644f80d13bedd2"


def load_golden(r):
    with open(os.path.join(GOLDEN, "php-resque", "03_while_running.json")) as f:
        keys = json.load(f)["keys"]
    for key, entry in keys.items():
        if entry["type"] == "string":
            r.set(key, entry["value"])
        elif entry["type"] == "set":
            r.sadd(key, *entry["value"])
    return json.loads(keys[f"resque:worker:{WORKER}"]["value"])["payload"]


def test_requeued_at_the_head_of_its_queue_and_unregistered(r):
    payload = load_golden(r)
    r.rpush("resque:queue:golden", "next")
    settled = DirtyExits(r, Keys("resque")).settle(WORKER, "worker died")
    assert settled == [("requeue", JOB)]
    assert json.loads(r.lindex("resque:queue:golden", 0)) == {**payload, "resqued_lost": 1}
    assert json.loads(r.get(f"resque:job:{JOB}:status"))["status"] == 1   # waiting again
    assert not r.exists("resque:workers", f"resque:worker:{WORKER}", f"resque:worker:{WORKER}:started",
                        f"resque:stat:processed:{WORKER}")
    assert r.get("resque:stat:processed") == b"3"   # the global count stays, as Resque's unregister leaves it
    assert DirtyExits(r, Keys("resque")).settle(WORKER, "worker died") == []   # once
    assert r.llen("resque:queue:golden") == 2


def test_failed_as_a_dirty_exit_and_found_by_its_pid(r):
    payload = load_golden(r)
    # The master knows the pid; the worker wrote its own queue list (QUEUE=*, say).
    settled = DirtyExits(r, Keys("resque"), on_lost="fail").settle("vm:14608:other", "worker vm:14608 died")
    assert settled == [("fail", JOB)]
    failure = json.loads(r.lindex("resque:failed", 0))
    assert (failure["exception"], failure["error"], failure["payload"], failure["worker"], failure["queue"]) == \
        ("Resque::DirtyExit", "worker vm:14608 died (on_lost: fail)", payload, WORKER, "golden")
    assert r.get("resque:stat:failed") == b"1" and r.ttl(f"resque:job:{JOB}:status") > 0
    assert not r.exists("resque:workers", f"resque:worker:{WORKER}")


def test_the_exact_id_is_settled_not_another_worker_with_the_same_pid(r):
    # A live worker of another container (same hostname, same pid) runs a
    # job: the dead worker's exact id is registered, so only it is settled.
    payload = load_golden(r)
    other = "vm:14608:other-queue"
    r.sadd("resque:workers", other)
    r.set(f"resque:worker:{other}", json.dumps({"queue": "other-queue", "run_at": "now", "payload": payload}))
    assert DirtyExits(r, Keys("resque")).settle(WORKER, "worker died") == [("requeue", JOB)]
    assert r.sismember("resque:workers", other) and r.exists(f"resque:worker:{other}")
    assert not r.exists("resque:queue:other-queue")


def test_found_by_pid_only_if_registered_after_the_worker_started(r):
    load_golden(r)   # vm:14608:golden registered "Sun Nov 22 01:47:42 UTC 2026"
    registered = 1795312062.0   # that moment
    dirty = DirtyExits(r, Keys("resque"))
    # Started by the master an hour later: that registration is an older
    # worker's with the same pid, not this one's.
    assert dirty.settle("vm:14608:other", "worker died", not_before=registered + 3600) == []
    assert r.exists(f"resque:worker:{WORKER}")
    assert jobs_done(r, Keys("resque"), "vm:14608:other", registered + 3600) == 0
    assert jobs_done(r, Keys("resque"), "vm:14608:other", registered - 1) == 3
    assert dirty.settle("vm:14608:other", "worker died", not_before=registered) == [("requeue", JOB)]
