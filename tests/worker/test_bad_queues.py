"""A queue whose Redis key is not a list (someone SET it, or another app's
key of the same name) is skipped with one error naming the key. It does not
stop the worker, the other queues are served, and it is taken from again
once it holds a list."""

from conftest import stop, wait_until
from helpers import wait_log, wait_registered
from resqued.worker import reserve
from resqued.resque.keys import Keys
from resqued.worker.reserve import Reserver
from resqued.process.signals import SignalQueue


def test_a_worker_skips_a_queue_whose_key_is_not_a_list(procs, redis_url, r, resque):
    r.set("resque:queue:bad", "not a list")
    for queues in ("bad", "bad,default"):  # BLMOVE alone, or the priority script first
        proc = procs.resqued(redis_url, queue=queues)
        wait_registered(r, proc, queues=queues)
        if queues == "bad,default":
            resque.enqueue("default", "PhpJob", {"tag": "served"})
            wait_log(r, "perform:served")
        text = wait_until(lambda: "holds a string" in proc.log_path.read_text() and proc.log_path.read_text(),
                          message="the error")
        assert proc.poll() is None
        assert "queue bad: key resque:queue:bad holds a string, not a list of jobs: skipping that queue" in text
        assert stop(proc) == 0
        assert proc.log_path.read_text().count("holds a string") == 1  # said once, not at every reserve
    assert r.get("resque:queue:bad") == b"not a list"  # left as it was


def test_a_queue_key_that_stops_being_a_list_costs_the_take_not_the_outcome(procs, redis_url, r, resque):
    # While the queue is busy the next job is taken in the transaction that
    # records the last outcome: a key gone wrong fails that take only.
    for queues in ("default", "default,other"):  # LMOVE, or the priority script
        r.flushdb()
        proc = procs.resqued(redis_url, queue=queues)
        wait_registered(r, proc, queues=queues)
        resque.enqueue("default", "Slow", {"seconds": 30})
        resque.enqueue("default", "PhpJob", {"tag": "never"})
        wait_log(r, "started:")
        r.delete("resque:queue:default")
        r.set("resque:queue:default", "oops")
        r.rpush("test:release", 1)
        wait_until(lambda: r.get("resque:stat:processed") == b"1", message="the outcome recorded")
        wait_until(lambda: "resque:queue:default holds a string" in proc.log_path.read_text(),
                   message="the error logged")
        if queues == "default,other":
            resque.enqueue("other", "PhpJob", {"tag": "other"})
            wait_log(r, "perform:other")
        assert proc.poll() is None
        assert stop(proc) == 0


def test_a_skipped_queue_is_taken_from_again_once_it_holds_a_list(r, monkeypatch):
    monkeypatch.setattr(reserve, "BAD_QUEUE_RECHECK", 0.0)
    reserver = Reserver(r, Keys("resque"), "host:1:bad,good", SignalQueue([]))
    r.set("resque:queue:bad", "x")
    assert reserver.pop(["bad", "good"], 0.1) is None
    assert reserver.usable(["bad", "good"]) == ["good"]  # looked at again: still a string
    r.delete("resque:queue:bad")
    r.rpush("resque:queue:bad", "job")
    assert reserver.usable(["bad", "good"]) == ["bad", "good"]
    assert reserver.pop(["bad", "good"], 0.1) == ("bad", b"job")
    reserver.close()
