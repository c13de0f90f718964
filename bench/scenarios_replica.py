"""drain1_nofork_wait: what wait_replicas costs per job (docs/sentinel.md).

One worker with fork: false (the cheapest job, where one more wait shows
most) drains no-op jobs from a primary that has one replica, without and
with ``wait_replicas: 1``, round-robin in the same run: their ratio is the
cost. Both run against the same pair of redis-servers on loopback TCP (a
replica cannot follow a unix socket), so the pair's own cost (replication
to the replica) is in both figures."""

import copy
import os

import redis

import scenarios
from contenders import Resqued
from sentinels import SentinelSetup  # tests/sentinels.py: a primary and its replica

SCENARIO = "drain1_nofork_wait"


class ReplicatedResqued(Resqued):
    def __init__(self, ctx, wait_replicas: int):
        super().__init__(ctx, fork=False)
        self.wait_replicas = wait_replicas
        self.label = f"resqued FORK_PER_JOB=false, one replica, RESQUED_WAIT_REPLICAS={wait_replicas}"

    def env(self) -> dict:
        return dict(super().env(), RESQUED_WAIT_REPLICAS=str(self.wait_replicas))


def drain_wait(ctx, res, n, reps):
    directory = os.path.join(ctx.rundir, "pair")
    os.makedirs(directory, exist_ok=True)
    pair = SentinelSetup(directory)
    try:
        pair.start(sentinels=False)
        on_pair = copy.copy(ctx)   # the same budget, processes and durations; the pair's primary
        on_pair.url = pair.primary_url
        on_pair.redis = redis.Redis.from_url(pair.primary_url, decode_responses=True)
        makers = [("resqued", lambda c: ReplicatedResqued(c, 0)), ("resqued_wait", lambda c: ReplicatedResqued(c, 1))]
        scenarios.drain(on_pair, res, SCENARIO, makers, n, reps, timeout=120)
    finally:
        pair.stop()
