"""Jobs the job-timeout tests run (tests/worker/test_job_timeouts.py),
loaded beside jobs.py. Each reports to Redis; the onFailure listener says
which exception each failure gave the listeners, and where it ran."""

import os
import signal
import subprocess
import time

import redis

import resqued


def _log(event, *values):
    redis.Redis.from_url(os.environ["REDIS_BACKEND"]).rpush("test:log", ":".join([event, *map(str, values)]))


def _on_failure(exc, job):
    _log("onFailure", f"{type(exc).__module__}.{type(exc).__qualname__}", job.job_class,
         isinstance(exc, resqued.JobTimeout))


resqued.listen("onFailure", _on_failure)


class OwnTimeout:
    """Sleeps ``seconds``; its own 1 s timeout beats the pool's."""
    timeout = 1

    def perform(self):
        _log("started", os.getpid())
        time.sleep((self.args or {}).get("seconds", 30))
        _log("finished", os.getpid())


class LongOwnTimeout:
    """Sleeps ``seconds``; its own 5 s timeout beats a shorter pool's."""
    timeout = 5.0

    def perform(self):
        _log("started", os.getpid())
        time.sleep((self.args or {}).get("seconds", 2))
        _log("finished", os.getpid())


class IgnoresTerm:
    """Ignores TERM, as a job stuck in a C call or with its own handler may."""

    def perform(self):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _log("started", os.getpid())
        time.sleep(60)


class RaisesOnTerm:
    """Turns TERM into an exception, as Resque's TermException does."""

    def perform(self):
        def raise_term(signum, frame):
            raise RuntimeError("terminated")
        signal.signal(signal.SIGTERM, raise_term)
        _log("started", os.getpid())
        time.sleep(60)


class LeavesAHelper:
    """Starts a helper in a session of its own (out of the job's process
    group), then sleeps past its timeout."""

    def perform(self):
        helper = subprocess.Popen(["sleep", "60"], start_new_session=True)
        _log("helper", helper.pid)
        time.sleep(60)


class OwnJobTimeout:
    """Sleeps ``seconds``: job_timeout (ours) beats the plain timeout, which
    may be another library's setting."""
    job_timeout = 1
    timeout = 60

    def perform(self):
        _log("started", os.getpid())
        time.sleep((self.args or {}).get("seconds", 30))
