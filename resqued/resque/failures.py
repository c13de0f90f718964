"""The failure backend: Resque's ``failed`` list, read and managed as
resque-web does (list, requeue, retry-and-remove, remove, clear), by index or
by job id.

An index names a position, and positions shift as entries are removed, so
each change is made to the entry as it was read (its stored bytes), wherever
it is by then: an entry changed or removed meanwhile is reported, never
mistaken for its neighbour."""

import json
import re
import uuid

from resqued.resque import wire

PAGE = 1000

# KEYS: failed list, queues set, the job's queue, its status key (the failed
#       list again for a job without id, unused)
# ARGV: the entry as read, what replaces it ('' removes it), the payload,
#       the queue's name, the status to set if tracked ('' for none)
# The job is queued before its entry changes: a script refused halfway (an
# ACL user without RPUSH) keeps what it wrote, and must not have dropped it.
_REQUEUE = """
local at = redis.call('LPOS', KEYS[1], ARGV[1])
if not at then return 0 end
redis.call('RPUSH', KEYS[3], ARGV[3])
if ARGV[2] == '' then
  redis.call('LREM', KEYS[1], 1, ARGV[1])
else
  redis.call('LSET', KEYS[1], at, ARGV[2])
end
redis.call('SADD', KEYS[2], ARGV[4])
if ARGV[5] ~= '' then redis.call('SET', KEYS[4], ARGV[5], 'XX') end
return 1
"""

# KEYS: failed list. ARGV: a unique marker, then index and stored bytes of
# each entry to remove. An entry still at its index is marked and all marks
# go in one LREM that stops at the last of them (they are near the head,
# where old entries are); one that moved is removed by its bytes.
_TRIM = """
local marked, removed = 0, 0
for i = 2, #ARGV, 2 do
  local at = tonumber(ARGV[i])
  if redis.call('LINDEX', KEYS[1], at) == ARGV[i + 1] then
    redis.call('LSET', KEYS[1], at, ARGV[1])
    marked = marked + 1
  else
    removed = removed + redis.call('LREM', KEYS[1], 1, ARGV[i + 1])
  end
end
if marked > 0 then removed = removed + redis.call('LREM', KEYS[1], marked, ARGV[1]) end
return removed
"""


def id_needle(job_id: str) -> bytes:
    """Bytes every stored payload of job ``job_id`` holds, to look for
    before decoding (most payloads are not the job's): the id itself when
    JSON writes it as is (a string, or php-resque's number), else nothing
    (an id JSON might escape is looked for in every payload)."""
    return job_id.encode() if re.fullmatch(r"[A-Za-z0-9_.:-]+", job_id) else b""


class FailureError(LookupError):
    pass


class FailureEntry(dict):
    """One failure entry, decoded, with the ``index`` it was read at; ``raw``
    (its stored bytes) finds it again however the list has moved since."""

    def __init__(self, fields: dict, index: int, raw: bytes):
        super().__init__(fields)
        self["index"] = index
        self.raw = raw

    @property
    def job_id(self):
        payload = self.get("payload")
        return payload.get("id") if isinstance(payload, dict) else None


