"""sd_notify without libsystemd: datagrams to $NOTIFY_SOCKET.

READY=1 once the pools are up, RELOADING=1 / READY=1 around a reload,
STOPPING=1, STATUS= lines, and WATCHDOG=1 at half of WatchdogSec. With no
NOTIFY_SOCKET (not under systemd) every call does nothing.
"""

import os
import socket
import time

from resqued.numbers import is_whole_number


class Notifier:
    def __init__(self, environ=None):
        environ = os.environ if environ is None else environ
        address = environ.get("NOTIFY_SOCKET") or None
        if address and address.startswith("@"):
            address = "\0" + address[1:]  # abstract namespace
        self.address = address
        self.watchdog_interval = None
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        if is_whole_number(usec) and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_interval = int(usec) / 1e6 / 2
        self._last_watchdog = 0.0
        # Our workers and their jobs must not talk to systemd as if they were us.
        for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            environ.pop(name, None)
        self._sock = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *lines: str) -> None:
        if not self.address:
            return
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)
        try:
            self._sock.sendto("\n".join(lines).encode(), self.address)
        except OSError:
            pass  # systemd gone or busy: never let notification break the master

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def reloading(self) -> None:
        self.send("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}", "STATUS=reloading")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")

    def status(self, text: str) -> None:
        self.send(f"STATUS={text}")

    def watchdog_due_in(self) -> float | None:
        if self.watchdog_interval is None:
            return None
        return max(0.0, self._last_watchdog + self.watchdog_interval - time.monotonic())

    def watchdog(self) -> None:
        if self.watchdog_interval is not None and self.watchdog_due_in() <= 0:
            self.send("WATCHDOG=1")
            self._last_watchdog = time.monotonic()
