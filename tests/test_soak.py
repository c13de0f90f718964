"""The soak's arithmetic (`make soak` runs the soak itself, outside the suite):
the job ledger and the drift bounds."""

from soakledger import BOUNDS, Ledger, drift, hourly


def ledger(enqueued, runs, failed=(), killed=()):
    book = Ledger(enqueued=set(enqueued), failed=set(failed), killed=set(killed))
    for line in runs:
        book.add_run(line)
    return book


def test_a_job_that_never_ran_and_did_not_fail_is_lost():
    book = ledger(range(5), ["0 100,10,1", "1 101,10,1", "3 103,10,1"], failed=[2])
    assert book.lost() == [4]
    assert book.ran_twice() == ([], [])


def test_a_second_run_is_explained_only_by_a_kill_of_an_earlier_runs_process():
    book = ledger(range(4), ["0 100,10,1", "0 200,20,1",     # its job child was killed: at least once
                             "1 101,11,1", "1 201,21,1",     # its worker was killed
                             "2 102,10,1", "2 202,20,1",     # nothing killed: a bug
                             "3 103,10,1"],
                  killed=[100, 11, 200])
    assert book.ran_twice() == ([0, 1], [2])
    assert book.lost() == []


def test_a_kill_of_the_last_run_explains_nothing():
    # Killed after it recorded its second run: the first run is unexplained.
    book = ledger([0], ["0 100,10,1", "0 200,20,1"], killed=[200])
    assert book.ran_twice() == ([], [0])


def test_maybe_enqueued_jobs_are_neither_lost_nor_unknown():
    book = ledger(range(2), ["0 1,1", "5 1,1", "9 1,1"])
    book.uncertain = {5, 6}
    assert book.lost() == [1]
    assert book.unknown() == [9]


def test_drift_names_what_grew_past_its_bound():
    base = {"master_rss_mb": 22.0, "master_fds": 12, "processes": 16, "redis_keys": 19}
    assert drift(base, dict(base, master_rss_mb=22.0 + BOUNDS["master_rss_mb"], redis_keys=18)) == []
    problems = drift(base, dict(base, master_rss_mb=30.5, master_fds=13))
    assert problems == [f"master_rss_mb grew by 8.5 (from 22 to 30.5; bound {BOUNDS['master_rss_mb']:g})",
                        "master_fds grew by 1 (from 12 to 13; bound 0)"]


def test_hourly_rate():
    assert hourly(0.5, 600) == 3.0
    assert hourly(1.0, 0) == 0.0
