"""resqued: Resque-compatible background jobs for Python, with the daemon
operators need around them. See README.md."""

from .events import DontCreate, DontPerform, listen, stop_listening
from .job import Job
from .version import __version__

__all__ = ["Resque", "Job", "DontCreate", "DontPerform", "listen", "stop_listening", "__version__"]


def __getattr__(name):
    # Resque (and with it redis-py, ~15 MB) is imported on first use, not
    # with the package: the job forker (forkserver.py) imports resqued's job
    # path without it, so that the children it forks stay small.
    if name == "Resque":
        from .client import Resque
        return Resque
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
