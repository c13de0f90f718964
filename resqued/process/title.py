"""Process titles as Resque shows them (``resque-VERSION: Waiting for high``).
Ruby Resque's pruner recognises live workers by the ``resque-<digit>`` prefix,
php-resque's by "resque" in the command line; both match these titles."""

import time

import setproctitle as _spt

from resqued.version import __version__

PREFIX = f"resque-{__version__}"


def set_title(text: str) -> None:
    _spt.setproctitle(f"{PREFIX}: {text}")


def set_raw_title(text: str) -> None:
    _spt.setproctitle(text)


def stamp(ts: float | None = None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
