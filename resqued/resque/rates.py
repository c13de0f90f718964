"""Jobs per second, from Resque's counters (``stat:processed``,
``stat:failed``) read at two moments: neither Resque nor resqued keeps a
history, so a reader computes its rates from its own reads. ``resquectl
top`` (between two frames) and the dashboard (over about a minute of its
reads) compute them here, the same way."""

import collections
import threading


def rate(before, after) -> float | None:
    """Events per second between two readings ``(time, count)`` of a
    counter; None without an earlier reading, when no time has passed, or
    when the counter went back (someone reset stat:processed)."""
    if before is None or after is None:
        return None
    (t0, n0), (t1, n1) = before, after
    if t1 <= t0 or n1 < n0:
        return None
    return (n1 - n0) / (t1 - t0)


class Rates:
    """Processed and failed per second over about the last ``window``
    seconds of readings: from the newest reading at least ``window`` old
    (the first one, while none is that old) to the latest. Readings come
    when a reader asks (a page is loaded), so the span is the window plus
    up to one gap between two readings; it is returned with the rates.
    Times are Redis's clock (queuestats' ``time``), as top's are."""

    def __init__(self, window: float = 60.0, min_span: float = 1.0):
        self.window = window
        self.min_span = min_span   # two reads closer than this give noise, not a rate
        self._readings = collections.deque()   # (time, processed, failed)
        self._lock = threading.Lock()

    def add(self, now: float, processed: int, failed: int) -> dict:
        """Record a reading; ``{"processed", "failed", "window"}`` (None each until there is a span)."""
        with self._lock:
            if self._readings and (now < self._readings[-1][0] or processed < self._readings[-1][1]
                                   or failed < self._readings[-1][2]):
                self._readings.clear()   # a clock or a counter went back: start again
            self._readings.append((now, processed, failed))
            while len(self._readings) > 2 and now - self._readings[1][0] >= self.window:
                self._readings.popleft()
            first = self._readings[0]
        span = now - first[0]
        if span < self.min_span:
            return {"processed": None, "failed": None, "window": None}
        return {"processed": rate((first[0], first[1]), (now, processed)),
                "failed": rate((first[0], first[2]), (now, failed)), "window": span}
