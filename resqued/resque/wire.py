"""The bytes resqued puts into Redis: JSON encoding, time formats, payloads,
failure and status records.

Where php-resque and Ruby Resque write different formats, the choice made here
keeps both working (see docs/wire-format.md):

* payloads carry php-resque's four fields (``class, args, id, queue_time``);
  Ruby reads ``class`` and ``args`` and ignores the rest;
* strings are encoded as PHP's ``json_encode`` does (``\\/``, ``\\uXXXX``),
  which every JSON parser reads back unchanged;
* the human-readable times (``started``, ``run_at``, ``failed_at``, heartbeat)
  use Ruby's formats, because resque-web (Ruby) is what displays them and
  php-resque never reads them back.
"""

import json
import os
import re
import time
from datetime import datetime, timezone

STATUS_WAITING = 1
STATUS_RUNNING = 2
STATUS_FAILED = 3
STATUS_COMPLETE = 4
STATUS_NAMES = {
    STATUS_WAITING: "waiting",
    STATUS_RUNNING: "running",
    STATUS_FAILED: "failed",
    STATUS_COMPLETE: "complete",
}
# php-resque keeps finished statuses for a day.
STATUS_TTL = 86400
# Resque's heartbeat: every 60 s, and Ruby prunes a worker whose beat is older
# than five intervals (its prune_interval).
HEARTBEAT_INTERVAL = 60.0
PRUNE_BEATS = 5
# The shortest heartbeat interval resqued takes: below it a worker busy for a
# moment (a fork, a slow Redis call) misses five beats and is pruned alive.
MIN_HEARTBEAT_INTERVAL = 1.0


def dumps(value, *, allow_nan: bool = True) -> str:
    """Compact JSON as PHP's json_encode writes it.

    '/' can only occur inside JSON strings, so escaping it after encoding is
    safe; ensure_ascii gives PHP's \\uXXXX (with surrogate pairs).
    ``allow_nan=False`` raises ValueError on NaN/Infinity (not JSON at all)
    instead of writing them; enqueue uses it.
    """
    # One encoder each, built once: json.dumps with options builds a new
    # JSONEncoder per call, a third of the cost of encoding a small payload.
    return (_ENCODE if allow_nan else _ENCODE_STRICT)(value).replace("/", "\\/")


_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=True).encode
_ENCODE_STRICT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode


def new_job_id() -> str:
    """32 lowercase hex characters, the shape of php-resque's ids."""
    return os.urandom(16).hex()  # as random as uuid4().hex, at a quarter of the cost


def payload(job_class: str, args: list, job_id: str, queue_time: float | None = None,
            prefix: str = "") -> dict:
    # Field order matters to byte-level comparisons: php-resque's order
    # (php-resque >= 1.3 puts a status ``prefix`` before queue_time).
    # queue_time in microseconds, as php-resque writes it: time.time()'s
    # seventh decimal made Ruby's Oj write the float back as a string.
    queue_time = round(time.time() if queue_time is None else queue_time, 6)
    if prefix:
        return {"class": job_class, "args": args, "id": job_id, "prefix": prefix, "queue_time": queue_time}
    return {"class": job_class, "args": args, "id": job_id, "queue_time": queue_time}


def _local(ts: float | None) -> datetime:
    return datetime.fromtimestamp(time.time() if ts is None else ts).astimezone()


def started_time(ts: float | None = None) -> str:
    """``worker:<id>:started``: Ruby's ``2026-11-22 02:24:52 +0000``."""
    return _local(ts).strftime("%Y-%m-%d %H:%M:%S %z")


