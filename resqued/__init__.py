"""resqued: Resque-compatible background jobs for Python, with the daemon
operators need around them. See README.md."""

from .client import Resque
from .events import DontCreate, DontPerform, listen, stop_listening
from .job import Job
from .version import __version__

__all__ = ["Resque", "Job", "DontCreate", "DontPerform", "listen", "stop_listening", "__version__"]
