"""The master's handle on its fleet advertiser (resqued/fleet/advertiser.py:
the process that writes this master's record for ``resquectl fleet``):
always running (every master belongs in the fleet view), kept as
keptprocess.py says, stopped with TERM (it removes the record as it
leaves; KILL a few seconds later).

It is given its settings on a memfd, as the exporter is: the Redis URL may
hold a password, which a command line would show to anyone. A reload that
changes what it reports of the config (its digest) starts a new one.
"""

import zlib
import json
import os
import time

from resqued.master.keptprocess import KeptProcess
from resqued.process import logs
from resqued.process.hostname import hostname
from resqued.version import __version__

GRACE = 3.0   # seconds to remove its record after TERM


class AdvertiserLink(KeptProcess):
    what = "the fleet advertiser"

    def __init__(self, name: str):
        super().__init__(f"resqued-advertiser[{name}]")
        self.master_started = time.time()
        self._digest_of = (None, None)   # (the config, its digest): wanted() runs every turn

    def wanted(self, config):
        if self._digest_of[0] is not config:
            # What the master runs with, not the file's bytes: two hosts whose
            # pool.yml differ only in comments have the same digest.
            self._digest_of = (config, f"{zlib.crc32(repr(config).encode()):08x}")
            # crc32, not hashlib: a digest to tell configs apart on sight, and
            # hashlib loads OpenSSL (~3 MB) into the master.
        return {"redis_url": config.redis_url, "namespace": config.namespace,
                "control_socket": config.control_socket, "master_pid": os.getpid(), "title": self.title,
                "host": hostname(), "version": __version__, "config": str(config.path or "(environment)"),
                "digest": self._digest_of[1], "started": self.master_started}

    def launch(self, serves) -> int:
        return self.launch_module("resqued.fleet", "--settings-fd", json.dumps(serves).encode(),
                                  logs.exec_arguments())

    def grace_for(self, config) -> float:
        return GRACE
