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

``RollingRestart(master)`` is owned by the master (``master.restart``); its
own state is the current generation and, per pool, the old workers still to
retire.
"""

import logging

from resqued.master.codeprobe import probe
from resqued.master.spawnerlink import Spawner

log = logging.getLogger("resqued.master")


class RollingRestart:
    def __init__(self, master):
        self.master = master
        self.generation = 0                    # of the workers started from now on
        self.spawner = None                    # the new spawner, until it has said it is ready
        self.chosen: set[str] = set()          # the pools being restarted
        self.old: dict[str, set[int]] = {}     # pool name -> old workers not yet retired
        self.retired: dict[str, int] = {}      # pool name -> old workers retired in this restart
        self.error = None                      # why the last restart ended unfinished

    @property
    def active(self) -> bool:
        return self.spawner is not None or bool(self.old)

    def start(self, pools=None) -> str | None:
        """Begin replacing the workers of ``pools`` (names; all when empty).
        Returns None, or why the restart was refused (nothing touched)."""
        master = self.master
        names = [p.name for p in master.config.pools]
        unknown = [name for name in pools or () if name not in names]
        if unknown:
            return f"no pool {', '.join(unknown)} (pools: {', '.join(names) or 'none'})"
        if self.active:
            return "a restart is already under way"
        error = probe(master.config)
        if error:
            log.error("restart refused, the workers keep the code they run: %s: %s", master.config.path, error)
            return f"restart refused, the workers keep the code they run: {master.config.path}: {error}"
        self.chosen, self.error = set(pools or names), None
        for name in self.chosen:   # the code imports now: a FAILED pool may start again
            master.pools[name].failed = False
            master.pools[name].backoff.succeeded()
        # A second spawner imports the code anew; the first goes on forking
        # until the second has proved it can start (it says R).
        self.spawner = Spawner(master.name)
        self.spawner.start()
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
        self.spawner._close()
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

    def step(self) -> None:
        """Switch to the new spawner once it is ready; then retire one old
        worker for each new one that has reported for work."""
        master = self.master
        if self.spawner is not None:
            if not self.spawner.ready:
                return
            master.spawner.stop()
            master.spawner, self.spawner = self.spawner, None
            self.generation += 1
            for child in master.children.values():
                if child.pool.name in self.chosen and not child.stopping:
                    self.old.setdefault(child.pool.name, set()).add(child.pid)
            self.retired = {name: 0 for name in self.old}
            log.info("new spawner %d ready: replacing %d workers, one at a time",
                     master.spawner.pid, sum(len(o) for o in self.old.values()))
        for name in list(self.old):
            pool = master.pools.get(name)
            if pool is None or pool.failed:
                # Removed by a reload, or its new workers keep dying at boot.
                del self.old[name]
                if pool is not None:
                    self.error = f"restart stopped: pool {name} FAILED: {pool.reason}"
                    log.error("%s; its old workers keep running", self.error)
                continue
            old = {pid for pid in self.old[name] if pid in master.children and not master.children[pid].stopping}
            fresh = sum(1 for c in master.children.values() if c.pool.name == name and c.ready
                        and not c.stopping and c.generation == self.generation)
            while old and fresh > self.retired[name]:
                pid = min(old, key=lambda p: master.children[p].started)
                old.discard(pid)
                self.retired[name] += 1
                master.retire([master.children[pid]], "restart: replaced by a worker running the new code")
            if old:
                self.old[name] = old
            else:
                del self.old[name]
                log.info("pool %s restarted: its old workers finish their jobs, new ones run the new code", name)
