"""The fleet as Redis shows it, for ``resquectl fleet`` and the dashboard:
every master's record (advertiser.py), the queues paused fleet-wide, and
the workers no resqued master runs (php-resque's, Ruby's), by host. Two
round trips, no KEYS or SCAN: the masters' sorted set, then one pipeline."""

import json
import re

from resqued.fleet.keys import FleetKeys
from resqued.resque.keys import Keys
from resqued.resque.presence import split_worker_id


def read(client, namespace: str) -> dict:
    fleet, keys = FleetKeys(namespace), Keys(namespace)
    members = [m.decode(errors="replace") for m in client.zrange(fleet.masters, 0, -1)]
    pipe = client.pipeline(transaction=False)
    if members:
        pipe.mget([fleet.record(m) for m in members])
    pipe.smembers(keys.workers)
    pipe.hkeys(keys.heartbeat_intervals)     # resqued's own workers write it; Ruby's and PHP's do not
    pipe.smembers(fleet.paused_queues)
    replies = pipe.execute()
    records = replies.pop(0) if members else []
    registered, ours, paused = replies
    masters = []
    for raw in records:
        if raw is None:
            continue     # expired: that master is gone (its advertiser forgets it soon)
        try:
            masters.append(json.loads(raw))
        except ValueError:
            continue
    newest = max((_version_key(m.get("version")) for m in masters), default=None)
    for master in masters:
        master["outdated"] = _version_key(master.get("version")) != newest
    masters.sort(key=lambda m: (str(m.get("host")), m.get("pid") or 0))
    resqued = {w.decode(errors="replace") for w in ours}
    foreign = {}
    for worker_id in sorted(w.decode(errors="replace") for w in registered):
        if worker_id not in resqued:
            host, pid, queues = split_worker_id(worker_id)
            foreign.setdefault(host, []).append({"id": worker_id, "pid": pid, "queues": queues.split(",")})
    return {"masters": masters, "paused_queues": sorted(q.decode(errors="replace") for q in paused),
            "foreign_workers": foreign}


def _version_key(version) -> tuple:
    """"0.10.2" after "0.9.1": numbers compared as numbers."""
    return tuple(int(part) if part.isdigit() else 0 for part in re.split(r"[.+-]", str(version)))
