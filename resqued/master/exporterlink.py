"""The master's handle on its metrics exporter (resqued/exporter/: what it
serves and why it is a process of its own): started as a fresh
interpreter while ``metrics:`` is set, restarted with backoff when it dies
(an address in use is said by the exporter in one line, and tried again
later: the pools run on), stopped with the master or when a reload takes
``metrics:`` away or changes it.

Kept running as keptprocess.py says (it has nothing to finish: stopped
with KILL). It is given its settings on a memfd (as the code probe is):
the Redis URL may hold a password, which a command line would show to anyone.
"""

import json
import logging
import os

from resqued.exits import EX_UNAVAILABLE
from resqued.master.keptprocess import KeptProcess
from resqued.process import logs

log = logging.getLogger("resqued.master")


class Exporter(KeptProcess):
    what = "the metrics exporter"

    def __init__(self, name: str):
        super().__init__(f"resqued-exporter[{name}]")

    def wanted(self, config):
        """Its settings (its address, what it reads); None without ``metrics:``."""
        if not config.metrics:
            return None
        return {"listen": config.metrics, "control_socket": config.control_socket,
                "redis_url": config.redis_url, "namespace": config.namespace,
                "master_pid": os.getpid(), "title": self.title}

    def launch(self, serves) -> int:
        return self.launch_module("resqued.exporter", "--settings-fd", json.dumps(serves).encode(),
                                  logs.exec_arguments())

    def died(self, serves, code: int, how: str, delay: float) -> None:
        if code == EX_UNAVAILABLE:
            # It said why in one line (the address in use, say): no traceback, no hurry.
            log.info("the metrics exporter for %s tries again in %.0fs", serves and serves["listen"], delay,
                     extra=logs.event("exporter_unavailable"))
        else:
            log.error("the metrics exporter died (%s); a new one starts in %.1fs", how, delay,
                      extra=logs.event("exporter_died", reason=how))
