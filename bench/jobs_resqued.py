"""resqued jobs for the bench (APP_INCLUDE=bench/jobs_resqued.py). php-resque
style: ``perform(self)`` reads ``self.args``. BENCH_REDIS_URL is set by the
harness for the jobs that report."""

import os
import time

import redis


class NoopJob:
    """The job every throughput scenario runs: nothing at all."""

    def perform(self):
        pass


class PidJob:
    """Warm-up: records which process ran it (tells a forking run from a non-forking one)."""

    def perform(self):
        import redis
        redis.Redis.from_url(os.environ["BENCH_REDIS_URL"]).rpush(self.args["key"], os.getpid())


class LatencyJob:
    """Records when it started, next to the enqueue time it was given."""

    def perform(self):
        started = time.time()
        import redis
        redis.Redis.from_url(os.environ["BENCH_REDIS_URL"]).rpush(
            "bench:latency", f"{self.args['t']!r} {started!r}")


class SleepJob:
    """Keeps its worker busy for ``seconds`` without using a CPU (the scale scenario)."""

    def perform(self):
        time.sleep(self.args["seconds"])


class WriteKeyJob:
    """drain1_io: what an unmodified app's job does, build a redis-py client
    and write one key (in a fresh child, each time)."""

    def perform(self):
        redis.Redis.from_url(os.environ["BENCH_REDIS_URL"]).set(f"bench:io:{self.args['i']}", 1)
