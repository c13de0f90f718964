"""Keeping COUNT workers alive in php-resque's environment mode.

php-resque's launcher forks COUNT workers and exits, orphaning them (its issue
#294): nothing restarts a dead worker and no signal reaches them all. Here the
launching process stays as their parent: it replaces workers that die (backing
off when one dies at boot again and again), relays signals, and exits once
every worker has stopped. Workers stop by themselves if it dies. Like the
master, it recovers the in-flight job of a worker that died without
unregistering at once (``lost``), instead of leaving it to the next prune.
"""

import logging
import os
import signal
import time

from resqued.process.title import set_raw_title
from resqued.supervise.lostworkers import LostWorkers
from resqued.worker.recycle import CLEAN_EXITS
from resqued.process.signals import SignalQueue, blocked_for_fork, describe, exit_on_parent_death, wait_readable

log = logging.getLogger("resqued.master")

RELAYED = (signal.SIGQUIT, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCONT)
STOPPING = (signal.SIGQUIT, signal.SIGTERM, signal.SIGINT)
# A worker that exits sooner than this after its start counts as a failed boot.
QUICK_DEATH = 2.0
MAX_BACKOFF = 30.0
STOP_RECOVERY_TIMEOUT = 5.0


class Supervisor:
    def __init__(self, count: int, run_worker, name: str = "env", recovery=None):
        """``run_worker(parent_pid)`` runs a worker in a freshly forked child and
        returns its exit code. ``recovery``: (settings with redis_url,
        namespace, on_lost and max_lost; worker_id(pid)), to recover the jobs
        of workers that die."""
        self.lost_settings, self.worker_id = recovery or (None, None)
        self.lost = LostWorkers() if recovery else None
        self.count = count
        self.run_worker = run_worker
        self.name = name
        self.signals = SignalQueue(RELAYED + (signal.SIGCHLD,))
        self.workers: dict[int, float] = {}   # pid -> start time
        self.stopping = False
        self.failures = 0
        self.next_spawn = 0.0

    def run(self) -> int:
        self.signals.install()
        while True:
            for signum in self.signals.drain():
                self._handle(signum)
            self._reap()
            if self.lost is not None:
                self.lost.recover(self.lost_settings)
            if self.stopping and not self.workers:
                self._last_recovery()
                log.info("all workers stopped")
                return 0
            if not self.stopping:
                self._spawn_missing()
            self._title()
            if not self.signals.has_pending():
                wait_readable([self.signals], max(0.01, min(1.0, self.next_spawn - time.monotonic()))
                              if len(self.workers) < self.count else 1.0)

    def _last_recovery(self) -> None:
        # Redis may be away: try for a few seconds, then leave the jobs in
        # their in-flight lists for the next worker's prune.
        deadline = time.monotonic() + STOP_RECOVERY_TIMEOUT
        while self.lost and not self.lost.recover(self.lost_settings):
            if time.monotonic() >= deadline:
                self.lost.give_up()
                return
            time.sleep(max(0.05, min(1.0, self.lost.retry_at - time.monotonic())))

    def _handle(self, signum: int) -> None:
        if signum == signal.SIGCHLD:
            return
        log.info("supervisor received %s; relaying to %d workers", describe(signum), len(self.workers))
        if signum in STOPPING:
            self.stopping = True
        for pid in self.workers:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def _reap(self) -> None:
        while self.workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.workers.clear()
                return
            if pid == 0:
                return
            started = self.workers.pop(pid, None)
            if started is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            how = f"exit code {code}" if code >= 0 else f"signal {describe(-code)}"
            if self.lost is not None and code not in CLEAN_EXITS:
                # It did not unregister: its in-flight job, if any, must be recovered.
                worker_id = self.worker_id(pid)
                self.lost.add(worker_id, f"worker {worker_id} died ({how}) while processing it")
            if self.stopping:
                log.info("worker %d stopped (%s)", pid, how)
                continue
            lived = time.monotonic() - started
            log.warning("worker %d died (%s) after %.1fs; replacing it", pid, how, lived)
            if lived < QUICK_DEATH:
                self.failures += 1
                delay = min(0.1 * 2 ** self.failures, MAX_BACKOFF)
                self.next_spawn = time.monotonic() + delay
                log.warning("workers are dying at boot; next start in %.1fs", delay)
            else:
                self.failures = 0

    def _spawn_missing(self) -> None:
        while len(self.workers) < self.count and time.monotonic() >= self.next_spawn:
            parent = os.getpid()
            with blocked_for_fork():
                pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    self.signals.reset_in_child()
                    exit_on_parent_death()
                    code = self.run_worker(parent)
                except BaseException:
                    log.exception("worker crashed")
                finally:
                    os._exit(code)
            self.workers[pid] = time.monotonic()

    def _title(self) -> None:
        state = "stopping" if self.stopping else f"managing {len(self.workers)} workers"
        set_raw_title(f"resqued-master[{self.name}]: {state}")
