"""The supervision decisions the master (and so env mode) acts on, as pure
code: no processes, the clock passed in."""

import pytest

from resqued.exits import EXIT_BOOT_ERROR, EXIT_FAILURE, EXIT_OK, EXIT_RECYCLE_JOBS, EXIT_RECYCLE_MEMORY
from resqued.supervise.backoff import Backoff
from resqued.supervise.states import Exit, PoolSupervision, SupervisionState, Stop, judge_exit, left_jobs_behind


def test_backoff_doubles_up_to_its_cap_and_starts_over_after_a_success():
    backoff = Backoff()
    assert [backoff.failed(now=100.0) for _ in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert backoff.until == 130.0 and backoff.waiting(129.9) and not backoff.waiting(130.0)
    backoff.succeeded()
    assert not backoff.waiting(0.0) and backoff.failed(now=0.0) == 0.5


@pytest.mark.parametrize("code, stopping, ready, verdict", [
    (EXIT_OK, True, True, Exit.STOPPED),
    (-9, True, False, Exit.STOPPED),               # told to stop: whatever it exits with
    (EXIT_RECYCLE_JOBS, False, True, Exit.RECYCLED),
    (EXIT_RECYCLE_MEMORY, False, True, Exit.RECYCLED),
    (EXIT_BOOT_ERROR, False, True, Exit.BOOT_FAILURE),
    (EXIT_FAILURE, False, False, Exit.BOOT_FAILURE),  # died before it reported for work
    (-9, False, True, Exit.DIED),
    (EXIT_OK, False, True, Exit.DIED),            # left unasked
])
def test_judge_an_announced_exit(code, stopping, ready, verdict):
    assert judge_exit(code, stopping=stopping, ready=ready, announced=True) is verdict


@pytest.mark.parametrize("code", [EXIT_OK, EXIT_BOOT_ERROR, EXIT_RECYCLE_JOBS, EXIT_RECYCLE_MEMORY, EXIT_FAILURE, -9])
def test_an_exit_it_did_not_announce_is_no_code_of_its_own(code):
    # E.g. a job's os._exit(code) in a fork: false worker.
    assert judge_exit(code, stopping=False, ready=True) is Exit.DIED
    assert judge_exit(code, stopping=False, ready=True, busy=True) is Exit.DIED
    assert judge_exit(code, stopping=False, ready=False) is Exit.BOOT_FAILURE
    assert judge_exit(code, stopping=True, ready=True, busy=True) is Exit.STOPPED


def test_only_announced_settled_clean_exits_leave_no_jobs_to_recover():
    clean = (EXIT_OK, EXIT_BOOT_ERROR, EXIT_RECYCLE_JOBS, EXIT_RECYCLE_MEMORY)
    assert [left_jobs_behind(c, announced=True, settled=True) for c in clean] == [False] * 4
    assert all(left_jobs_behind(c, announced=False, settled=True) for c in clean)
    assert all(left_jobs_behind(c, announced=True, settled=False) for c in clean)   # Redis was away
    assert left_jobs_behind(EXIT_FAILURE, announced=True, settled=True) and left_jobs_behind(-9, announced=False,
                                                                                              settled=False)


def test_a_pool_backs_off_on_boot_failures_then_turns_fatal():
    pool = PoolSupervision()
    delays = [pool.worker_exited(Exit.BOOT_FAILURE, now=10.0, start_retries=5) for _ in range(5)]
    assert delays == [0.5, 1, 2, 4, 8]
    assert pool.state(10.0) is SupervisionState.BACKOFF and not pool.may_start(10.0)
    assert pool.state(18.0) is SupervisionState.RUNNING
    assert pool.worker_exited(Exit.BOOT_FAILURE, now=20.0, start_retries=5) is None
    assert pool.state(1e9) is SupervisionState.FATAL and pool.failed and not pool.may_start(1e9)
    assert pool.restarts == 6 and pool.backoff.failures == 6
    no_retries = PoolSupervision()   # start_retries: 0 fails at the first boot failure
    assert no_retries.worker_exited(Exit.BOOT_FAILURE, now=0.0, start_retries=0) is None and no_retries.failed


def test_a_worker_that_dies_at_work_resets_the_boot_failures():
    pool = PoolSupervision()
    pool.worker_exited(Exit.BOOT_FAILURE, now=0.0, start_retries=5)
    pool.worker_exited(Exit.DIED, now=1.0, start_retries=5)
    assert pool.backoff.failures == 0 and pool.may_start(1.0) and pool.restarts == 2
    pool.worker_exited(Exit.RECYCLED, now=2.0, start_retries=5)
    pool.worker_exited(Exit.STOPPED, now=3.0, start_retries=5)
    assert (pool.recycles, pool.restarts) == (1, 2)


def test_a_stop_only_escalates_from_graceful_to_immediate():
    stop = Stop("graceful", turn_immediate_at=30.0)
    assert stop.graceful and stop.escalates_to("immediate") and not stop.escalates_to("graceful")
    assert stop.deadlines() == [30.0]
    stop.mode, stop.turn_immediate_at, stop.kill_at = "immediate", None, 9.0
    assert not stop.escalates_to("immediate") and not stop.escalates_to("graceful")
    assert stop.deadlines() == [9.0]


def test_an_error_exit_soon_after_start_is_a_boot_failure():
    """An ACL user without BLMOVE: the worker reports for work, then exits 1
    at its first reserve. Counted as a boot failure, the pool backs off and
    turns FATAL instead of restarting it hundreds of times."""
    assert judge_exit(1, stopping=False, ready=True, uptime=0.2) is Exit.BOOT_FAILURE
    assert judge_exit(1, stopping=False, ready=True, uptime=60.0) is Exit.DIED
    # Killed from outside (a signal) says nothing of its boot; a clean exit neither.
    assert judge_exit(-9, stopping=False, ready=True, uptime=0.2) is Exit.DIED
    assert judge_exit(0, stopping=False, ready=True, uptime=0.2) is Exit.DIED



def test_a_stops_deadlines_as_it_begins_turns_immediate_and_falls_due():
    stop = Stop("graceful")
    stop.begin("graceful", bounded=False, now=0.0, shutdown_timeout=10.0, term_timeout=4.0)
    assert stop.deadlines() == [] and stop.due(1e9) == (False, False)       # QUIT: no limit
    stop.begin("graceful", bounded=True, now=0.0, shutdown_timeout=10.0, term_timeout=4.0)
    assert stop.due(9.9) == (False, False) and stop.due(10.0) == (True, False)
    stop.begin("immediate", bounded=True, now=10.0, shutdown_timeout=10.0, term_timeout=4.0)
    assert stop.turn_immediate_at is None and stop.deadlines() == [19.0]
    assert stop.due(18.9) == (False, False) and stop.due(19.0) == (False, True)
    assert stop.due(20.0) == (False, False)                                     # the kill is due once
    # Lost jobs with no worker left: given up a timeout after that is first seen.
    assert not stop.give_up_recovery(30.0, 5.0) and not stop.give_up_recovery(34.9, 5.0)
    assert stop.give_up_recovery(35.0, 5.0)
