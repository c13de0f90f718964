"""``resquectl schedule -c pool.yml``: the recurring jobs of the file's
``schedule:`` section, each with its next run and the last occurrence a
scheduler enqueued (scheduler/recurring.py's claims in Redis)."""

import time

from resqued.config.loader import load_config
from resqued.config.model import ConfigError
from resqued.ctl.output import CtlError, UsageError, emit
from resqued.exits import EX_CONFIG, EXIT_OK
from resqued.process.logs import printable
from resqued.resque.wire import utc_iso
from resqued.scheduler.recurring import read_claims


def cmd_schedule(resque, args) -> int:
    if not getattr(args, "config", None):
        raise UsageError("resquectl schedule needs -c POOL_YML: the file whose schedule: section to show")
    try:
        entries = load_config(args.config, getattr(args, "environment", None)).schedule
    except ConfigError as exc:
        raise CtlError(str(exc), EX_CONFIG) from None
    claims = read_claims(resque.redis, resque.keys, [entry.name for entry in entries])
    now = time.time()
    rows = []
    for entry in entries:
        try:
            upcoming = entry.next_after(now)
        except ValueError:      # a cron no date matches (croniter's CroniterBadDateError)
            upcoming = None
        last = claims[entry.name]
        rows.append({"name": entry.name, "cron": entry.cron, "every": entry.every_text,
                     "class": entry.job_class, "queue": entry.queue, "args": entry.args,
                     "description": entry.description,
                     "next_timestamp": upcoming, "next": utc_iso(upcoming),
                     "last_enqueued_timestamp": last, "last_enqueued": utc_iso(last)})
    emit(args, {"schedule": rows}, _render)
    return EXIT_OK


def _render(data) -> str:
    rows = data["schedule"]
    if not rows:
        return "no recurring jobs: the file has no schedule: section"
    table = [("NAME", "RULE", "CLASS", "QUEUE", "NEXT (UTC)", "LAST ENQUEUED (UTC)")]
    for row in rows:
        rule = f"cron {row['cron']}" if row["cron"] is not None else f"every {row['every']}"
        table.append((printable(row["name"]), rule, printable(row["class"]), printable(row["queue"]),
                      row["next"] or "never", row["last_enqueued"] or "never"))
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]) - 1)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)) + "  " + line[-1]
                     for line in table)


def add_commands(commands, command) -> None:
    command(commands, "schedule", cmd_schedule,
            "the recurring jobs of -c pool.yml's schedule:, with their next run and last enqueued occurrence")
