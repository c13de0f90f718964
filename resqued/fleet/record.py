"""A master's fleet record, built from its status (the control socket's
``status`` answer, protocols/controlsocket.Status): what ``resquectl fleet``
shows of it. Stdlib only."""

import collections
import time


def build(settings: dict, status: dict | None) -> dict:
    """The record of the master ``settings`` names (advertiser.py's
    settings), with ``status`` (None: the master did not answer)."""
    pools = []
    workers = (status or {}).get("workers") or []
    for pool in (status or {}).get("pools") or []:
        # A status asked without workers (advertiser.py) counts them by state
        # per pool; a full one lists each worker.
        states = pool.get("states")
        if states is None:
            states = collections.Counter(w["state"] for w in workers if w.get("queues") == pool["queues"])
        pools.append({"name": ",".join(pool["queues"]), "queues": pool["queues"], "count": pool["count"],
                      "alive": pool["alive"], "failed": pool["failed"], "states": dict(sorted(states.items()))})
    master = (status or {}).get("master") or {}
    return {"host": settings["host"], "pid": settings["master_pid"], "version": settings["version"],
            "config": settings["config"], "digest": settings["digest"], "started": settings["started"],
            "seen": time.time(), "state": master.get("state", "not answering"),
            "workers": master.get("worker_count", len(workers)), "pools": pools}
