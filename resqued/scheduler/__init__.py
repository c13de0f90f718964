"""The scheduler: a process (``python -m resqued.scheduler``) that moves
delayed jobs to their queues when they fall due, one of them active across
every host and every Ruby resque-scheduler on the same Redis (``lock``:
resque-scheduler's master lock). Talks to Redis itself; runs no master or
worker code (tests/test_architecture.py). What it moves with is
resque/delayedmove.py, which ``resquectl delayed run`` uses too. With
``--schedule pool.yml`` the active one also enqueues the recurring jobs of
its ``schedule:`` (``recurring``), each occurrence once.
"""
