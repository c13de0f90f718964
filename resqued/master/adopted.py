"""What the master ends as it leaves: the processes it adopted as a child
subreaper that still run once its workers, its spawner and its recovery
runs are gone (what a killed job had started in a session of its own, say).
Nobody else would end them once the master exits: systemd's KillMode=mixed
does, --daemonize and supervisord do not."""

import logging

from resqued.process.descendants import end_processes, running_descendants

log = logging.getLogger("resqued.master")


def end_adopted(grace: float) -> None:
    """SIGTERM to each, then SIGKILL to those still running ``grace`` seconds later."""
    procs = running_descendants()
    if not procs:
        return
    log.warning("ending what jobs left running, adopted by the master (pids %s): SIGTERM now, "
                "SIGKILL after %gs", ", ".join(str(p.pid) for p in procs), grace)
    killed = end_processes(procs, grace)
    if killed:
        log.warning("SIGKILL to pids %s: still running %gs after SIGTERM", ", ".join(map(str, killed)), grace)
