"""A stat counter someone SET to a non-number refuses INCRBY inside the
outcome's transaction; Redis applies the rest of it. That once made the
worker raise after its job was recorded: with stat:processed broken every
job crashed a worker. Now the job is recorded, the worker goes on, and it
says which key once."""

from conftest import log_text, wait_until
from helpers import wait_registered
from resqued.resque.keys import Keys


def test_a_broken_counter_costs_its_count_not_the_worker(procs, redis_url, r, resque):
    r.set("resque:stat:processed", "lots")
    r.set("resque:stat:failed", "many")
    worker = procs.resqued(redis_url)
    wait_registered(r, worker)
    for n in range(3):
        resque.enqueue_call("default", "add", n, 1)
    resque.enqueue("default", "Failing", {"n": 1})
    wait_until(lambda: r.llen("resque:failed") == 1 and r.llen("resque:queue:default") == 0
               and not r.exists("resque:worker:" + next(iter(r.smembers("resque:workers"))).decode()),
               message="all four jobs settled")
    wait_until(lambda: int(r.get(f"resque:stat:processed:{next(iter(r.smembers('resque:workers'))).decode()}")
                           or 0) == 4, message="the worker's own counter counted all four")
    assert worker.poll() is None, log_text(worker)
    assert r.get("resque:stat:processed") == b"lots" and r.get("resque:stat:failed") == b"many"
    assert not [k for k in r.scan_iter(Keys("resque").inflight_pattern()) if r.llen(k)]
    text = log_text(worker)
    assert text.count("stat counter resque:stat:processed holds no integer") == 1, text
