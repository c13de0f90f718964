"""Rolling restart with new code: ``resquectl restart [POOL...]``, and HUP
under ``on_hup: restart`` (resque-pool's HUP).

A reload re-reads pool.yml but cannot load new code: the spawner, which
every worker is forked from, imported the job modules (and resqued) when it
started. A restart first imports the code from disk in a throwaway child
(workerprocess.probe): code that cannot even import is refused before any
worker is touched. Then the spawner is replaced, so the workers it forks
from now on run the new code, and each pool is replaced gradually: one
worker more than its count is started, and each time a new worker reports
for work, one old worker is told to QUIT (it finishes its job). A pool
never has fewer than ``count`` workers taking jobs, so never fewer than
``count - 1`` serving while one is starting.

``RollingRestart(master)`` is owned by the master (``master.restart``); its
own state is the current generation and, per pool, the old workers still to
retire.
"""

import logging

from resqued.master.workerprocess import probe

log = logging.getLogger("resqued.master")


class RollingRestart:
    def __init__(self, master):
        self.master = master
        self.generation = 0                    # of the workers started from now on
        self.old: dict[str, set[int]] = {}     # pool name -> old workers not yet retired
        self.retired: dict[str, int] = {}      # pool name -> old workers retired in this restart

    @property
    def active(self) -> bool:
        return bool(self.old)

    def start(self, pools=None) -> str | None:
        """Begin replacing the workers of ``pools`` (names; all when empty).
        Returns None, or why the restart was refused (nothing touched)."""
        master = self.master
        names = [p.name for p in master.config.pools]
        unknown = [name for name in pools or () if name not in names]
        if unknown:
            return f"no pool {', '.join(unknown)} (pools: {', '.join(names) or 'none'})"
        error = probe(master.config)
        if error:
            log.error("restart refused, the workers keep the code they run: %s: %s", master.config.path, error)
            return f"restart refused, the workers keep the code they run: {master.config.path}: {error}"
        chosen = set(pools or names)
        self.generation += 1
        # The next spawner (started at once by the master's loop) imports the code anew.
        master.spawner.stop()
        for child in master.children.values():
            if child.pool.name in chosen and not child.stopping:
                self.old.setdefault(child.pool.name, set()).add(child.pid)
        self.retired = {name: 0 for name in self.old}
        log.info("restarting %s with the code on disk: %d workers to replace, one at a time",
                 ", ".join(sorted(chosen)) or "no pools", sum(len(o) for o in self.old.values()))
        return None

    def surge(self, pool_name: str) -> int:
        """Workers a pool may have beyond its count now: one while old ones remain."""
        return 1 if self.old.get(pool_name) else 0

    def step(self) -> None:
        """Retire one old worker for each new one that has reported for work."""
        master = self.master
        for name in list(self.old):
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
                log.info("pool %s restarted: every worker runs the new code", name)
