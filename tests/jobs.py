"""Jobs the worker tests run (loaded with APP_INCLUDE). Each one reports to
Redis, so tests rendezvous on Redis instead of sleeping."""

import os
import signal
import time

import redis

from resqued import DontPerform  # imported names are not jobs


def _client():
    return redis.Redis.from_url(os.environ["REDIS_BACKEND"])


def _log(event, *values):
    _client().rpush("test:log", ":".join([event, *map(str, values)]))


class PhpJob:
    """php-resque style: perform(self) reads self.args."""

    def setUp(self):
        _log("setUp", os.getpid())

    def perform(self):
        _log("perform", (self.args or {}).get("tag", ""), self.queue, self.job.id)

    def tearDown(self):
        _log("tearDown", os.getpid())


class RubyJob:
    @staticmethod
    def perform(a, b):
        _log("ruby", a + b)


def add(a, b):
    _log("add", a + b)


def noop():
    """A job that takes no arguments."""
    _log("noop")


class Failing:
    def perform(self):
        raise ValueError(f"boom {self.args}")


class Skipped:
    def setUp(self):
        raise DontPerform()

    def perform(self):
        _log("should-not-run")


class Slow:
    """Signals it started, then waits until told to finish (or seconds pass)."""

    def perform(self):
        _log("started", os.getpid())
        client, deadline = _client(), time.monotonic() + (self.args or {}).get("seconds", 30)
        # Short waits: redis-py's default socket_timeout (5 s) ends a longer BLPOP with an error.
        while time.monotonic() < deadline and not client.blpop(["test:release"], timeout=1):
            pass
        _log("finished", os.getpid())


class SelfKill:
    def perform(self):
        os.kill(os.getpid(), signal.SIGKILL)


class HardExit:
    def perform(self):
        os._exit((self.args or {}).get("code", 3))


class CallsExit:
    def perform(self):
        raise SystemExit(0)


class Sleeper:
    def perform(self):
        time.sleep((self.args or {}).get("seconds", 1))
        _log("slept")


class GoldenOk:
    """The class name php-resque's golden run enqueued."""

    def perform(self):
        _log("golden-ok", sorted(self.args) if isinstance(self.args, dict) else self.args)


class GoodJob:
    """The class name Ruby Resque's golden run enqueued (Ruby style args)."""

    @staticmethod
    def perform(*args):
        _log("good-job", len(args))


class Hog:
    """Holds ``mb`` megabytes (touched, so they are resident) until released."""

    def perform(self):
        args = self.args or {}
        data = bytearray(args.get("mb", 100) * 1024 * 1024)
        for i in range(0, len(data), 4096):
            data[i] = 1
        _log("hogging", os.getpid())
        _client().blpop(["test:release"], timeout=args.get("seconds", 30))
        _log("hog-done", len(data))


class KillsItsWorker:
    """The kind of job that takes its worker down (think: a native crash that
    the job child's death propagates, or an OOM kill of the whole worker)."""

    def perform(self):
        _log("killer-run", (self.job.payload.get("resqued_lost") or 0))
        # The worker, not the parent (a job forker forks the children):
        # worker ids are host:pid:queues.
        os.kill(int(self.job.worker_id.split(":")[1]), signal.SIGKILL)
        time.sleep(30)


class FileSleep:
    """Marks files instead of Redis, so it can run while Redis is down."""

    def perform(self):
        args = self.args or {}
        open(args["path"] + ".started", "w").close()
        time.sleep(args.get("seconds", 1))
        open(args["path"] + ".done", "w").close()


class PausesAll:
    """Sets Resque's global pause switch after ``seconds``, as resque-web would."""

    def perform(self):
        time.sleep((self.args or {}).get("seconds", 0))
        _client().set("resque:pause-all-workers", "true")
        _log("paused-all")


class PausesQueue:
    """Pauses a queue fleet-wide, as ``resquectl pause --queue Q --fleet`` would."""

    def perform(self):
        _client().sadd("resque:resqued:paused_queues", self.args["queue"])
        _log("paused-queue", self.args["queue"])


class CountsAndFails:
    """Appends a line to a file (no Redis: it may refuse us), then fails."""

    def perform(self):
        with open(self.args["path"], "a") as ledger:
            ledger.write(f"{os.getpid()}\n")
        raise RuntimeError("counted")


class Nothing:
    """Does nothing: the only Redis traffic of its run is the worker's."""

    def perform(self):
        pass
