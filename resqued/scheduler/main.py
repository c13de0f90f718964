"""``python -m resqued.scheduler --redis URL --namespace NS``: the process.

Its command line is its whole interface: a supervisor (the master's helper
process, systemd, supervisord) only starts it, stops it with TERM or INT,
and restarts it if it dies. Many may run: one holds the master lock and
moves, the others stand by and take over within the lock's TTL.

When jobs fall due: the process sleeps until the earliest timestamp in the
schedule, but never longer than ``--poll`` (50 ms), at which it looks at
the earliest again (one ZRANGE). The short poll, rather than a notification
that resqued's enqueue_at would send, is what also sees a new earlier
timestamp written by Ruby or PHP, which send none; at 20 cheap reads a
second it costs less than keeping two ways in step.

Recurring jobs (``--schedule pool.yml``, its ``schedule:`` section) are
enqueued by the lock holder too (recurring.py); HUP re-reads the file, and
a bad new schedule is refused in one log line, the old one kept.
"""

import argparse
import logging
import math
import os
import select
import signal
import sys
import time

import redis

from resqued.config.loader import load_config
from resqued.config.model import ConfigError
from resqued.config.redisurl import BadRedisURL, normalize_url, redact
from resqued.exits import EX_CONFIG, EXIT_OK, EXIT_USAGE
from resqued.process import logs
from resqued.process.signals import SignalQueue, exit_on_parent_death
from resqued.process.title import set_raw_title
from resqued.redisio.connection import connect
from resqued.resque.delayedmove import BATCH, Mover, WrongType
from resqued.resque.keys import Keys
from resqued.scheduler.lock import DEFAULT_TIMEOUT, MasterLock
from resqued.scheduler.recurring import CATCH_UP_SLACK, Recurring

log = logging.getLogger("resqued.scheduler")

POLL = 0.05
TITLE = "resqued-scheduler"
OUTAGE_PAUSE = 1.0


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not 0 < value < math.inf:
            raise argparse.ArgumentTypeError(f"must be above 0: {text!r}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m resqued.scheduler",
                                     description="Move delayed jobs to their queues when they fall due.")
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument("--redis", metavar="URL", help="Redis URL or host:port")
    given.add_argument("--redis-fd", type=int, metavar="FD",
                       help="read the Redis URL from this descriptor (resqued's master passes it so: "
                            "a password on the command line would show in ps)")
    parser.add_argument("--namespace", metavar="NS", default="resque", help="key namespace (default resque)")
    parser.add_argument("--title", default=TITLE,
                        help=f"process title, before ': active' (default {TITLE}; the master's names its pool.yml)")
    parser.add_argument("--poll", type=_positive(float), default=POLL, metavar="SECONDS",
                        help=f"longest sleep between looks at the earliest timestamp (default {POLL})")
    parser.add_argument("--lock-timeout", type=_positive(int), default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help="the master lock's TTL, resque-scheduler's LOCK_TIMEOUT "
                             f"(default {DEFAULT_TIMEOUT}): a dead holder is replaced within it")
    parser.add_argument("--lock-value", metavar="HOST:PID",
                        help="the master lock's value (default this host:this pid); resqued's master passes "
                             "its own, so that the scheduler it restarts holds the lock its dead one held")
    parser.add_argument("--master-pid", type=int, metavar="PID",
                        help="stop (as on TERM) when this process, our parent, dies: resqued's master passes its own")
    parser.add_argument("--batch", type=_positive(int), default=BATCH, metavar="N",
                        help=f"jobs moved per atomic step (default {BATCH})")
    parser.add_argument("--schedule", metavar="POOL_YML",
                        help="enqueue the recurring jobs of this file's schedule: section (HUP re-reads it)")
    logs.add_exec_arguments(parser)
    return parser


