"""A job module that registers a beforeFork listener, as apps do to close
shared connections before a fork: with one, children are forked on demand."""

import os

import redis

import resqued


def _before_fork(job):
    redis.Redis.from_url(os.environ["REDIS_BACKEND"]).rpush("test:log", f"beforeFork:{os.getpid()}:{job.id}")


resqued.listen("beforeFork", _before_fork)


def report_parent():
    redis.Redis.from_url(os.environ["REDIS_BACKEND"]).rpush("test:log", f"child-of:{os.getppid()}")
