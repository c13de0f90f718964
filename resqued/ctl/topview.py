"""How ``resquectl top`` draws a frame (topframe.py reads it): the same
lines on a curses screen and in ``top --once``'s plain text.

Header (which Redis, the time, the counters and their rates, the global
pause), this host's master and its pools, then the queues (longest first)
and the workers (busy first), each table cut to what the screen holds and
saying how many rows it left out.
"""

from resqued.ctl import tables
from resqued.process.logs import printable

NO_MASTER = "master: none"


def duration(seconds) -> str:
    """``4.2s``, ``45s``, ``2m05s``, ``3h12m``, ``2d04h``; ``-`` for none."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def per_second(value) -> str:
    return "-" if value is None else f"{value:.1f}/s"


def header(frame: dict, heading: str | None = None) -> list[str]:
    lines = [printable(heading or f"Redis {frame['redis']}")]
    if not frame["redis_up"]:
        lines.append(f"{frame['time']}  REDIS UNREACHABLE, trying again: {printable(frame['error'])}")
    else:
        lines.append(f"{frame['time']}  processed {frame['processed']} ({per_second(frame['processed_per_second'])})"
                     f"  failed {frame['failed']} ({per_second(frame['failed_per_second'])})"
                     f"  failures {frame['failures']}  workers {frame['workers_registered']}"
                     f"  queues {frame['queue_count']}"
                     f"  paused {'YES (pause-all-workers)' if frame['paused'] else 'no'}")
    master = frame["master"]
    if master is None:
        lines.append(NO_MASTER)
    else:
        lines.append(f"master {master['pid']} {master['state']}  config {printable(master['config'])}")
    return lines


def pools_table(master: dict | None, width: int) -> list[str]:
    if not master or not master["pools"]:
        return []
    return tables.table(["POOL", "COUNT", "ALIVE", "STATE"],
                        [[",".join(p["queues"]), p["count"], p["alive"], "FAILED" if p["failed"] else "ok"]
                         for p in master["pools"]], width=width).splitlines()


def queues_table(queues: list[dict], shown: int, width: int) -> list[str]:
    if not queues:
        return ["no queues"]
    headers = ["QUEUE", "LENGTH", "LATENCY"]
    rows = [[q["name"], q["length"] if q["error"] is None else "?", duration(q["latency"])] for q in queues[:shown]]
    if any(q["error"] for q in queues[:shown]):   # a key that is not a list, say: why it shows no length
        headers.append("PROBLEM")
        for row, q in zip(rows, queues):
            row.append(q["error"])
    return tables.table(headers, rows, limits={0: 40}, width=width).splitlines() + _more(len(queues) - shown, "queue")


def workers_table(workers: list[dict], shown: int, width: int) -> list[str]:
    if not workers:
        return ["no workers registered"]
    rows = [[w["host"], w["pid"], ",".join(w["queues"]), w["state"], w["queue"], w["class"], duration(w["for"])]
            for w in workers[:shown]]
    return tables.table(["HOST", "PID", "QUEUES", "STATE", "QUEUE", "CLASS", "FOR"], rows,
                        limits={0: 30, 2: 30, 4: 20, 5: 40}, width=width).splitlines() \
        + _more(len(workers) - shown, "worker")


def _more(left_out: int, noun: str) -> list[str]:
    return [f"... {left_out} more {noun}{'' if left_out == 1 else 's'}"] if left_out > 0 else []


def split_rows(queues: int, workers: int, room: int) -> tuple[int, int]:
    """How many queue and worker rows to show in ``room`` lines: all if
    they fit; else each table gets half (what one leaves unused goes to the
    other; the queues get the odd line), a cut table giving one of its
    lines to the "... more" line."""
    if queues + workers <= room:
        return queues, workers
    half = (room + 1) // 2
    for_queues = min(queues, max(half, room - workers))
    for_workers = room - for_queues
    return (for_queues if for_queues >= queues else max(for_queues - 1, 0),
            for_workers if for_workers >= workers else max(for_workers - 1, 0))


def render(frame: dict, width: int, height: int | None = None, heading: str | None = None) -> list[str]:
    """The frame's lines; with ``height``, cut to fit it. ``heading``: the
    first line, which Redis (and where its URL came from); else the frame's
    own Redis."""
    lines = header(frame, heading)
    pools = pools_table(frame["master"], width)
    lines += pools
    if not frame["redis_up"]:
        return lines if height is None else lines[:height]
    queues, workers = frame["queues"], frame["workers"]
    shown_queues, shown_workers = len(queues), len(workers)
    if height is not None:
        # Two blank lines and two table headers around the rows.
        room = max(height - len(lines) - 4, 0)
        shown_queues, shown_workers = split_rows(len(queues), len(workers), room)
    lines += [""] + queues_table(queues, shown_queues, width)
    lines += [""] + workers_table(workers, shown_workers, width)
    return lines if height is None else lines[:height]