class FailureBackend:
    def __init__(self, redis, keys):
        self.redis = redis
        self.keys = keys
        self._requeue = redis.register_script(_REQUEUE)
        self._trim = redis.register_script(_TRIM)

    def count(self) -> int:
        return self.redis.llen(self.keys.failed)

    def all(self, start: int = 0, count: int = 100) -> list[dict]:
        """Failure entries, oldest first, each with its ``index`` in the list."""
        raws = self.redis.lrange(self.keys.failed, start, start + count - 1)
        return [self._decode(raw, start + i) for i, raw in enumerate(raws)]

    def get(self, index: int) -> FailureEntry:
        raw = self.redis.lindex(self.keys.failed, index)
        if raw is None:
            raise FailureError(f"no failure at index {index} (there are {self.count()})")
        return self._decode(raw, index)

    def find(self, job_id: str) -> list[FailureEntry]:
        """The entries of job ``job_id``, oldest first: a job retried and
        failed again has one per failure."""
        return self.find_many([job_id])[job_id]

    def find_many(self, job_ids) -> dict[str, list[FailureEntry]]:
        """``find`` for several jobs in one pass over the list: job id ->
        its entries, oldest first (none: an empty list)."""
        wanted = {str(job_id): id_needle(str(job_id)) for job_id in job_ids}
        found = {job_id: [] for job_id in wanted}
        if not wanted:
            return found
        # One search for all the needles (an empty one matches every entry).
        needles = re.compile(b"|".join(re.escape(needle) for needle in sorted(set(wanted.values()))))
        start = 0
        while raws := self.redis.lrange(self.keys.failed, start, start + PAGE - 1):
            for i, raw in enumerate(raws):
                if not needles.search(raw):
                    continue
                entry = self._decode(raw, start + i)
                # php-resque lets the caller choose an id, which JSON may hold as a number.
                if entry.job_id is not None and str(entry.job_id) in found:
                    found[str(entry.job_id)].append(entry)
            start += len(raws)
        return found

    @staticmethod
    def _decode(raw, index) -> FailureEntry:
        try:
            entry = json.loads(raw)
            if not isinstance(entry, dict):
                raise ValueError
        except ValueError:
            entry = {"exception": None, "error": "undecodable failure entry",
                     "raw": raw.decode(errors="backslashreplace")}
        return FailureEntry(entry, index, raw)

    def requeue(self, entry: "int | FailureEntry", queue: str | None = None, remove: bool = False) -> dict:
        """Put the failed job back on its queue (or ``queue``), keeping its
        id, and mark the entry ``retried_at`` as resque-web does; with
        ``remove``, take the entry out instead (resque-web's "retry and
        remove"). ``entry``: an index, or an entry read before."""
        entry = self.get(entry) if isinstance(entry, int) else entry
        index = entry["index"]
        payload = entry.get("payload")
        if not isinstance(payload, dict) or not payload.get("class") or "raw" in payload:
            raise FailureError(f"failure {index} holds no runnable payload (it was undecodable); "
                               "remove it instead")
        target = queue or entry.get("queue")
        if not target:
            raise FailureError(f"failure {index} names no queue; give one")
        stored = {k: v for k, v in entry.items() if k != "index"}
        stored["retried_at"] = wire.retried_at_time()
        # A tracked job is waiting again; SET XX leaves untracked jobs untracked.
        job_id = payload.get("id")
        tracked = isinstance(job_id, (str, int)) and not isinstance(job_id, bool) and str(job_id) != ""
        status = wire.status_record(wire.STATUS_WAITING, started=True) if tracked else ""
        done = self._requeue(keys=[self.keys.failed, self.keys.queues, self.keys.queue(target),
                                   self.keys.status(str(job_id), payload.get("prefix")) if tracked
                                   else self.keys.failed],
                             args=[entry.raw, "" if remove else wire.dumps(stored), wire.dumps(payload),
                                   target, status])
        if not done:
            raise FailureError(f"failure {index} changed or was removed meanwhile; nothing retried")
        return stored

    def remove(self, entry: "int | FailureEntry") -> None:
        """By index, Resque's way: mark the slot with a unique value, then
        LREM it, so a concurrent push does not shift the wrong entry away.
        An entry read before is removed by its stored bytes, wherever it is."""
        if not isinstance(entry, int):
            if not self.redis.lrem(self.keys.failed, 1, entry.raw):
                raise FailureError(f"failure {entry['index']} changed or was removed meanwhile")
            return
        index = entry
        marker = f"__resqued_removed_{uuid.uuid4().hex}"
        try:
            self.redis.lset(self.keys.failed, index, marker)
        except Exception as exc:
            if "index out of range" in str(exc) or "no such key" in str(exc):
                raise FailureError(f"no failure at index {index} (there are {self.count()})") from None
            raise
        self.redis.lrem(self.keys.failed, 1, marker)

    def clear_older_than(self, cutoff: float) -> dict:
        """Remove the entries that failed before ``cutoff`` (a timestamp):
        ``{"cleared", "kept_newer", "kept_undated"}``. An entry whose
        ``failed_at`` cannot be read is kept, whatever its age. Entries are
        removed by their stored bytes, so one retried or pushed meanwhile is
        never taken for another."""
        counts = {"cleared": 0, "kept_newer": 0, "kept_undated": 0}
        start = 0
        while raws := self.redis.lrange(self.keys.failed, start, start + PAGE - 1):
            old = []
            for i, raw in enumerate(raws):
                failed_at = wire.failed_at_latest(self._decode(raw, 0).get("failed_at"))
                if failed_at is None:
                    counts["kept_undated"] += 1
                elif failed_at < cutoff:
                    old += [start + i, raw]
                else:
                    counts["kept_newer"] += 1
            removed = self._trim(keys=[self.keys.failed],
                                 args=[f"__resqued_trimmed_{uuid.uuid4().hex}", *old]) if old else 0
            counts["cleared"] += removed
            # The next page starts after this one, as the list is now.
            start += len(raws) - removed
        return counts

    def clear(self) -> int:
        pipe = self.redis.pipeline(transaction=True)
        pipe.llen(self.keys.failed)
        pipe.delete(self.keys.failed)
        return pipe.execute()[0]