class Scheduler:
    def __init__(self, client, keys, poll: float, lock_timeout: int, batch: int, schedule_path=None,
                 title: str = TITLE, lock_value: str | None = None):
        self.client = client
        self.title = title
        self.lock = MasterLock(client, keys, lock_timeout, lock_value)
        self.mover = Mover(client, keys, owner=f"{self.lock.value}:scheduler", batch=batch)
        self.poll = poll
        # Renew well inside the TTL; a standby tries often enough to take over soon after it expires.
        self.renew_every = min(1.0, lock_timeout / 3)
        self.retry_every = min(0.5, lock_timeout / 4)
        self.signals = SignalQueue([signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
        self.schedule_path = schedule_path
        self.recurring = None
        if schedule_path:
            self.recurring = Recurring(client, keys, load_schedule(schedule_path),
                                       catch_up=lock_timeout + CATCH_UP_SLACK)
        self.active = None
        self._next_lock_check = 0.0
        self._outage = None    # the last Redis error, until a look succeeds

    def run(self) -> int:
        self.signals.install()
        set_raw_title(f"{self.title}: starting")
        try:
            while True:
                if self.signals.has_pending():
                    received = self.signals.drain()
                    if signal.SIGHUP in received:
                        self.reload()
                    stops = [s for s in received if s != signal.SIGHUP]
                    if stops:
                        log.info("stopping (%s)", ", ".join(signal.Signals(s).name for s in stops))
                        break
                try:
                    wait = self.step()
                    if self._outage:
                        log.warning("delayed jobs move again")
                        self._outage = None
                except (redis.RedisError, WrongType) as exc:
                    # Unreachable, or refusing (a replica, out of memory), or
                    # the schedule is not a sorted set: said once, tried again.
                    problem = (f"{exc.key} is not a sorted set: no delayed job moves until it is"
                               if isinstance(exc, WrongType) else f"Redis error: {exc}")
                    if self._outage != problem:
                        log.error("%s (trying again every %gs)", problem, OUTAGE_PAUSE)
                        self._outage = problem
                    self._next_lock_check = 0.0     # is the lock still ours? first thing then
                    wait = OUTAGE_PAUSE
                if not self.signals.has_pending():
                    select.select([self.signals], [], [], max(wait, 0.0))
        finally:
            self._release()
        return EXIT_OK

    def step(self) -> float:
        """One look: take or renew the lock when due, move what is due;
        returns how long to sleep."""
        now = time.time()
        if now >= self._next_lock_check:
            self._set_active(self.lock.take())
            self._next_lock_check = now + (self.renew_every if self.active else self.retry_every)
        if not self.active:
            return self._next_lock_check - time.time()
        enqueued = self.recurring.enqueue_due(now, self.lock.value) if self.recurring else 0
        if enqueued is None:    # replaced while it slept past the TTL
            self._set_active(False)
            self._next_lock_check = 0.0
            return 0.0
        moved = self.mover.move_due(now, self.lock.value, self.signals.has_pending)
        if moved is None:   # replaced while it slept past the TTL
            self._set_active(False)
            self._next_lock_check = 0.0
            return 0.0
        if moved:
            log.info("moved %s to their queues", logs.counted(moved, "delayed job"))
        earliest = self.mover.next_due()
        if self.recurring:
            earliest = min(earliest or math.inf, self.recurring.due_at)
        if earliest is None:
            return self.poll
        return min(self.poll, earliest - time.time())

    def reload(self) -> None:
        if not self.schedule_path:
            log.info("HUP: no --schedule to re-read")
            return
        try:
            entries = load_schedule(self.schedule_path)
        except ConfigError as exc:
            log.error("schedule not reloaded, the old one kept: %s", exc)
            return
        self.recurring.load(entries)
        log.info("schedule reloaded: %s", logs.counted(len(entries), "recurring job"))

    def _set_active(self, active: bool) -> None:
        if active == self.active:
            return
        self.active = active
        if active:
            if self.recurring:
                self.recurring.wake()
            log.info("active: holding the master lock %s as %s", self.lock.names[0], self.lock.value)
            set_raw_title(f"{self.title}: active")
        else:
            log.info("standing by: the master lock is held by %s", self.lock.holder() or "nobody")
            set_raw_title(f"{self.title}: standing by")

    def _release(self) -> None:
        if not self.active:
            return
        try:
            self.lock.release()
        except redis.RedisError as exc:
            log.warning("could not release the master lock (it expires in %ss): %s", self.lock.timeout, exc)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.log_level = args.log_level or "info"    # started by hand: say what it does
    logs.apply_exec_arguments(args)
    if args.master_pid is not None:
        # A master killed outright (the OOM killer) leaves no scheduler behind
        # renewing its lock: the next master's would stand by for good.
        exit_on_parent_death(signal.SIGTERM)
        if os.getppid() != args.master_pid:
            return EXIT_OK   # it died before we asked
    try:
        url = normalize_url(args.redis if args.redis_fd is None else _read_url(args.redis_fd))
        client = connect(url)
    except BadRedisURL as exc:
        print(f"resqued scheduler: {exc}", file=sys.stderr)
        return EXIT_USAGE
    log.info("scheduler started on %s namespace %s", redact(url), Keys(args.namespace).namespace)
    try:
        try:
            scheduler = Scheduler(client, Keys(args.namespace), args.poll, args.lock_timeout, args.batch,
                                  args.schedule, args.title, args.lock_value)
        except ConfigError as exc:
            print(f"resqued scheduler: {exc}", file=sys.stderr)
            return EX_CONFIG
        return scheduler.run()
    finally:
        client.close()


def _read_url(fd: int) -> str:
    with os.fdopen(fd, "rb") as f:
        return f.read().decode().strip()


def load_schedule(path) -> tuple:
    """The recurring jobs of a pool.yml, checked as ``resqued --check`` checks it."""
    entries = load_config(path).schedule
    log.info("schedule %s: %s", path, logs.counted(len(entries), "recurring job"))
    return entries
