"""The master's handle on its metrics exporter (resqued/exporter/: what it
serves and why it is a process of its own): started as a fresh
interpreter while ``metrics:`` is set, restarted with backoff when it dies
(an address in use is said by the exporter in one line, and tried again
later: the pools run on), stopped with the master or when a reload takes
``metrics:`` away or changes it.

The exporter is given its settings on a memfd (as the code probe is): the
Redis URL may hold a password, which a command line would show to anyone.
"""

import json
import logging
import os
import signal

from resqued.exits import EX_UNAVAILABLE
from resqued.process import logs
from resqued.process.interpreter import start_module
from resqued.supervise.backoff import Backoff

log = logging.getLogger("resqued.master")


class Exporter:
    def __init__(self, name: str):
        self.title = f"resqued-exporter[{name}]"
        self.pid = None
        self.serves = None          # the settings it runs with (its address, what it reads); None: not running
        self.backoff = Backoff()    # restarts after it died

    # -- as a HelperProcess (helperprocess.py) --------------------------
    def waitables(self) -> list:
        return []   # it only exits: the master's SIGCHLD wakes it

    def on_readable(self, waitable) -> None:
        pass

    def deadline(self):
        """While it is down: when it starts again."""
        return self.backoff.until if self.pid is None and self.backoff.failures else None

    def owns(self, pid: int) -> bool:
        return pid == self.pid

    def on_exit(self, pid: int, code: int, how: str) -> None:
        serves, self.pid, self.serves = self.serves, None, None
        delay = self.backoff.failed()
        if code == EX_UNAVAILABLE:
            # It said why in one line (the address in use, say): no traceback, no hurry.
            log.info("the metrics exporter for %s tries again in %.0fs", serves and serves["listen"], delay,
                     extra=logs.event("exporter_unavailable"))
        else:
            log.error("the metrics exporter died (%s); a new one starts in %.1fs", how, delay,
                      extra=logs.event("exporter_died", reason=how))

    def start_due(self, config) -> None:
        """Start it if ``config`` asks for metrics and it is not running (nor
        backing off); stop it if a reload changed or removed ``metrics:`` or
        what it reads (the Redis URL, the namespace)."""
        settings = {"listen": config.metrics, "control_socket": config.control_socket,
                    "redis_url": config.redis_url, "namespace": config.namespace,
                    "master_pid": os.getpid(), "title": self.title}
        if self.pid is not None and self.serves != settings:
            self.stop()
            self.backoff.succeeded()
        if not config.metrics or self.pid is not None or self.backoff.waiting():
            return
        settings_fd = os.memfd_create("resqued-exporter", os.MFD_CLOEXEC)
        try:
            os.write(settings_fd, json.dumps(settings).encode())
            os.lseek(settings_fd, 0, os.SEEK_SET)
            # In a group of its own: Ctrl-C on the master's terminal is the master's to handle.
            self.pid = start_module("resqued.exporter", ["--settings-fd", str(settings_fd), *logs.exec_arguments()],
                                    pass_fds=[settings_fd], new_group=True)
            self.serves = settings
        except OSError as exc:   # exec failed (the interpreter gone): try again later, live on
            log.error("cannot start the metrics exporter: %s; trying again in %.1fs", exc, self.backoff.failed(),
                      extra=logs.event("exporter_start_failed", error=str(exc)))
        finally:
            os.close(settings_fd)

    def stop(self) -> None:
        """The master is leaving (or metrics: changed): it has nothing to finish."""
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.pid, self.serves = None, None
