"""One backoff rule for everything the master restarts: a pool whose workers
die at boot, the spawner, a recovery run that crashed. The first retry
comes soon, each further failure in a row doubles the wait, up to a cap; a
success starts over."""

import time

FIRST = 0.5       # seconds before the first retry
MAXIMUM = 30.0    # no wait is longer


class Backoff:
    def __init__(self, first: float = FIRST, maximum: float = MAXIMUM):
        self.first = first
        self.maximum = maximum
        self.failures = 0           # in a row
        self.until = 0.0            # time.monotonic() before which to wait

    def failed(self, now: float | None = None) -> float:
        """Count a failure; returns the wait before the next try."""
        self.failures += 1
        delay = min(self.first * 2 ** (self.failures - 1), self.maximum)
        self.until = (time.monotonic() if now is None else now) + delay
        return delay

    def succeeded(self) -> None:
        self.failures = 0
        self.until = 0.0

    def waiting(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) < self.until
