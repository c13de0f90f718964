"""The worker: reserve a job, fork a child to run it, record the outcome.

One process, one loop (``work``). Signal handlers only record; the loop
dispatches them between steps, and every wait (BLPOP, waiting for the job
child, backing off while Redis is away) ends as soon as a signal arrives.

The job child reports its outcome to the worker through a pipe and exits; the
worker records everything in one Redis pipeline. A child that dies without
reporting (SIGKILL, OOM, ``os._exit``) is a dirty exit and is recorded as a
failure — never counted as done.

Signals (Resque's meanings):
  QUIT        finish the current job, then exit
  TERM, INT   kill the current job (TERM, then KILL after term_timeout), then exit
  USR1        kill the current job, keep working
  USR2, CONT  pause (take no new jobs) / resume
"""

import json
import logging
import os
import random
import signal
import socket
import sys
import time

import redis

from . import events, wire
from .job import Job, backtrace, exception_name, perform
from .outcome import DIRTY_EXIT, INVALID_PAYLOAD, UNKNOWN_JOB, Failure, add_outcome
from .proctitle import set_title, stamp
from .registration import HEARTBEAT_INTERVAL, Registration
from .registry import UnknownJob
from .reserve import Reserver
from .signals import SignalQueue, describe, wait_readable

log = logging.getLogger("resqued.worker")

HANDLED_SIGNALS = (signal.SIGQUIT, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1,
                   signal.SIGUSR2, signal.SIGCONT, signal.SIGCHLD)
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError)
MAX_BACKOFF = 5.0


