"""What a reaped worker's exit does to its pool, decided without a process
(master/workerexits.py): the verdict, the jobs recovered, the pool's record
and the log line, for each exit the master can see. The real-process side
is test_worker_exits.py and test_visible_failures.py."""

import logging
import signal

import pytest

from resqued.exits import EXIT_BOOT_ERROR, EXIT_FAILURE, EXIT_OK, EXIT_RECYCLE_JOBS, EXIT_RECYCLE_MEMORY
from resqued.master.workercontrol import describe_exit
from resqued.master.workerexits import ExitFacts, judge, record, report
from resqued.config.settings import default
from resqued.supervise.states import Exit, PoolSupervision

START_RETRIES = default("start_retries")

HOST = "box"


def account(facts, pool=None, now=100.0, pool_known=True):
    pool = pool if pool is not None else PoolSupervision()
    decision = judge(facts, HOST, pool_known)
    delay = record(decision, facts, pool if pool_known else None, now, START_RETRIES)
    return decision, pool, delay, report(decision, facts, pool, delay)


@pytest.mark.parametrize("code, announced, settled, busy, verdict, lost", [
    # Announced codes are the worker's own.
    (EXIT_OK, True, True, False, Exit.DIED, False),                 # stopped by a QUIT sent to it, not by us
    (EXIT_RECYCLE_JOBS, True, True, False, Exit.RECYCLED, False),
    (EXIT_RECYCLE_MEMORY, True, True, False, Exit.RECYCLED, False),
    (EXIT_BOOT_ERROR, True, True, False, Exit.BOOT_FAILURE, False),
    (EXIT_FAILURE, True, True, False, Exit.DIED, True),              # not a clean exit: recover
    (EXIT_OK, True, False, False, Exit.DIED, True),                  # said it left something in flight
    # Unannounced: a job may have ended the process with any code.
    (EXIT_RECYCLE_JOBS, False, False, False, Exit.DIED, True),
    (EXIT_RECYCLE_JOBS, False, False, True, Exit.DIED, True),
    (EXIT_BOOT_ERROR, False, False, True, Exit.DIED, True),         # mid-job: never a boot failure
    (-signal.SIGKILL, False, False, True, Exit.DIED, True),
    (-signal.SIGKILL, False, False, False, Exit.DIED, True),
])
def test_the_verdict_and_the_recovery_of_each_exit_of_a_ready_worker(code, announced, settled, busy, verdict, lost):
    facts = ExitFacts(7, "mail", code, announced=announced, settled=settled, busy=busy, job="job 1 (Mail)",
                      how=describe_exit(code))
    decision, pool, _, (level, line) = account(facts)
    assert decision.verdict is verdict
    assert (decision.lost is not None) is lost
    if lost:
        assert decision.lost.startswith(f"worker {HOST}:7:mail died (") and "while processing it" in decision.lost
    assert ("running job 1 (Mail)" in line) is (busy and not announced)
    assert pool.restarts == (1 if verdict in (Exit.DIED, Exit.BOOT_FAILURE) else 0)
    assert pool.recycles == (1 if verdict is Exit.RECYCLED else 0)


def test_an_exit_while_stopping_or_after_its_pool_was_removed_is_a_stop_and_touches_no_record():
    for facts, known in ((ExitFacts(7, "mail", -signal.SIGKILL, busy=True, stopping=True), True),
                         (ExitFacts(7, "mail", EXIT_OK, announced=True, settled=True), False)):
        decision, pool, delay, (level, line) = account(facts, pool_known=known)
        assert decision.verdict is Exit.STOPPED and delay is None
        assert (pool.restarts, pool.recycles, pool.last_exit, pool.backoff.failures) == (0, 0, "", 0)
        assert level == logging.INFO and "stopped (" in line
    # Stopped mid-job by a kill: its job is still recovered.
    assert judge(ExitFacts(7, "mail", -signal.SIGKILL, busy=True, stopping=True), HOST).lost


def test_boot_failures_back_off_then_the_pool_is_fatal_with_its_reason():
    pool = PoolSupervision()
    delays = []
    for n in range(START_RETRIES + 1):
        facts = ExitFacts(10 + n, "mail", EXIT_BOOT_ERROR, announced=True, settled=True, ready=False,
                          last_error="ImportError: no module jobs")
        decision, pool, delay, (level, line) = account(facts, pool, now=100.0 + n)
        assert decision.verdict is Exit.BOOT_FAILURE and decision.lost is None
        delays.append(delay)
    assert all(d > 0 for d in delays[:-1]) and delays == sorted(delays[:-1]) + [None]
    assert pool.failed and pool.last_error == "ImportError: no module jobs"
    assert level == logging.ERROR and line.startswith("pool mail failed: its workers died at boot 6 times")
    assert "not restarting until a reload" in line and "last error: ImportError" in line


def test_an_error_exit_soon_after_the_start_is_a_boot_failure_a_later_one_a_death():
    early = ExitFacts(7, "mail", EXIT_FAILURE, uptime=1.0, how="exit code 1")
    assert judge(early, HOST).verdict is Exit.BOOT_FAILURE
    assert judge(ExitFacts(7, "mail", EXIT_FAILURE, uptime=60.0), HOST).verdict is Exit.DIED
    # A kill from outside says nothing of its boot.
    assert judge(ExitFacts(7, "mail", -signal.SIGTERM, uptime=1.0), HOST).verdict is Exit.DIED
    decision, pool, delay, (level, line) = account(early)
    assert level == logging.WARNING and line == f"worker 7 (mail) died at boot (exit code 1); next start in {delay:.1f}s"


def test_a_death_after_boot_failures_resets_the_backoff():
    pool = PoolSupervision()
    account(ExitFacts(7, "mail", EXIT_BOOT_ERROR, announced=True, settled=True, ready=False), pool)
    assert pool.backoff.failures == 1
    account(ExitFacts(8, "mail", -signal.SIGKILL, how="signal SIGKILL"), pool)
    assert pool.backoff.failures == 0 and pool.last_exit == "signal SIGKILL"


def test_recycles_record_no_last_exit():
    decision, pool, _, (level, line) = account(ExitFacts(7, "mail", EXIT_RECYCLE_MEMORY, announced=True, settled=True))
    assert pool.last_exit == "" and level == logging.INFO and line.endswith("; replacing it")
