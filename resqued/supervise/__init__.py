"""Supervision shared by the master and env mode (which runs on the master's
arbiter): one backoff rule (backoff), a pool's states and the verdict on a
worker's exit (states), and settling the jobs of workers that died
(lostworkers: it talks to Redis, so only the recovery runs load it).
"""
