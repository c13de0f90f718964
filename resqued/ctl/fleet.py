"""``resquectl fleet``: every resqued master on every host sharing this
Redis (their advertisers' records: resqued/fleet/), each pool's workers by
state, a host left on an older version flagged, the queues paused
fleet-wide, and the workers of php-resque and Ruby by host.
``resquectl pause --queue Q --fleet`` and ``resume --queue Q --fleet``
change the fleet-wide pause (resqued/fleet/paused.py)."""

from resqued.ctl.output import emit
from resqued.exits import EXIT_OK
from resqued.fleet import view
from resqued.resque.wire import utc_iso


def cmd_fleet(resque, args) -> int:
    data = view.read(resque.redis, resque.keys.namespace)
    for master in data["masters"]:
        for key in ("started", "seen"):
            if isinstance(master.get(key), (int, float)):
                master[key] = utc_iso(master[key])
    emit(args, data, fleet_text)
    return EXIT_OK


def fleet_text(data) -> str:
    lines = []
    if not data["masters"]:
        lines.append("no resqued master advertises itself here")
    for m in data["masters"]:
        flag = "  (OLDER VERSION)" if m.get("outdated") else ""
        lines.append(f"{m['host']}  master {m['pid']}  {m['state']}  version {m['version']}{flag}  "
                     f"config {m['config']} ({m['digest']})  workers {m['workers']}  seen {m['seen']}")
        for pool in m.get("pools", []):
            states = ", ".join(f"{n} {state}" for state, n in pool["states"].items()) or "none"
            failed = "  FAILED" if pool["failed"] else ""
            lines.append(f"    pool {pool['name']}: {pool['alive']}/{pool['count']} ({states}){failed}")
    lines.append("queues paused fleet-wide: " + (", ".join(data["paused_queues"]) or "none"))
    for host, workers in sorted(data["foreign_workers"].items()):
        lines.append(f"{host}  {len(workers)} other worker(s) (php-resque, Ruby): "
                     + ", ".join(f"{w['pid']}:{','.join(w['queues'])}" for w in workers))
    return "\n".join(lines)


def add_commands(commands, command) -> None:
    command(commands, "fleet", cmd_fleet,
            "every resqued master on every host using this Redis: pools, workers, versions; the queues "
            "paused fleet-wide; other (php-resque, Ruby) workers by host")
