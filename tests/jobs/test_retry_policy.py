"""Retry policies, pure: their checks, the delays they give, and which
failures they retry (jobs/retries.py; worker/retrying.py's exception chain)."""

import pytest

import resqued
from resqued.jobs.retries import ClassRetries, PolicyError, delay, normalize, retry_delay, retry_problem
from resqued.worker.retrying import exception_chain


def policy(**settings):
    return normalize({"attempts": 10, "jitter": 0, **settings})


@pytest.mark.parametrize("settings, expected", [
    ({}, [2, 4, 8, 16, 32]),                                       # exponential, base 2
    ({"base": 3, "max": 30}, [3, 9, 27, 30, 30]),
    ({"backoff": "linear", "base": 5}, [5, 10, 15, 20, 25]),
    ({"backoff": "fixed", "base": 7}, [7, 7, 7, 7, 7]),
    ({"backoff": [1, 10, 60]}, [1, 10, 60, 60, 60]),              # its last delay again past its end
    ({"backoff": "fixed", "base": 0}, [0, 0, 0, 0, 0]),
])
def test_delays(settings, expected):
    assert [delay(policy(**settings), n) for n in range(1, 6)] == expected


def test_a_huge_exponent_is_capped_not_an_overflow():
    assert delay(policy(base=10, max=3600), 500) == 3600


def test_jitter_spreads_the_delay_by_its_fraction_and_never_past_max():
    p = policy(backoff="fixed", base=100, jitter=0.1)
    assert delay(p, 1, 0.0) == pytest.approx(90) and delay(p, 1, 0.999999) == pytest.approx(110, abs=0.01)
    assert delay(policy(backoff="fixed", base=100, max=100, jitter=0.5), 1, 0.99) == 100


def test_a_list_of_delays_sets_the_attempts_unless_given():
    assert normalize({"backoff": [1, 2]})["attempts"] == 3
    assert normalize({"backoff": [1, 2], "attempts": 5})["attempts"] == 5


def test_shorthands_and_no_retries():
    assert normalize(4)["attempts"] == 4 and normalize(4)["backoff"] == "exponential"
    assert normalize(None) is None and normalize(False) is None and normalize(1) is None


@pytest.mark.parametrize("value, key, problem", [
    (0, "attempts", "expected a whole number >= 1, got 0"),
    ({"base": 2}, "attempts", "missing"),
    ({"attempts": 2, "backoff": "soon"}, "backoff", "expected exponential, linear, fixed or a list"),
    ({"attempts": 2, "backoff": []}, "backoff", "an empty list"),
    ({"attempts": 2, "max": 0}, "max", "must be greater than 0"),
    ({"attempts": 2, "jitter": -0.1}, "jitter", "must be at least 0"),
    ({"attempts": 2, "dirty_exit": "yes"}, "dirty_exit", "expected true or false"),
    ({"attempts": 2, "tries": 3}, "tries", "unknown retry setting"),
    ("3", None, "expected a number of attempts or a mapping"),
])
def test_bad_policies(value, key, problem):
    with pytest.raises(PolicyError) as caught:
        normalize(value)
    assert caught.value.key == key and problem in caught.value.problem


class Busy(ConnectionError):
    pass


class Job:
    retry = {"attempts": 3, "backoff": "fixed", "base": 5, "jitter": 0}
    retry_on = (OSError, "myapp.Transient")
    give_up_on = (Busy,)


def test_which_failures_are_retried():
    retries = ClassRetries(Job)
    p = retries.policy_in(None)
    assert retry_delay(p, retries, ["ConnectionError", "OSError"], 1) == 5
    assert retry_delay(p, retries, ["myapp.Transient"], 2) == 5
    assert retry_delay(p, retries, ["ConnectionError", "OSError"], 3) is None          # spent
    assert retry_delay(p, retries, ["ValueError", "Exception"], 1) is None             # not in retry_on
    assert retry_delay(p, retries, [f"{__name__}.Busy", "ConnectionError", "OSError"], 1) is None   # give_up_on
    assert retry_delay(p, retries, ["resqued.DontRetry", "Exception"], 1) is None
    # A dirty exit and a timeout follow their own switches, not retry_on.
    assert retry_delay(p, retries, ["Resque::DirtyExit"], 1) == 5
    assert retry_delay({**p, "timeout": False}, retries, ["resqued.JobTimeout"], 1) is None


def test_a_classs_own_retry_beats_the_pools_and_none_turns_it_off():
    pool = normalize(5)
    class Plain: pass
    class Off: retry = None
    assert ClassRetries(Plain).policy_in(pool) is pool
    assert ClassRetries(Off).policy_in(pool) is None
    assert ClassRetries(Job).policy_in(pool)["attempts"] == 3


def test_exception_chain_reads_loaded_classes_only():
    assert exception_chain("ConnectionError")[:2] == ["ConnectionError", "OSError"]
    assert exception_chain(f"{__name__}.Busy")[:3] == [f"{__name__}.Busy", "ConnectionError", "OSError"]
    assert exception_chain("resqued.DontRetry") == ["resqued.DontRetry", "Exception", "BaseException"]
    assert exception_chain("Resque::DirtyExit") == ["Resque::DirtyExit"]
    assert exception_chain("not.loaded.Error") == ["not.loaded.Error"]
    assert resqued.DontRetry.__module__ == "resqued"


def test_retry_problem_names_the_attribute():
    class Bad: job_retry = {"attempts": 2, "base": "x"}
    class BadOn: retry_on = [None]
    assert retry_problem(Bad) == "job_retry: base: expected a number of seconds, got 'x'"
    assert retry_problem(BadOn) == "retry_on must be exception classes or their names, not None"
    assert retry_problem(Job) is None
