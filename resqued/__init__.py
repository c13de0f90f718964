"""resqued: Resque-compatible background jobs for Python, with the daemon
operators need around them. See README.md."""

from resqued.jobs.events import DontCreate, DontPerform, listen, stop_listening
from resqued.jobs.job import Job
from resqued.jobs.ownclient import client, enqueue, enqueue_call
from resqued.jobs.retries import DontRetry
from resqued.jobs.timeouts import JobTimeout
from resqued.version import __version__

__all__ = ["Resque", "Job", "DontCreate", "DontPerform", "DontRetry", "JobTimeout", "listen", "stop_listening",
           "client", "enqueue", "enqueue_call", "__version__"]


def __getattr__(name):
    if name == "Resque":
        # Resque (and with it redis-py, ~19 MB of RSS with asyncio) loads on first
        # use: the master process imports resqued.* and must not pay for it.
        from resqued.resque.client import Resque
        return Resque
    raise AttributeError(f"module 'resqued' has no attribute {name!r}")
