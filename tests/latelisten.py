"""A job module whose dirty exit's onFailure (run in the worker) registers a
childReady listener there, after the job forker was forked: the worker's
table of listeners then differs from its standbys'
(tests/worker/test_child_ready_mishaps.py)."""

import os

import resqued


@resqued.listen("onFailure")
def listen_late(exc, job):
    resqued.listen("childReady")(lambda: None)


def dies_and_listens():
    os._exit(1)


def after_listen():
    pass
