"""``python -m resqued.fleet``: a master's advertiser. Every
ADVERTISE_EVERY seconds it asks its master for its status (over the control
socket, as the exporter asks for metrics) and writes the master's fleet
record (record.py) with a TTL of RECORD_TTL, so that a master gone, however
it went, drops out of ``resquectl fleet`` within the TTL. On TERM (the
master stopping) it removes the record at once.

A process of its own, not the exporter: the exporter runs only with
``metrics:``, and every master belongs in the fleet view; and not the
master: the master never talks to Redis (a Redis outage must not stall its
loop). Its settings come on a descriptor (--settings-fd), as JSON: the
Redis URL may hold a password.
"""

import json
import logging
import os
import select
import signal
import sys
import time

import redis

from resqued.ctl.masterclient import request
from resqued.exits import EXIT_OK
from resqued.fleet import record
from resqued.fleet.keys import ADVERTISE_EVERY, RECORD_TTL, FleetKeys
from resqued.process.settingsfd import settings_from_argv
from resqued.process.signals import SignalQueue, exit_on_parent_death
from resqued.process.title import set_raw_title
from resqued.protocols.controlsocket import Command, ControlError
from resqued.redisio.connection import connect

log = logging.getLogger("resqued.fleet")

STATUS_TIMEOUT = 1.0
REDIS_TIMEOUT = 2.0


class Advertiser:
    def __init__(self, settings: dict, client):
        self.settings = settings
        self.client = client
        self.keys = FleetKeys(settings["namespace"])
        self.member = f"{settings['host']}:{settings['master_pid']}"
        self._problem = None    # the last failure said, until a write succeeds

    def status(self) -> dict | None:
        if not self.settings.get("control_socket"):
            return None
        try:
            # Every 2 s: no /proc reads for each worker (6 % of the master's CPU at 64), and
            # the pools' counts by state rather than each worker's record (1.1 ms of its CPU).
            answer = request(self.settings["control_socket"], Command.STATUS, timeout=STATUS_TIMEOUT,
                             memory=False, workers=False)
        except ControlError:
            return None     # said in the record: state "not answering"
        return answer if answer.get("ok") else None

    def advertise(self) -> None:
        data = json.dumps(record.build(self.settings, self.status()))
        now = time.time()
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.set(self.keys.record(self.member), data, ex=RECORD_TTL)
            pipe.zadd(self.keys.masters, {self.member: now})
            # Members whose record expired (their master died): the reader skips them; this forgets them.
            pipe.zremrangebyscore(self.keys.masters, "-inf", now - RECORD_TTL)
            pipe.execute()
        except redis.RedisError as exc:
            if self._problem != str(exc):
                log.warning("fleet: cannot write this master's record (trying again every %gs): %s",
                            ADVERTISE_EVERY, exc)
                self._problem = str(exc)
            return
        if self._problem:
            log.info("fleet: this master's record is written again")
            self._problem = None

    def withdraw(self) -> None:
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.delete(self.keys.record(self.member))
            pipe.zrem(self.keys.masters, self.member)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("fleet: could not remove this master's record (it expires in %ss): %s", RECORD_TTL, exc)


def main(argv=None) -> int:
    settings = settings_from_argv("python -m resqued.fleet", argv)
    signals = SignalQueue([signal.SIGTERM, signal.SIGINT])
    signals.install()
    exit_on_parent_death(signal.SIGTERM)
    if os.getppid() != settings["master_pid"]:
        return EXIT_OK   # the master is gone already
    set_raw_title(settings["title"])
    client = connect(settings["redis_url"], socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT)
    advertiser = Advertiser(settings, client)
    try:
        while not signals.has_pending():
            advertiser.advertise()
            select.select([signals], [], [], ADVERTISE_EVERY)
        advertiser.withdraw()
    finally:
        client.close()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
