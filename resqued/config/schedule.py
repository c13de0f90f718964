"""pool.yml's ``schedule:`` section: recurring jobs in resque-scheduler's
format (its README, "Scheduled Jobs"), a mapping of names to

    cron: "*/5 * * * *"          # or "0 5 * * * Europe/Stockholm", or 6 fields, seconds first
    every: "30s"                 # or "1m", "2h", "1d", "1w", "1h30m", or a number of seconds
    class: ReportJob             # default: the entry's name, as Ruby's scheduler does
    queue: reports               # required: resqued does not import the class to ask it
    args: [...]                  # a list; one other value is the one argument; none is []
    description: "..."

checked as the rest of pool.yml (``pool.yml:12: schedule.report.cron: ...``),
and the occurrences of each entry, which the scheduler process
(scheduler/recurring.py) and ``resquectl schedule`` compute alike.

Cron expressions are parsed and stepped by croniter: the most used cron
library on PyPI, maintained (by pallets-eco since 2025), DST-aware with
zoneinfo, and it takes rufus-scheduler's seconds-first six fields.
``every`` occurrences fall on multiples of the interval since the epoch
(UTC), not from whenever a scheduler started as in rufus-scheduler; and a
cron without a timezone is read in UTC, not in each host's local time as
rufus-scheduler reads it: every scheduler of a fleet must agree on each
occurrence to claim it once.
"""

import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from resqued.resque.keys import check_queue_name

