"""Jobs the retry tests run (tests/worker/test_retries.py), loaded beside
jobs.py. Each logs its runs to Redis as ``run:<class>:<attempt>:<pid>``;
the onFailure listener logs each failure it is told of."""

import os
import time

import redis

import resqued

FAST = {"attempts": 3, "backoff": "fixed", "base": 0, "jitter": 0}


def _redis():
    return redis.Redis.from_url(os.environ["REDIS_BACKEND"])


def _run(job):
    """Log this run; returns which run of this job it is (1 the first).
    The count and the log entry are written in one transaction: a test that
    stops the worker once it sees the entry must not kill the child between
    the two (the next run would then count itself the first)."""
    with _redis().pipeline(transaction=True) as pipe:
        pipe.rpush("test:log", f"run:{job.job_class}:{job.payload.get('attempt', 1)}:{os.getpid()}")
        pipe.incr(f"test:runs:{job.job_class}")
        return pipe.execute()[1]


def _on_failure(exc, job):
    _redis().rpush("test:log", f"onFailure:{type(exc).__qualname__}:{job.job_class}")


resqued.listen("onFailure", _on_failure)


class FlakyTwice:
    """Fails its first two runs, then succeeds."""
    retry = FAST

    def perform(self):
        if _run(self.job) <= 2:
            raise ConnectionError("the service is away")


class AlwaysFails:
    retry = {"attempts": 3, "backoff": "fixed", "base": 1, "jitter": 0}

    def perform(self):
        _run(self.job)
        raise ValueError("bad data")


class Refuses:
    retry = FAST

    def perform(self):
        _run(self.job)
        raise resqued.DontRetry("no point trying again")


class GivesUpOnKeyError:
    retry = FAST
    give_up_on = (KeyError,)

    def perform(self):
        _run(self.job)
        raise KeyError("missing")


class RetriesOnlyOSErrors:
    """Raises what its args name: retry_on covers OSError and its subclasses."""
    retry = FAST
    retry_on = (OSError,)

    def perform(self):
        _run(self.job)
        raise {"ConnectionError": ConnectionError, "ValueError": ValueError}[self.args["raise"]]("raised")


class DiesOnce:
    """Its first run exits without reporting (a dirty exit)."""
    retry = FAST

    def perform(self):
        if _run(self.job) == 1:
            os._exit(3)


class SlowOnce:
    """Its first run outlasts its 1 s timeout."""
    retry = FAST
    timeout = 1

    def perform(self):
        if _run(self.job) == 1:
            time.sleep(30)


class NoRetryOnDeath:
    retry = {**FAST, "dirty_exit": False}

    def perform(self):
        _run(self.job)
        os._exit(3)


class UsesThePoolsRetry:
    """No retry of its own: its pool's ``retry`` applies."""

    def perform(self):
        if _run(self.job) == 1:
            raise RuntimeError("first run fails")


class SleepsFirst:
    """Its first run sleeps (for a stop to kill it); later runs succeed."""
    retry = FAST

    def perform(self):
        if _run(self.job) == 1:
            time.sleep(30)


class HasARetryMethod:
    """A ``retry`` of its own that is no policy: ignored, with a warning."""

    def retry(self):
        pass

    def perform(self):
        raise ValueError("fails")


class OwnJobRetry:
    """job_retry (ours) beats a plain retry, which says none."""
    job_retry = {"attempts": 2, "backoff": "fixed", "base": 60, "jitter": 0}
    retry = None

    def perform(self):
        raise ValueError("fails")


class RaisesAClassOnlyItsChildKnows:
    """Raises an OSError subclass the worker never imported (defined in the
    job child as it runs, as a library imported there would): its
    retry_on = (OSError,) must still match."""
    retry = FAST
    retry_on = (OSError,)

    def perform(self):
        class ServiceDown(ConnectionError):
            pass
        if _run(self.job) <= 1:
            raise ServiceDown("the service is away")