def run_at_time(ts: float | None = None) -> str:
    """``run_at`` of the working-on record: UTC ISO 8601 with ``Z`` (Ruby)."""
    return datetime.fromtimestamp(time.time() if ts is None else ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_iso(ts: float | None) -> str | None:
    """The one format of every time in resquectl's JSON: UTC ISO 8601 in
    whole seconds, as ``run_at`` (``2026-11-22T02:24:53Z``); None stays None."""
    return None if ts is None else run_at_time(ts)


def parse_time(value) -> float | None:
    """A time Resque stored, as a timestamp: ISO 8601 (``run_at``,
    heartbeats), Ruby's ``started`` (``2026-11-22 02:24:52 +0000``) or
    php-resque's ``Sun Nov 22 01:47:43 UTC 2026``; None when unreadable."""
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S %z").timestamp()
    except ValueError:
        return parse_run_at(value)


def failed_at_time(ts: float | None = None) -> str:
    """``failed_at``: Ruby's ``2026/11/22 02:24:57 UTC``."""
    return _local(ts).strftime("%Y/%m/%d %H:%M:%S %Z")


# The widest a zone abbreviation can be from UTC, westward: an entry stamped
# with a zone we cannot name (CET, EST, IST...) is at least this old.
_WESTMOST_OFFSET = 12 * 3600


def failed_at_latest(value) -> float | None:
    """The latest moment a failure entry's ``failed_at`` can mean, as a
    timestamp, or None when it cannot be read. Ruby writes
    ``2026/11/22 02:24:57 UTC`` and php-resque ``Sun Nov 22 01:47:47 UTC 2026``
    (both in the writer's local zone); an ISO 8601 time is read too. UTC,
    GMT, numeric offsets and this host's own zone are exact; another
    abbreviation is ambiguous (IST is three zones), so the time is taken
    as late as any zone would make it."""
    if not isinstance(value, str):
        return None
    fields = value.split()
    if len(fields) == 3:            # Ruby: date time zone
        text, fmt, zone = " ".join(fields[:2]), "%Y/%m/%d %H:%M:%S", fields[2]
    elif len(fields) == 6:          # php-resque: weekday month day time zone year
        zone = fields.pop(4)
        text, fmt = " ".join(fields), "%a %b %d %H:%M:%S %Y"
    else:
        return parse_time(value)    # ISO 8601, Ruby's Time#to_s, or None
    try:
        moment = datetime.strptime(text, fmt)
    except ValueError:
        return parse_time(value)    # ISO 8601, Ruby's Time#to_s, or None
    if zone in ("UTC", "GMT", "Z"):
        return moment.replace(tzinfo=timezone.utc).timestamp()
    if re.fullmatch(r"[+-][0-9]{2}(:?[0-9]{2})?", zone):
        offset = datetime.strptime(zone.replace(":", "").ljust(5, "0"), "%z").tzinfo
        return moment.replace(tzinfo=offset).timestamp()
    if zone in time.tzname:         # what this host (and resqued on it) writes
        return moment.timestamp()
    if not re.fullmatch(r"[A-Za-z]{2,6}", zone):
        return None
    return moment.replace(tzinfo=timezone.utc).timestamp() + _WESTMOST_OFFSET


def retried_at_time(ts: float | None = None) -> str:
    """``retried_at`` as resque-web's retry writes it (no zone)."""
    return _local(ts).strftime("%Y/%m/%d %H:%M:%S")


def heartbeat_time(ts: float) -> str:
    """Heartbeat hash value: ISO 8601 with offset, whole seconds (Ruby)."""
    return _local(ts).isoformat(timespec="seconds")


def parse_interval(value) -> float:
    """A heartbeat interval a resqued worker published (seconds); Resque's
    60 s for anything unreadable, and at least MIN_HEARTBEAT_INTERVAL (an
    older resqued took less, and would be pruned alive)."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return HEARTBEAT_INTERVAL
    return max(seconds, MIN_HEARTBEAT_INTERVAL) if 0 < seconds < float("inf") else HEARTBEAT_INTERVAL


def parse_heartbeat(value) -> float | None:
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    try:
        return datetime.fromisoformat(value).timestamp()
    except (TypeError, ValueError):
        return None


def parse_run_at(value) -> float | None:
    """A working-on record's ``run_at`` as a timestamp: Ruby's ISO 8601
    (``2026-11-22T02:24:53Z``) or php-resque's ``Sun Nov 22 01:47:43 UTC 2026``;
    None when it cannot be read, or names a zone other than UTC/GMT (an
    abbreviation such as CET cannot be told apart reliably)."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        pass
    fields = value.split()
    if len(fields) != 6:
        return None
    zone = fields.pop(4)
    try:
        moment = datetime.strptime(" ".join(fields), "%a %b %d %H:%M:%S %Y")
    except ValueError:
        return None
    if zone not in ("UTC", "GMT", "Z"):
        return None
    return moment.replace(tzinfo=timezone.utc).timestamp()


def working_on(queue: str, job_payload: dict, ts: float | None = None) -> str:
    return dumps({"queue": queue, "run_at": run_at_time(ts), "payload": job_payload})


def status_record(code: int, ts: float | None = None, started: bool = False) -> str:
    now = int(time.time() if ts is None else ts)
    record = {"status": code, "updated": now}
    if started:
        record["started"] = now
    return dumps(record)


def failure_record(job_payload, exception: str, error: str, backtrace: list,
                   worker_id: str, queue: str, ts: float | None = None, extra: dict | None = None) -> str:
    """``extra``: fields after Resque's (``attempts``), which its readers ignore."""
    return dumps({
        "failed_at": failed_at_time(ts),
        "payload": job_payload,
        "exception": exception,
        "error": error,
        "backtrace": backtrace,
        "worker": worker_id,
        "queue": queue,
        **(extra or {}),
    })


class InvalidPayload(ValueError):
    """A queue item that is not a job resqued can run."""


# php-resque's json_decode depth. It also keeps every payload far below
# Python's recursion limit, which json.dumps meets again when the payload is
# written into a failure entry or a worker's working-on record.
MAX_DEPTH = 512
_SURROGATE = re.compile("[\ud800-\udfff]")


def _reject_constant(name):
    # NaN and Infinity are not JSON: PHP and Ruby refuse them, so a failure
    # entry carrying one could not be read back by resque-web.
    raise InvalidPayload(f"payload is not valid JSON: {name} is not a JSON value")


def _finite_float(text):
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise InvalidPayload(f"payload is not valid JSON: number {text[:40]} is too large for a double")
    return value


def _check_tree(data) -> None:
    """Depth and strings of a decoded payload. Iterative, so that measuring a
    deep payload cannot itself recurse."""
    stack = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidPayload(f"payload is nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, dict):
            texts, children = node, node.values()
        else:
            texts, children = (), node
        for item in (*texts, *children):
            # "\ud800" alone is JSON that PHP refuses, and no Redis key (the
            # job's status) can hold it: every string must be UTF-8.
            if isinstance(item, str) and (lone := _SURROGATE.search(item)):
                raise InvalidPayload(f"payload is not valid JSON: a string holds the unpaired "
                                     f"UTF-16 surrogate \\u{ord(lone.group()):04x}")
            if isinstance(item, (dict, list)):
                stack.append((item, depth + 1))


def _nested_too_deep(raw) -> bool:
    """Does ``raw`` (JSON text) open more than MAX_DEPTH arrays or objects
    inside each other? Asked before parsing, so that the answer does not
    depend on how much stack the caller has left (json.loads recurses: the
    same payload parsed, or hit RecursionError, in a test and in a worker).
    Only a payload with that many brackets at all is scanned, strings first
    taken out."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return False
    depth = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub(b"", raw)):
        depth += 1 if bracket in b"[{" else -1
        if depth > MAX_DEPTH:
            return True
    return False


# A surrogate in a decoded string comes from an escape (\ud800) or, since
# json.loads decodes bytes with "surrogatepass", from UTF-8 bytes ED A0-BF.
# A payload with neither (nearly all) needs no walk of its tree (~15 % of a
# no-fork worker's CPU per job).
_ESCAPED_SURROGATE = re.compile(rb"\xed|\\u[dD][89a-fA-F]")
_TEXT_SURROGATE = re.compile("[\ud800-\udfff]|\\\\u[dD][89a-fA-F]")


def _may_hold_surrogates(raw) -> bool:
    if isinstance(raw, str):
        return _TEXT_SURROGATE.search(raw) is not None
    # json.loads reads UTF-16 and UTF-32 bytes too (NULs between an escape's
    # bytes), and a BOM or whitespace may come first: those are walked.
    return b"\x00" in raw or not raw.startswith(b"{") or _ESCAPED_SURROGATE.search(raw) is not None


_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_BRACKETS = re.compile(rb"[\[\]{}]")


def decode_payload(raw) -> dict:
    """Parse one queue item. Raises InvalidPayload with a one-line reason."""
    if isinstance(raw, (bytes, bytearray, str)) and _nested_too_deep(raw):
        raise InvalidPayload(f"payload is nested more than {MAX_DEPTH} levels deep")
    try:
        data = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
    except InvalidPayload:
        raise
    except UnicodeDecodeError as exc:
        raise InvalidPayload(f"payload is not valid UTF-8: {exc.reason} at byte {exc.start}") from None
    except RecursionError:
        raise InvalidPayload(f"payload is nested more than {MAX_DEPTH} levels deep") from None
    except (TypeError, ValueError) as exc:
        raise InvalidPayload(f"payload is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidPayload(f"payload is a JSON {type(data).__name__}, not an object")
    if not isinstance(raw, (bytes, bytearray, str)) or _may_hold_surrogates(raw):
        _check_tree(data)   # else its depth was measured above, and no string holds a surrogate
    job_class = data.get("class")
    if not isinstance(job_class, str) or not job_class:
        raise InvalidPayload("payload has no 'class' string")
    args = data.get("args", [])
    if not isinstance(args, list):
        raise InvalidPayload(f"payload 'args' is a JSON {type(args).__name__}, not an array")
    job_id = data.get("id")
    if job_id is not None and not isinstance(job_id, str):
        raise InvalidPayload("payload 'id' is not a string")
    return data


def raw_payload_record(raw) -> dict:
    """What a failure entry holds for an item that could not be decoded: the
    raw text, in an object so resque-web and Ruby's failure tools still find
    ``class`` and ``args``."""
    text = raw.decode("utf-8", errors="backslashreplace") if isinstance(raw, bytes) else str(raw)
    return {"class": None, "args": [], "raw": text}
