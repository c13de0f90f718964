"""Rolling restart with new code: ``resquectl restart [POOL...]``, and HUP
under ``on_hup: restart`` (resque-pool's HUP).

A reload re-reads pool.yml but cannot load new code: the spawner, which
every worker is forked from, imported the job modules (and resqued) when it
started. A restart first imports the job modules from disk in a throwaway
interpreter (codeprobe.probe): code that cannot even import is refused before
any worker is touched. Then a second spawner is started, a fresh interpreter
that imports resqued and the job modules anew; the first goes on forking until the second says it is
ready (if it dies first, the restart fails and nothing changed). Then each
pool is replaced gradually: one worker more than its count is started, and
each time a new worker reports for work, one old worker is told to QUIT (it
finishes its job). A pool never has fewer than ``count`` workers taking
jobs, so never fewer than ``count - 1`` serving while one is starting. A
pool that turns FAILED (its new workers die at boot) ends the restart with
its reason; its old workers keep running. So an upgrade of resqued on disk
reaches the workers too; the master process itself (the arbiter, the control
socket) keeps the code it started with until it is restarted.

``RollingRestart`` is owned by the master (``master.restart``); its own
state is the current generation, the new spawner until it is ready and, per
pool, the old workers still to retire. It decides, the master acts (as with
reconcile.plan): ``step`` reads a RestartView (plain values) and returns a
RestartStep (the spawner to switch to, the workers to retire); the master
applies it, then hands each pool's part back to ``announce`` for its log
line, so the lines come in the order they always did.
"""

import logging
from dataclasses import dataclass
from typing import NamedTuple

from resqued.master.codeprobe import probe
from resqued.master.spawnerlink import Spawner

log = logging.getLogger("resqued.master")

REPLACED = "restart: replaced by a worker running the new code"


# -- what a step reads ---------------------------------------------------------

class RestartWorker(NamedTuple):   # a tuple: one per worker at each turn of a restart
    pid: int
    pool: str                 # its pool's name
    started: float            # time.monotonic at its start
    ready: bool = True        # it has reported for work
    stopping: bool = False
    generation: int = 0       # the restarts before its start


@dataclass(frozen=True)
class RestartPool:
    name: str
    failed: bool = False
    reason: str = ""          # why it is FAILED


@dataclass(frozen=True)
class RestartView:
    workers: tuple = ()       # RestartWorkers
    pools: tuple = ()         # RestartPools: the config's, now

    @classmethod
    def of(cls, children, supervision: dict) -> "RestartView":
        """From the master's workers (workerprocess.Child) and its pools'
        supervision records (name -> PoolSupervision)."""
        return cls(tuple(RestartWorker(c.pid, c.pool.name, c.started, c.ready, c.stopping, c.generation)
                         for c in children),
                   tuple(RestartPool(name, record.failed, record.reason) for name, record in supervision.items()))


# -- what to do ----------------------------------------------------------------

class PoolStep(NamedTuple):
    pool: str
    retire: tuple = ()        # pids of its old workers to tell QUIT now (reason: REPLACED)
    done: bool = False        # it has no old worker left to retire
    failed: str | None = None  # the restart stopped for it: why


@dataclass(frozen=True)
class RestartStep:
    switch_to: Spawner | None = None   # the new spawner is ready: it replaces the master's
    pools: tuple = ()                  # PoolSteps, applied in this order

    @property
    def retire(self) -> tuple:
        return tuple(pid for part in self.pools for pid in part.retire)


