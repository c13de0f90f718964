"""drain1_io with resqued's childReady listener (APP_INCLUDE=bench/jobs_resqued_warm.py):
the same job as jobs_resqued.WriteKeyJob, its client built once in the
worker and connected in each standby before its job arrives."""

import os

import redis

import resqued

client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])


@resqued.listen("childReady")
def connect():
    client.ping()


class WarmWriteKeyJob:
    def perform(self):
        client.set(f"bench:io:{self.args['i']}", 1)

