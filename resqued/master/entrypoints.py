"""What runs in the processes the spawner forks for the master: a recovery run
(recovery_main; the master's side is recoveryruns.py).

Only the spawner imports this module, after its fork from the master: it
loads redis-py, which the master never does (spawner.py says why).
"""

import os
import signal
from types import SimpleNamespace

from resqued.exits import EX_TEMPFAIL, EXIT_FAILURE, EXIT_OK
from resqued.process.signals import exit_on_parent_death
from resqued.process.title import set_raw_title
from resqued.supervise.lostworkers import LostWorkers


def recovery_main(spec: dict) -> int:
    """In the recovery run, forked by the spawner and adopted by the master:
    recover the jobs of the dead workers in ``spec`` (RecoveryRuns.start_due)."""
    exit_on_parent_death(signal.SIGKILL)  # each job is settled by one Lua call: safe to kill
    if os.getppid() != spec["master_pid"]:
        return EXIT_FAILURE
    set_raw_title(spec["title"])
    lost = LostWorkers(down=spec["down"])
    for worker_id, why in spec["workers"]:
        lost.add(worker_id, why)
    settings = SimpleNamespace(**{k: spec[k] for k in ("redis_url", "namespace", "on_lost", "max_lost")})
    return EXIT_OK if lost.recover(settings) else EX_TEMPFAIL
