"""Human output for resquectl: aligned plain-text tables and the rows each
inspection command shows. ``--json`` output never passes through here."""

import json
import shutil
import time

from resqued.process.logs import printable

ELLIPSIS = "..."
GAP = "  "


def one_line(value, limit: int | None = None) -> str:
    """``value`` as a single line (a newline in an error message would break the
    table) with its other control characters escaped (an id or a class from a
    payload must not drive the terminal), cut to ``limit`` characters."""
    text = "-" if value is None or value == "" else printable(" ".join(str(value).split()))
    if limit is not None and len(text) > limit:
        text = text[:max(limit - len(ELLIPSIS), 1)] + ELLIPSIS
    return text


def terminal_width() -> int:
    # COLUMNS wins, then the terminal; piped output gets a generous line.
    return shutil.get_terminal_size((160, 24)).columns


def table(headers, rows, limits=None, width=None) -> str:
    """Left-aligned columns under a header row. ``limits`` caps a column's
    width; the last column takes what is left of ``width`` (never under 10)."""
    limits = limits or {}
    cells = [[one_line(cell, limits.get(i)) for i, cell in enumerate(row)] for row in rows]
    if cells:
        width = terminal_width() if width is None else width
        widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers[:-1])]
        room = max(width - sum(widths) - len(GAP) * len(widths), 10)
        for row in cells:
            row[-1] = one_line(row[-1], room)
    all_rows = [list(headers)] + cells
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(headers))]
    lines = [GAP.join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in all_rows]
    return "\n".join(lines)


def fields(pairs) -> str:
    """``key: value`` lines with the values aligned."""
    pad = max(len(k) for k, _ in pairs) + 1
    return "\n".join(f"{(k + ':').ljust(pad)} {v}" for k, v in pairs)


def local_time(epoch) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(epoch)))
    except (TypeError, ValueError, OverflowError, OSError):
        return one_line(epoch)


# -- rows per command -------------------------------------------------------

def queues_table(sizes: dict) -> str:
    return table(["QUEUE", "SIZE"], sizes.items())


def workers_table(workers: list[dict]) -> str:
    rows = []
    for w in workers:
        job = w["job"] or {}
        payload = job.get("payload") if isinstance(job.get("payload"), dict) else {}
        rows.append([w["id"], w["state"], job.get("queue"), payload.get("class"), w["since"],
                     w["processed"], w["failed"], w["heartbeat"]])
    return table(["WORKER", "STATE", "QUEUE", "CLASS", "SINCE", "PROCESSED", "FAILED", "HEARTBEAT"],
                 rows, limits={0: 60, 3: 40})


def _payload(entry: dict) -> dict:
    payload = entry.get("payload")
    return payload if isinstance(payload, dict) else {}


def inflight_table(jobs: list[dict]) -> str:
    rows = [[j["worker"], j["queue"], j["class"], j["id"],
             "yes" if j["alive"] else "no (not registered)" if not j["registered"] else
             f"no (last heartbeat {j['heartbeat'] or 'never'})"] for j in jobs]
    return table(["WORKER", "QUEUE", "CLASS", "JOB_ID", "ALIVE"], rows, limits={0: 60, 2: 40})


def failures_table(entries: list[dict]) -> str:
    rows = [[e["index"], e.get("failed_at"), e.get("retried_at"), e.get("queue"), _payload(e).get("class"),
             _payload(e).get("id"), e.get("exception"), e.get("error")] for e in entries]
    return table(["INDEX", "FAILED_AT", "RETRIED_AT", "QUEUE", "CLASS", "JOB_ID", "EXCEPTION", "ERROR"], rows,
                 limits={3: 20, 4: 40, 5: 32, 6: 30})


def failure_details(entry: dict) -> str:
    payload = _payload(entry)
    pairs = [("index", entry["index"]), ("failed_at", one_line(entry.get("failed_at"))),
             ("queue", one_line(entry.get("queue"))), ("worker", one_line(entry.get("worker"))),
             ("class", one_line(payload.get("class"))), ("id", one_line(payload.get("id"))),
             ("args", json.dumps(payload.get("args"))),
             ("exception", one_line(entry.get("exception"))), ("error", printable(entry.get("error"))),
             ("retried_at", one_line(entry.get("retried_at") or "never"))]
    # An undecodable entry keeps its bytes under "raw" (in the entry or its payload).
    raw = entry.get("raw") or payload.get("raw")
    if raw:
        pairs.append(("raw", printable(raw)))
    text = fields(pairs)
    backtrace = entry.get("backtrace")
    if isinstance(backtrace, list) and backtrace:
        text += "\nbacktrace:\n" + "\n".join(f"  {printable(line)}" for line in backtrace)
    return text


def job_status_line(job_id: str, status: dict) -> str:
    extra = ""
    if "updated" in status:
        extra = f" (updated {local_time(status['updated'])})"
    elif "raw" in status:
        extra = f" (unreadable record: {one_line(status['raw'], 80)})"
    return f"{printable(job_id)}: {printable(status['status'])}{extra}"


STATS_MEANINGS = {
    "processed": "jobs ever done (stat:processed)",
    "failed": "jobs ever failed (stat:failed): a count that retry, remove and clear leave as it is",
    "pending": "jobs waiting in the queues (resquectl queues)",
    "workers": "workers registered (resquectl workers)",
    "failures": "entries in the failed list now (resquectl failed): what retry, remove and clear act on",
}


def stats_text(stats: dict) -> str:
    pad = max(len(str(stats[name])) for name in STATS_MEANINGS)
    return fields([(name, f"{str(stats[name]).ljust(pad)}  {meaning}") for name, meaning in STATS_MEANINGS.items()])
