"""Who is logged in, kept in this process only: each login gets its own
random session id (the cookie holds it, never the token), which expires,
and which logging out forgets at once; a restart logs everyone out.
Login attempts are counted per client address, so that a token cannot be
guessed at the speed of the network."""

import collections
import secrets
import threading
import time

SESSION_TTL = 12 * 3600.0   # a working day: then log in again
MAX_SESSIONS = 10_000       # a bound on what a login loop can make this keep
LOGIN_FAILURES = 5          # wrong tokens from one address ...
LOGIN_WINDOW = 60.0         # ... within this many seconds lock it out for the rest of them
MAX_ADDRESSES = 10_000


class Sessions:
    def __init__(self, ttl: float = SESSION_TTL):
        self.ttl = ttl
        self._expiry = {}   # session id -> monotonic deadline
        self._lock = threading.Lock()

    def create(self) -> str:
        sid = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            self._forget_expired(now)
            if len(self._expiry) >= MAX_SESSIONS:   # the oldest login goes first
                del self._expiry[min(self._expiry, key=self._expiry.get)]
            self._expiry[sid] = now + self.ttl
        return sid

    def valid(self, sid: str) -> bool:
        if not sid:
            return False
        with self._lock:
            deadline = self._expiry.get(sid)
            if deadline is not None and deadline <= time.monotonic():
                del self._expiry[sid]
                deadline = None
        return deadline is not None

    def drop(self, sid: str) -> None:
        with self._lock:
            self._expiry.pop(sid, None)

    def _forget_expired(self, now: float) -> None:
        for sid in [s for s, deadline in self._expiry.items() if deadline <= now]:
            del self._expiry[sid]


class LoginThrottle:
    """``LOGIN_FAILURES`` wrong tokens from one address within
    ``LOGIN_WINDOW`` seconds refuse its further attempts, right or wrong,
    until the oldest of them is that old."""

    def __init__(self, failures: int = LOGIN_FAILURES, window: float = LOGIN_WINDOW):
        self.failures = failures
        self.window = window
        self._seen = {}   # address -> deque of monotonic times of its wrong tokens
        self._lock = threading.Lock()

    def wait(self, address: str) -> float:
        """Seconds before ``address`` may try again; 0 when it may now."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(address, now) if address in self._seen else ()
            return self.window - (now - times[0]) if len(times) >= self.failures else 0.0

    def failed(self, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            if address not in self._seen and len(self._seen) >= MAX_ADDRESSES:
                self._seen.pop(next(iter(self._seen)))
            self._recent(address, now).append(now)

    def _recent(self, address: str, now: float):
        times = self._seen.setdefault(address, collections.deque())
        while times and now - times[0] >= self.window:
            times.popleft()
        return times
