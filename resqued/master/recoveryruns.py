"""The master's dead workers whose reserved jobs are still to be recovered,
and the recovery runs that recover them.

The master does not talk to Redis (it does not even import redis-py: see
spawnerlink.py), so each batch is recovered by a short-lived process that the
spawner forks and the master reaps: exit 0 when every job was recovered, 75
(EX_TEMPFAIL) when Redis was unavailable. A batch that did not finish is
tried again a second later; recovering a worker twice is harmless (one Lua
call takes each job out of its in-flight list, see recovery.py). A hung or
absent Redis never stalls the master's loop: it only waits for an exit. The
run itself is spawner/entrypoints.recovery_main.
"""

import logging
import os
import signal
import time

from resqued.exits import EX_TEMPFAIL, EXIT_OK
from resqued.master.spawnerlink import SpawnerError
from resqued.supervise.backoff import Backoff
from resqued.process.logs import event


log = logging.getLogger("resqued.master")

RETRY = 1.0     # while Redis is away, or the spawner cannot fork: a poll, not a backoff


class RecoveryRuns:
    def __init__(self, tally=None):
        """``tally``: a metricstally.Tally, where the jobs settled are counted lost."""
        self.tally = tally
        # (worker id, why, children.recovery_settings, (queue, class) of the job it ran, or None)
        self.pending: list[tuple[str, str, dict, tuple | None]] = []
        self.running = None                              # (pid, batch)
        self.retry_at = 0.0
        self._down = False       # Redis unavailable, already said
        self._crashes = Backoff(first=RETRY)   # runs that crashed in a row

    def __bool__(self) -> bool:
        return bool(self.pending or self.running)

    def add(self, worker_id: str, why: str, settings: dict, job: dict | None = None) -> None:
        """``settings``: the Redis (and on_lost, max_lost) the worker ran with;
        ``job``: the job its last report said it ran ({"class", "queue", ...})."""
        self.pending.append((worker_id, why, settings, job and (str(job.get("queue")), str(job.get("class")))))

    # -- as a HelperProcess (helperprocess.py) --------------------------
    def waitables(self) -> list:
        return []  # a run only exits: the master's SIGCHLD wakes it

    def on_readable(self, waitable) -> None:
        pass

    def deadline(self):
        """When the master's loop must wake up for us, or None."""
        return self.retry_at if self.pending and not self.running else None

    def start_due(self, spawner) -> None:
        if self.running or not self.pending or not spawner.ready or time.monotonic() < self.retry_at:
            return
        # One run per Redis: workers started before a reload may use another.
        settings = self.pending[0][2]
        batch = [entry for entry in self.pending if entry[2] == settings]
        spec = {**settings, "workers": [entry[:2] for entry in batch], "down": self._down,
                "master_pid": os.getpid(), "title": spawner.title.replace("spawner", "recovery", 1)}
        try:
            pid = spawner.spawn_recovery(spec)
        except SpawnerError as exc:
            log.error("cannot start recovering the jobs of %d dead workers: %s", len(self.pending), exc,
                      extra=event("recovery_start_failed", error=str(exc)))
            self.retry_at = time.monotonic() + RETRY
            return
        self.running = (pid, batch)
        self.pending = [entry for entry in self.pending if entry[2] != settings]

    def owns(self, pid: int) -> bool:
        return self.running is not None and self.running[0] == pid

    def on_exit(self, pid: int, code: int, how: str) -> None:
        """The master reaped the recovery run, which exited with ``code``."""
        pid, batch = self.running
        self.running = None
        if code == EXIT_OK:
            self._down = False
            self._crashes.succeeded()
            for *_, job in batch if self.tally is not None else ():
                if job is not None:
                    self.tally.lost(*job)   # settled: requeued or failed, by on_lost and max_lost
            return
        self.pending[:0] = batch
        if code == EX_TEMPFAIL:
            self._down = True   # the run said so, once
            self.retry_at = time.monotonic() + RETRY
            return
        delay = self._crashes.failed()
        self.retry_at = self._crashes.until
        log.error("the recovery run %d failed (exit %d); trying again in %.0fs", pid, code, delay,
                  extra=event("recovery_failed", exit_code=code))

    def give_up(self) -> None:
        if self.running:
            pid, batch = self.running
            self.pending[:0] = batch
            self.running = None
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        log.error("giving up on recovering %d dead workers' jobs: they stay in their in-flight "
                  "lists, and the next worker that prunes recovers them", len(self.pending),
                  extra=event("recovery_gave_up"))
        self.pending.clear()