_EVERY = re.compile(r"(?:\d+[smhdw])+\Z")
_EVERY_PART = re.compile(r"(\d+)([smhdw])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_EVERY = 366 * 86400
KEYS = ("cron", "every", "class", "queue", "args", "description")


@dataclass(frozen=True)
class ScheduleEntry:
    name: str
    job_class: str
    queue: str
    args: list
    description: str = ""
    cron: str | None = None         # as written, timezone included
    every: int | None = None        # seconds
    every_text: str | None = None   # as written

    @property
    def rule(self) -> str:
        return f"cron {self.cron}" if self.cron is not None else f"every {self.every_text}"

    def next_after(self, after: float) -> int:
        """The first occurrence strictly after ``after`` (epoch seconds)."""
        if self.every is not None:
            return (int(after) // self.every + 1) * self.every
        fields, zone = split_cron(self.cron)
        found = _cron_next(fields, zone, after)
        minute, hour = fields[-5:-3]
        if zone is not None and not minute.startswith("*") and not hour.startswith("*"):
            # When clocks go back, a wall-clock time comes twice: the second
            # (fold 1) is skipped when the first was this entry's previous
            # occurrence, as Vixie cron runs a fixed time once ("30 1 * * *"),
            # while a wildcard minute or hour ("0 * * * *") runs through both hours.
            local = datetime.fromtimestamp(found, zone)
            if local.fold:
                first = int(local.replace(fold=0).timestamp())
                if _cron_next(fields, zone, first - 1) == first and _cron_next(fields, zone, first) >= found:
                    found = _cron_next(fields, zone, found)
        return found

    def occurrences(self, after: float, until: float, limit: int = 1000) -> list[int]:
        """Occurrences in (after, until], earliest first, at most ``limit``."""
        found = []
        t = self.next_after(after)
        while t <= until and len(found) < limit:
            found.append(t)
            t = self.next_after(t)
        return found


def _cron_next(fields, zone, after: float) -> int:
    croniter, _ = _croniter()
    start = datetime.fromtimestamp(after, zone or timezone.utc)
    return int(croniter(" ".join(fields), start, second_at_beginning=len(fields) == 6).get_next(float))


def _croniter():
    # Late: croniter (and dateutil) take ~20 ms to import, which every start
    # of the master, env mode and resquectl would pay; only a cron needs it.
    import croniter
    return croniter.croniter, croniter.CroniterError


def split_cron(text: str) -> tuple:
    """(cron fields, timezone or None); ValueError saying what is wrong.
    rufus-scheduler's forms: 5 fields, or 6 with seconds first, then an
    optional IANA timezone ("0 5 * * * Europe/Stockholm")."""
    fields = text.split()
    zone = None
    if len(fields) in (6, 7):
        # Six fields are seconds-first unless the sixth names a zone: no
        # cron field (5, */10, MON, JAN) is a zone's name.
        # Here: zoneinfo brings sysconfig, uuid and platform (~2 MB) into
        # every master, while only a schedule with a timezone needs it.
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
        try:
            zone = ZoneInfo(fields[-1])
        except (ZoneInfoNotFoundError, ValueError, OSError):
            if len(fields) == 7:
                raise ValueError(f"{fields[-1]!r} is not a timezone (an IANA name such as "
                                 "Europe/Stockholm)") from None
        if zone is not None:
            fields = fields[:-1]
    if len(fields) not in (5, 6):
        raise ValueError(f"{text!r}: expected 5 fields (minute hour day month weekday), or 6 with seconds "
                         f"first, then an optional timezone; got {len(text.split())}")
    croniter, CroniterError = _croniter()
    try:
        parsed = croniter(" ".join(fields), 0, second_at_beginning=len(fields) == 6)
    except (CroniterError, ValueError, KeyError) as exc:
        raise ValueError(f"{text!r} is not a valid cron expression ({exc})") from None
    try:
        # Parsed is not enough: "0 0 31 2 *" parses but never occurs, and
        # croniter says so only when asked for an occurrence.
        parsed.get_next(float)
    except (CroniterError, ValueError) as exc:
        raise ValueError(f"{text!r} never occurs (no date matches it: {exc})") from None
    return fields, zone


def parse_every(value) -> int:
    """Seconds, from "30s", "1h30m", "1d" or a whole number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 30s, 5m, 1h30m or 1d, got {value!r}")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and _EVERY.match(value.strip()):
        seconds = sum(int(n) * _UNIT[unit] for n, unit in _EVERY_PART.findall(value.strip()))
    else:
        raise ValueError(f"expected a duration such as 30s, 5m, 1h30m or 1d, got {value!r}")
    if not 1 <= seconds <= MAX_EVERY:
        raise ValueError(f"{value!r}: must be between 1 second and 366 days")
    return seconds


def job_args(value) -> list:
    """As Ruby's enqueue_from_config: a list as it is, null none, any other value the one argument."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def section(r, node, path) -> tuple[ScheduleEntry, ...]:
    """Check pool.yml's ``schedule:`` (a NodeReader ``r``)."""
    entries = []
    for name, (key_node, value, entry_path) in r.mapping(node, path).items():
        entries.append(_entry(r, name, key_node, value, entry_path))
    return tuple(entries)


def _entry(r, name, key_node, node, path) -> ScheduleEntry:
    found = r.mapping(node, path, allow_null=False)
    for key, (k_node, _, k_path) in found.items():
        if key not in KEYS:
            raise r.unknown(k_node, k_path, key, KEYS)
    rules = [key for key in ("cron", "every") if key in found]
    if len(rules) != 1:
        raise r.fail(node, path, "set one of cron or every" if not rules else
                     "set cron or every, not both")
    fields = {"name": name}
    rule = rules[0]
    _, rule_node, rule_path = found[rule]
    if rule == "cron":
        text = r.string(rule_node, rule_path, 'a cron expression such as "*/5 * * * *"')
        try:
            split_cron(text)
        except ValueError as exc:
            raise r.fail(rule_node, rule_path, str(exc)) from None
        fields["cron"] = text.strip()
    else:
        if isinstance(rule_node.value, list):
            raise r.fail(rule_node, rule_path, f"expected a duration such as 30s, got {r.kind(rule_node, rule_path)} "
                                               "(rufus-scheduler's options are not supported)")
        value = r.scalar(rule_node, rule_path)
        try:
            fields["every"] = parse_every(value)
        except ValueError as exc:
            raise r.fail(rule_node, rule_path, str(exc)) from None
        fields["every_text"] = str(value)
    if "class" in found:
        _, class_node, class_path = found["class"]
        fields["job_class"] = r.string(class_node, class_path, "a job class name")
    else:
        fields["job_class"] = name
    if "queue" not in found:
        raise r.fail(node, path, "missing 'queue' (resqued does not load the class to ask it)")
    _, queue_node, queue_path = found["queue"]
    fields["queue"] = r.name(queue_node, queue_path)
    try:
        check_queue_name(fields["queue"])
    except ValueError as exc:
        raise r.fail(queue_node, queue_path, str(exc)) from None
    if "args" in found:
        _, args_node, args_path = found["args"]
        fields["args"] = job_args(_plain(r, args_node, args_path))
    else:
        fields["args"] = []
    if "description" in found:
        _, desc_node, desc_path = found["description"]
        description = r.scalar(desc_node, desc_path)
        fields["description"] = "" if description is None else str(description)
    return ScheduleEntry(**fields)


def _plain(r, node, path):
    """A YAML value as JSON data (lists, string-keyed mappings, scalars)."""
    if r.is_null(node):
        return None
    if node.tag.endswith(":seq"):
        return [_plain(r, item, item_path) for item, item_path in r.items(node, path, "a list")]
    if node.tag.endswith(":map"):
        return {key: _plain(r, value, value_path) for key, (_, value, value_path) in r.mapping(node, path).items()}
    value = r.scalar(node, path)
    if not isinstance(value, (str, int, float, bool)):
        raise r.fail(node, path, f"cannot pass {r.kind(node, path)} to a job: use a string, a number, "
                                 "true/false, null, a list or a mapping")
    if isinstance(value, float) and not math.isfinite(value):
        raise r.fail(node, path, f"{node.value!r} is not a JSON number")
    return value
