"""Jobs the scheduler tests run (APP_INCLUDE): each says when it ran."""

import os
import time

import redis


class Stamp:
    """php-style: logs ``ran:<tag>:<time it ran>:<its queue_time>``."""

    def perform(self):
        client = redis.Redis.from_url(os.environ["REDIS_BACKEND"])
        client.rpush("test:log", f"ran:{self.args['tag']}:{time.time()}:{self.job.payload.get('queue_time')}")
        client.close()


class RubyAdd:
    """Ruby-style: perform(*args)."""

    @staticmethod
    def perform(a, b):
        client = redis.Redis.from_url(os.environ["REDIS_BACKEND"])
        client.rpush("test:log", f"ruby:{a + b}")
        client.close()