class RollingRestart:
    def __init__(self, name: str):
        self.name = name                       # the config file's: the new spawner's title
        self.generation = 0                    # of the workers started from now on
        self.spawner = None                    # the new spawner, until it has said it is ready
        self.chosen: set[str] = set()          # the pools being restarted
        self.old: dict[str, set[int]] = {}     # pool name -> old workers not yet retired
        self.retired: dict[str, int] = {}      # pool name -> old workers retired in this restart
        self.error = None                      # why the last restart ended unfinished

    @property
    def active(self) -> bool:
        return self.spawner is not None or bool(self.old)

    def start(self, config, pools=None) -> str | None:
        """Begin replacing the workers of ``pools`` (names; all when empty).
        Returns None, or why the restart was refused (nothing touched). Once
        begun, the master clears the FAILED of the ``chosen`` pools: the
        code imports now, they may start again."""
        names = [p.name for p in config.pools]
        unknown = [name for name in pools or () if name not in names]
        if unknown:
            return f"no pool {', '.join(unknown)} (pools: {', '.join(names) or 'none'})"
        if self.active:
            return "a restart is already under way"
        error = probe(config)
        if error:
            log.error("restart refused, the workers keep the code they run: %s: %s", config.path, error)
            return f"restart refused, the workers keep the code they run: {config.path}: {error}"
        # A second spawner imports the code anew; the first goes on forking
        # until the second has proved it can start (it says R). Kept only
        # once started: exec can fail (the interpreter gone), and a restart
        # left half begun would refuse every later one.
        spawner = Spawner(self.name)
        try:
            spawner.start()
        except OSError as exc:
            return f"cannot restart: cannot start a new spawner ({exc})"
        self.chosen, self.error, self.spawner = set(pools or names), None, spawner
        log.info("restarting %s with the code on disk: a new spawner %d first",
                 ", ".join(sorted(self.chosen)) or "no pools", self.spawner.pid)
        return None

    # -- as a HelperProcess (helperprocess.py): the new spawner, until it is ready
    def waitables(self) -> list:
        return self.spawner.waitables() if self.spawner is not None else []

    def on_readable(self, waitable) -> None:
        self.spawner.read_ready()

    def deadline(self):
        return None  # it says it is ready, or dies: both wake the loop

    def owns(self, pid: int) -> bool:
        return self.spawner is not None and pid == self.spawner.pid

    def on_exit(self, pid: int, code: int, how: str) -> None:
        self.spawner_died(how)

    def spawner_died(self, how: str) -> None:
        """The new spawner died before it was ready: keep the old one."""
        self.spawner.reaped()
        self.spawner = None
        self.error = f"restart failed: the new spawner (the new code) died before it was ready ({how})"
        log.error("%s; the workers keep the code they run", self.error)

    def abandon(self) -> None:
        """The master is leaving: a new spawner not yet switched to goes too."""
        if self.spawner is not None:
            self.spawner.stop()
            self.spawner = None

    def surge(self, pool_name: str) -> int:
        """Workers a pool may have beyond its count now: one while old ones remain."""
        return 1 if self.old.get(pool_name) else 0

    def step(self, view: RestartView) -> RestartStep:
        """Switch to the new spawner once it is ready; then retire one old
        worker for each new one that has reported for work. Returns what
        the master does now; this records it as done."""
        switch_to = None
        if self.spawner is not None:
            if not self.spawner.ready:
                return RestartStep()
            switch_to, self.spawner = self.spawner, None
            self.generation += 1
            for worker in view.workers:
                if worker.pool in self.chosen and not worker.stopping:
                    self.old.setdefault(worker.pool, set()).add(worker.pid)
            self.retired = {name: 0 for name in self.old}
            log.info("new spawner %d ready: replacing %d workers, one at a time",
                     switch_to.pid, sum(len(o) for o in self.old.values()))
        return RestartStep(switch_to, tuple(self._pool_step(name, view) for name in list(self.old)))

    def _pool_step(self, name: str, view: RestartView) -> PoolStep:
        pool = next((p for p in view.pools if p.name == name), None)
        if pool is None or pool.failed:
            # Removed by a reload, or its new workers keep dying at boot.
            del self.old[name]
            if pool is None:
                return PoolStep(name)
            self.error = f"restart stopped: pool {name} FAILED: {pool.reason}"
            return PoolStep(name, failed=self.error)
        live = {w.pid: w for w in view.workers if w.pool == name and not w.stopping}
        old = {pid for pid in self.old[name] if pid in live}
        fresh = sum(1 for w in live.values() if w.ready and w.generation == self.generation)
        retire = []
        while old and fresh > self.retired[name]:
            pid = min(old, key=lambda p: live[p].started)
            old.discard(pid)
            self.retired[name] += 1
            retire.append(pid)
        if old:
            self.old[name] = old
        else:
            del self.old[name]
        return PoolStep(name, tuple(retire), done=not old)

    @staticmethod
    def announce(part: PoolStep) -> None:
        """The master has applied ``part`` (retired its workers): say what became of the pool."""
        if part.failed:
            log.error("%s; its old workers keep running", part.failed)
        elif part.done:
            log.info("pool %s restarted: its old workers finish their jobs, new ones run the new code", part.pool)
