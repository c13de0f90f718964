"""A command pool's replacement waits for the recovery run that settles its
dead worker's job (docs/command-pools.md).

php-resque 1.x prunes dead workers of its host as it starts: it deletes
``worker:<id>`` without failing the job the record holds. Forked before the
master's recovery run has settled that record, the replacement could make
the job vanish; so a command pool starts no worker on this host while a
dead one's settle is pending, for at most HOLD_AT_MOST seconds (Redis away,
the spawner down: the pool must not stop for good), then goes on, saying so.
"""

import logging
import time

from resqued.master import commandworkers
from resqued.process.logs import event

log = logging.getLogger("resqued.master")

HOLD_AT_MOST = 10.0


class SettleHold:
    def __init__(self):
        self.held: dict[int, tuple[str, float]] = {}   # dead command worker's pid -> (pool name, since)

    def reaped(self, child, code: int) -> None:
        """The master reaped ``child``: a command worker's job is settled
        next (it never announces an exit), so its pool waits."""
        commandworkers.reaped(child, code)
        commandworkers.name_lost_job(child)   # so that its settle counts in the metrics' lost
        if isinstance(child, commandworkers.CommandChild):
            self.held[child.pid] = (child.pool.name, time.monotonic())

    def pools(self, lost, now: float | None = None) -> set[str]:
        """The pools to start no worker for now; ``lost``: the master's
        recoveryruns.RecoveryRuns, whose pending and running entries are
        the settles not yet done."""
        now = time.monotonic() if now is None else now
        batches = [*lost.pending, *(lost.running[1] if lost.running else ())]
        unsettled = {entry[0].split(":")[1] for entry in batches}
        for pid, (pool, since) in list(self.held.items()):
            if str(pid) not in unsettled:
                del self.held[pid]
            elif now - since >= HOLD_AT_MOST:
                del self.held[pid]
                log.warning("starting %s's replacement worker before the job of dead worker %d is settled "
                            "(still pending after %gs): php-resque's prune at start may drop that job",
                            pool, pid, HOLD_AT_MOST, extra=event("settle_hold_expired", pool=pool))
        return {pool for pool, _ in self.held.values()}
