"""``resquectl fleet``: every resqued master on every host sharing this
Redis (their advertisers' records: resqued/fleet/), each pool's workers by
state, a host left on an older version flagged, the queues paused
fleet-wide, and the workers of php-resque and Ruby by host.
``resquectl pause --queue Q --fleet`` and ``resume --queue Q --fleet``
change the fleet-wide pause (resqued/fleet/paused.py)."""

from resqued.ctl.output import UsageError, emit
from resqued.exits import EXIT_OK
from resqued.fleet import paused
from resqued.resque.keys import check_queue_name
from resqued.resque.wire import utc_iso


def cmd_fleet(resque, args) -> int:
    # Here, not at the top: it loads redis-py, which resquectl's master commands never need.
    from resqued.fleet import view
    data = view.read(resque.redis, resque.keys.namespace)
    for master in data["masters"]:
        for key in ("started", "seen"):
            if isinstance(master.get(key), (int, float)):
                master[key] = utc_iso(master[key])
    emit(args, data, fleet_text)
    return EXIT_OK


def cmd_pause_queue(resque, args) -> int:
    """``pause --queue Q --fleet`` / ``resume --queue Q --fleet``."""
    try:
        queue = check_queue_name(args.queue)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    namespace = resque.keys.namespace
    if args.master_command == "pause":
        changed = paused.pause(resque.redis, namespace, queue)
        message = f"queue {queue} paused on every host" + ("" if changed else " (it was already)")
    else:
        changed = paused.resume(resque.redis, namespace, queue)
        message = f"queue {queue} resumed on every host" + ("" if changed else " (it was not paused)")
    emit(args, {"ok": True, "message": message, "paused_queues": paused.paused_queues(resque.redis, namespace)},
         lambda d: d["message"])
    return EXIT_OK


def check_pause_arguments(args) -> None:
    """``--queue`` and ``--fleet`` go together (a queue is paused on every host, through Redis)."""
    if getattr(args, "master_command", None) not in ("pause", "resume"):
        return   # (enqueue's QUEUE is an args.queue too)
    queue, fleet = args.queue, args.fleet
    if queue is not None and not fleet:
        raise UsageError(f"--queue {queue} needs --fleet: a queue is paused on every host at once")
    if fleet and queue is None:
        raise UsageError("--fleet needs --queue QUEUE (to pause every worker of this master: pause alone)")


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
