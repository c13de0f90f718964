"""Queues paused fleet-wide (``resque:resqued:paused_queues``): a resqued
worker takes no job of a paused queue, whichever way it takes (its blocking
wait, the first waiting job of several queues, the next job taken with the
last one's outcome), while its other queues go on; a resumed queue is taken
from again. Real workers and Redis."""

import pytest

from conftest import stop, wait_until
from helpers import log_entries, no_inflight, queue_tags, title, wait_log, wait_registered
from resqued.process.title import PREFIX

PAUSED = "resque:resqued:paused_queues"


@pytest.mark.parametrize("queues", ["mail", "mail,default"])
def test_a_job_of_a_queue_paused_during_the_blocking_wait_is_not_run(procs, redis_url, r, resque, queues):
    # INTERVAL 5: the worker sits in its blocking wait (BLMOVE) for 5 s.
    proc = procs.resqued(redis_url, queue=queues, extra_env={"INTERVAL": "5"})
    wait_registered(r, proc, queues)
    wait_until(lambda: title(proc.pid) == f"{PREFIX}: Waiting for {queues}", message="the blocking wait")
    r.sadd(PAUSED, "mail")
    resque.enqueue("mail", "PhpJob", {"tag": "held"})
    if "default" in queues:
        resque.enqueue("default", "PhpJob", {"tag": "goes-on"})
        wait_log(r, "perform:goes-on")
        resque.enqueue("default", "PhpJob", {"tag": "goes-on-2"})
        wait_log(r, "perform:goes-on-2")
    wait_until(lambda: queue_tags(r, "mail") == ["held"] and no_inflight(r), message="the mail job back in its queue")
    assert "perform:held" not in log_entries(r)
    r.srem(PAUSED, "mail")
    wait_log(r, "perform:held", timeout=15)
    stop(proc)


@pytest.mark.parametrize("fork", ["true", "false"])
def test_the_next_job_of_a_paused_queue_is_not_taken_with_an_outcome(procs, redis_url, r, resque, fork):
    # PausesQueue pauses mail; the next job would be taken in the transaction
    # that records its outcome, after mail was paused: it stays in its queue,
    # and the worker takes the default job instead.
    resque.enqueue("mail", "PausesQueue", {"queue": "mail"})
    resque.enqueue("mail", "PhpJob", {"tag": "next"})
    resque.enqueue("default", "PhpJob", {"tag": "other"})
    proc = procs.resqued(redis_url, queue="mail,default", extra_env={"FORK_PER_JOB": fork, "INTERVAL": "5"})
    wait_registered(r, proc, "mail,default")
    wait_log(r, "perform:other")
    assert log_entries(r)[0] == "paused-queue:mail"
    assert not [e for e in log_entries(r) if e.startswith("perform:next")]
    assert queue_tags(r, "mail") == ["next"]
    wait_until(lambda: no_inflight(r), message="nothing in flight")
    r.srem(PAUSED, "mail")
    wait_log(r, "perform:next", timeout=15)
    stop(proc)


def test_a_paused_key_of_the_wrong_type_pauses_nothing(procs, redis_url, r, resque):
    r.set(PAUSED, "mail")
    proc = procs.resqued(redis_url, queue="mail")
    wait_registered(r, proc, "mail")
    resque.enqueue("mail", "PhpJob", {"tag": "runs"})
    wait_log(r, "perform:runs")
    stop(proc)


@pytest.mark.parametrize("fork", ["true", "false"])
def test_a_queue_paused_between_a_plain_take_and_its_read_does_not_run_its_job(procs, redis_url, r, resque, fork):
    # While no queue is paused the next job is taken with a plain LMOVE, not
    # a script that checks the set first. PausesQueue pauses mail as it runs:
    # the LMOVE in its outcome's transaction takes "next" all the same, and
    # the read in that transaction sees mail paused: "next" goes back to the
    # head of its queue, unrun, before "after".
    resque.enqueue("mail", "PausesQueue", {"queue": "mail"})
    resque.enqueue("mail", "PhpJob", {"tag": "next"})
    resque.enqueue("mail", "PhpJob", {"tag": "after"})
    proc = procs.resqued(redis_url, queue="mail", extra_env={"FORK_PER_JOB": fork, "INTERVAL": "5"})
    wait_registered(r, proc, "mail")
    wait_until(lambda: queue_tags(r, "mail") == ["next", "after"] and no_inflight(r),
               message="the job taken with the outcome back at the head of its queue")
    assert log_entries(r) == ["paused-queue:mail"]
    r.srem(PAUSED, "mail")
    wait_log(r, "perform:after", timeout=15)
    assert [e.split(":")[1] for e in log_entries(r) if e.startswith("perform:")] == ["next", "after"]
    stop(proc)
