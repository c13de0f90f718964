"""What one frame of ``resquectl top`` shows, read from Redis and from this
host's master: the figures of queuestats, the workers Redis has registered
(resqued's, php-resque's, Ruby's alike), this master's pools, and the
processed and failed rates, from the counters' change since the previous
frame (resque/rates.py, as the dashboard computes them). A frame is plain
data (what ``top --once --json`` prints); topview.py draws it.
"""

import time

import redis

from resqued.config.redisurl import redact
from resqued.ctl.locate import MasterError
from resqued.ctl.mastercommands import ask
from resqued.ctl.output import scrub
from resqued.protocols.controlsocket import Command
from resqued.resque import queuestats, wire
from resqued.resque.rates import rate  # the dashboard's too

# A master that does not answer its status at once is shown as none: a
# frame is not held up for it.
MASTER_TIMEOUT = 1.0
# Busy workers first (the longest-running on top), then paused, then idle.
STATE_ORDER = {"busy": 0, "paused": 1, "idle": 2}


class Sampler:
    """Reads frames, one per call, keeping the counters of the last one
    that reached Redis for the next one's rates."""

    def __init__(self, resque, heading: str, master_socket: str | None = None):
        self.resque = resque
        self.heading = heading
        self.master_socket = master_socket
        self.last = None   # (Redis time, processed, failed) of the last frame read

    def frame(self, strict: bool = False) -> dict:
        """One frame. Redis unreachable: a frame that says so (``redis_up``
        false, ``error``), or with ``strict`` the redis error raised."""
        frame = {"redis": self.heading, "time": wire.utc_iso(time.time()), "redis_up": True, "error": None}
        try:
            stats = queuestats.read(self.resque.redis, self.resque.keys)
            workers = self.resque.workers()
        except redis.RedisError as exc:
            if strict:
                raise
            reach = "cannot reach Redis" if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)) \
                else "Redis error"
            frame.update(redis_up=False, error=f"{reach} at {redact(self.resque.url)}: "
                                                f"{scrub(str(exc), self.resque.url)}")
        else:
            frame.update(self._figures(stats, workers))
        frame["master"] = self._master()
        return frame

    def _figures(self, stats, workers) -> dict:
        now = (stats.time, stats.processed, stats.failed)
        before, self.last = self.last, now
        return {
            "time": wire.utc_iso(stats.time),
            "processed": stats.processed, "failed": stats.failed,
            "processed_per_second": rate(before and before[:2], now[:2]),
            "failed_per_second": rate(before and (before[0], before[2]), (now[0], now[2])),
            "failures": stats.failures, "paused": stats.paused, "workers_registered": stats.workers,
            "queue_count": stats.queue_count,
            # Longest first; a tie by name, so that a still frame does not shuffle.
            "queues": [{"name": q.name, "length": q.length, "latency": _rounded(q.latency), "error": q.error}
                       for q in sorted(stats.queues, key=lambda q: (-q.length, q.name))],
            "workers": sorted((_worker(w, stats.time) for w in workers),
                              key=lambda w: (STATE_ORDER.get(w["state"], 3), -(w["for"] or 0), w["id"])),
        }

    def _master(self) -> dict | None:
        if self.master_socket is None:
            return None
        try:
            status = ask(self.master_socket, Command.STATUS, timeout=MASTER_TIMEOUT).status
        except MasterError:
            return None
        master = status.get("master") or {}
        return {"pid": master.get("pid"), "state": master.get("state"), "config": master.get("config"),
                "pools": [{"queues": p["queues"], "count": p["count"], "alive": p["alive"], "failed": p["failed"]}
                          for p in status.get("pools", [])]}


def _worker(worker: dict, now: float) -> dict:
    """A worker as Redis shows it (client.Resque.workers), with what it
    runs and for how long (busy: since it took its job; paused: since it
    paused; idle: unknown, Resque keeps no record of it)."""
    job = worker["job"] if isinstance(worker["job"], dict) else {}
    payload = job.get("payload") if isinstance(job.get("payload"), dict) else {}
    since = wire.parse_run_at(worker["since"])
    return {"id": worker["id"], "host": worker["host"], "pid": worker["pid"], "queues": worker["queues"],
            "state": worker["state"], "queue": job.get("queue"), "class": payload.get("class"),
            "for": None if since is None else _rounded(max(0.0, now - since))}


def _rounded(seconds):
    return None if seconds is None else round(seconds, 3)