class Worker:
    def __init__(self, resque, registry, queues, interval: float = 5.0,
                 heartbeat_interval: float = HEARTBEAT_INTERVAL, term_timeout: float = 4.0,
                 parent_pid: int | None = None):
        """``parent_pid``: when set (a worker run by a master), the worker stops
        after its current job once its parent is no longer that process."""
        self.resque = resque
        self.keys = resque.keys
        self.redis = resque.redis
        self.registry = registry
        self.queues = list(queues)
        self.interval = interval
        self.term_timeout = term_timeout
        self.parent_pid = parent_pid
        self.hostname = socket.gethostname()
        self.pid = os.getpid()
        self.id = f"{self.hostname}:{self.pid}:{','.join(self.queues)}"
        self.signals = SignalQueue(HANDLED_SIGNALS)
        self.registration = Registration(self.redis, self.keys, self.id, self.hostname, heartbeat_interval)
        self.reserver = Reserver(self.redis, self.keys, self.signals)
        self.shutdown = False
        self.paused = False
        self.jobs_done = 0
        self._child = None          # pid of the running job child
        self._kill_at = None        # monotonic time to SIGKILL the child
        self._outage_since = None
        self._title = None

    # -- main loop ---------------------------------------------------------
    def work(self) -> int:
        self.signals.install()
        log.info("worker %s starting", self.id)
        self._redis(self.registration.register, until_shutdown=True)
        if self.shutdown:
            return 0
        events.trigger("beforeFirstFork", self)
        try:
            while True:
                self._dispatch_signals()
                if self.shutdown or self._orphaned():
                    break
                if self.paused or self._redis(self._paused_by_key, until_shutdown=True):
                    self._title_once("Paused")
                    self._idle_wait(self.interval or 1.0)
                    continue
                queues = self._redis(self._current_queues, until_shutdown=True)
                if queues is None:
                    continue
                self._title_once(f"Waiting for {','.join(self.queues)}")
                reserved = self._redis(lambda: self.reserver.pop(queues, self._wait_time()), until_shutdown=True)
                if reserved is None:
                    self._beat_if_due()
                    continue
                self._process(*reserved)
                self._beat_if_due()
        finally:
            self._redis(self.registration.unregister, until_shutdown=True)
            self.reserver.close()
            log.info("worker %s stopped after %d jobs", self.id, self.jobs_done)
        return 0

    def _wait_time(self) -> float:
        wait = self.interval if self.interval > 0 else HEARTBEAT_INTERVAL
        return max(0.01, min(wait, self.registration.heartbeat_due_in() or 0.01))

    def _current_queues(self) -> list[str]:
        if "*" not in self.queues:
            return self.queues
        # "*" is every queue, alphabetically, re-read before each reservation
        # so that new queues are picked up.
        known = sorted(q.decode() for q in self.redis.smembers(self.keys.queues))
        explicit = [q for q in self.queues if q != "*"]
        return explicit + [q for q in known if q not in explicit]

    def _paused_by_key(self) -> bool:
        # Ruby Resque's global pause switch, set by resque-web users.
        value = self.redis.get(self.keys.pause_all)
        return value is not None and value.strip().lower() == b"true"

    def _orphaned(self) -> bool:
        if self.parent_pid is not None and os.getppid() != self.parent_pid:
            log.warning("worker %s: master %d is gone; stopping", self.id, self.parent_pid)
            return True
        return False

    def _title_once(self, text: str) -> None:
        if text != self._title:
            set_title(text)
            self._title = text

    def _idle_wait(self, seconds: float) -> None:
        if not self.signals.has_pending():
            wait_readable([self.signals], min(seconds, self.registration.heartbeat_due_in() or seconds))
        self._beat_if_due()

    def _beat_if_due(self) -> None:
        if self.registration.heartbeat_due_in() <= 0:
            try:
                self.registration.heartbeat()
            except REDIS_ERRORS as exc:
                self._note_outage(exc)

    # -- signals -----------------------------------------------------------
    def _dispatch_signals(self) -> None:
        for signum in self.signals.drain():
            if signum == signal.SIGCHLD:
                continue  # only wakes the wait for the job child
            log.info("worker %s received %s", self.id, describe(signum))
            if signum == signal.SIGQUIT:
                self.shutdown = True
            elif signum in (signal.SIGTERM, signal.SIGINT):
                self.shutdown = True
                self._kill_child()
            elif signum == signal.SIGUSR1:
                self._kill_child()
            elif signum == signal.SIGUSR2:
                self.paused = True
            elif signum == signal.SIGCONT:
                self.paused = False

    def _kill_child(self) -> None:
        if self._child is None or self._kill_at is not None:
            return
        log.warning("worker %s: killing job child %d", self.id, self._child)
        _signal_group(self._child, signal.SIGTERM)
        self._kill_at = time.monotonic() + self.term_timeout

    # -- Redis outages -----------------------------------------------------
    def _redis(self, action, until_shutdown: bool = False):
        """Run ``action``, retrying with backoff while Redis is unreachable.
        With ``until_shutdown``, give up (return None) once a stop is asked."""
        delay = 0.1
        while True:
            try:
                result = action()
            except REDIS_ERRORS as exc:
                self._note_outage(exc)
                self._idle_wait(delay)
                self._dispatch_signals()
                if until_shutdown and self.shutdown:
                    return None
                delay = min(delay * 2, MAX_BACKOFF)
                continue
            if self._outage_since is not None:
                self._end_outage()
            return result

    def _note_outage(self, exc) -> None:
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            log.error("worker %s: Redis unavailable (%s); retrying", self.id, exc)

    def _end_outage(self) -> None:
        log.warning("worker %s: Redis is back after %.1fs", self.id, time.monotonic() - self._outage_since)
        self._outage_since = None
        # A Redis restarted without persistence forgot us: register again.
        try:
            self.registration.register()
        except REDIS_ERRORS as exc:
            self._note_outage(exc)

    # -- one job -----------------------------------------------------------
    def _process(self, queue: str, raw: bytes) -> None:
        try:
            payload = wire.decode_payload(raw)
        except wire.InvalidPayload as exc:
            log.error("worker %s: bad item on queue %s: %s", self.id, queue, exc)
            self._record(queue, wire.raw_payload_record(raw), Failure(INVALID_PAYLOAD, str(exc)))
            return
        job = Job(queue, payload, raw, self.id)
        try:
            target = self.registry.resolve(job.job_class)
        except UnknownJob as exc:
            log.error("worker %s: job %s refused: %s", self.id, job.id, exc)
            self._record(queue, payload, Failure(UNKNOWN_JOB, str(exc)))
            return
        self._redis(lambda: self._mark_running(job))
        started = time.monotonic()
        failure, skipped = self._run_in_child(job, target)
        elapsed = (time.monotonic() - started) * 1000
        if failure is None:
            log.info("job %s %s on %s %s in %.0f ms", job.id, job.job_class, queue,
                     "skipped" if skipped else "done", elapsed)
        else:
            log.warning("job %s %s on %s failed in %.0f ms: %s: %s", job.id, job.job_class, queue,
                        elapsed, failure.exception, failure.error)
        self._record(queue, payload, failure)

    def _mark_running(self, job: Job) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(self.keys.worker(self.id), wire.working_on(job.queue, job.payload))
        if job.id:
            pipe.set(self.keys.status(job.id), wire.status_record(wire.STATUS_RUNNING), xx=True)
        pipe.execute()

    def _record(self, queue: str, payload, failure: Failure | None) -> None:
        def commands():
            pipe = self.redis.pipeline(transaction=False)
            add_outcome(pipe, self.keys, self.id, queue, payload, failure)
            pipe.delete(self.keys.worker(self.id))
            pipe.execute()
        # An outcome is never dropped: keep trying until Redis takes it.
        self._redis(commands)
        self.jobs_done += 1

    def _run_in_child(self, job: Job, target):
        """Fork, run the job in the child, wait for it. Returns (failure, skipped)."""
        try:
            events.trigger("beforeFork", job)
        except Exception as exc:
            return Failure(exception_name(exc), f"beforeFork hook failed: {exc}", backtrace(exc)), False
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            self._child_main(job, target, write_fd)  # never returns
        os.close(write_fd)
        try:
            os.setpgid(pid, pid)  # also done by the child; whichever runs first wins
        except OSError:
            pass
        self._child, self._kill_at = pid, None
        self._title_once(f"Forked {pid} at {stamp()}")
        log.debug("worker %s forked %d for job %s", self.id, pid, job.id)
        try:
            status, report = self._wait_for_child(pid, read_fd)
        finally:
            os.close(read_fd)
            self._child = self._kill_at = None
        return self._interpret(job, pid, status, report)

    def _wait_for_child(self, pid: int, read_fd: int):
        report = bytearray()
        pipe_open = True
        while True:
            waits = [self.signals] + ([read_fd] if pipe_open else [])
            timeout = self.registration.heartbeat_due_in()
            if self._kill_at is not None:
                timeout = min(timeout, max(0.0, self._kill_at - time.monotonic()))
            if not self.signals.has_pending():
                ready = wait_readable(waits, max(timeout, 0.01))
                if read_fd in ready:
                    chunk = os.read(read_fd, 65536)
                    report += chunk
                    pipe_open = bool(chunk)
            self._dispatch_signals()
            reaped, status = os.waitpid(pid, os.WNOHANG)
            if reaped:
                report += _read_rest(read_fd) if pipe_open else b""
                return status, bytes(report)
            if self._kill_at is not None and time.monotonic() >= self._kill_at:
                _signal_group(pid, signal.SIGKILL)
            self._beat_if_due()

    def _interpret(self, job: Job, pid: int, status: int, report: bytes):
        if report:
            try:
                result = json.loads(report)
                if result.get("ok"):
                    return None, bool(result.get("skipped"))
                return Failure(result["exception"], result["error"], result.get("backtrace")), False
            except (ValueError, KeyError, TypeError, AttributeError):
                pass
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            error = f"Child process received unhandled signal pid {pid} {describe(sig)} (signal {sig})"
        else:
            code = os.waitstatus_to_exitcode(status)
            error = f"Job exited with exit code {code} without reporting an outcome"
        failure = Failure(DIRTY_EXIT, error)
        try:
            events.trigger("onFailure", DirtyExit(error), job)
        except Exception:
            log.exception("onFailure listener raised")
        return failure, False

    # -- the job child -----------------------------------------------------
    def _child_main(self, job: Job, target, write_fd: int):
        exit_code = 1
        try:
            try:
                os.setpgid(0, 0)
            except OSError:
                pass
            self.signals.reset_in_child()
            random.seed()
            set_title(f"Processing {job.queue} since {stamp()} [{job.job_class}]")
            try:
                events.trigger("afterFork", job)
                performed = perform(job, target)
                result = {"ok": True, "skipped": not performed}
            except BaseException as exc:  # SystemExit and KeyboardInterrupt fail the job too
                result = {"ok": False, "exception": exception_name(exc), "error": str(exc),
                          "backtrace": backtrace(exc)}
                try:
                    events.trigger("onFailure", exc, job)
                except BaseException:
                    log.exception("onFailure listener raised")
            data = json.dumps(result).encode()
            while data:
                data = data[os.write(write_fd, data):]
            exit_code = 0
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:
                    pass
            os._exit(exit_code)


class DirtyExit(Exception):
    """Given to onFailure listeners when a job child died without reporting."""


def _signal_group(pid: int, signum: int) -> None:
    # The child leads its own process group, so the job's own subprocesses go too.
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def _read_rest(fd: int) -> bytes:
    os.set_blocking(fd, False)
    chunks = []
    try:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    except BlockingIOError:
        pass
    return b"".join(chunks)
