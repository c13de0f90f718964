"""The failure backend: Resque's ``failed`` list, read and managed as
resque-web does (list, requeue, remove, clear)."""

import json
import uuid

from resqued.resque import wire


class FailureError(LookupError):
    pass


class FailureBackend:
    def __init__(self, redis, keys):
        self.redis = redis
        self.keys = keys

    def count(self) -> int:
        return self.redis.llen(self.keys.failed)

    def all(self, start: int = 0, count: int = 100) -> list[dict]:
        """Failure entries, oldest first, each with its ``index`` in the list."""
        raws = self.redis.lrange(self.keys.failed, start, start + count - 1)
        return [self._decode(raw, start + i) for i, raw in enumerate(raws)]

    def get(self, index: int) -> dict:
        raw = self.redis.lindex(self.keys.failed, index)
        if raw is None:
            raise FailureError(f"no failure at index {index} (there are {self.count()})")
        return self._decode(raw, index)

    @staticmethod
    def _decode(raw, index) -> dict:
        try:
            entry = json.loads(raw)
            if not isinstance(entry, dict):
                raise ValueError
        except ValueError:
            entry = {"exception": None, "error": "undecodable failure entry",
                     "raw": raw.decode(errors="backslashreplace")}
        entry["index"] = index
        return entry

    def requeue(self, index: int, queue: str | None = None) -> dict:
        """Put the failed job back on its queue (or ``queue``), keeping its id,
        and mark the entry ``retried_at`` as resque-web does."""
        entry = self.get(index)
        payload = entry.get("payload")
        if not isinstance(payload, dict) or not payload.get("class") or "raw" in payload:
            raise FailureError(f"failure {index} holds no runnable payload (it was undecodable); "
                               "remove it instead")
        target = queue or entry.get("queue")
        if not target:
            raise FailureError(f"failure {index} names no queue; give one")
        stored = {k: v for k, v in entry.items() if k != "index"}
        stored["retried_at"] = wire.retried_at_time()
        pipe = self.redis.pipeline(transaction=True)
        pipe.lset(self.keys.failed, index, wire.dumps(stored))
        pipe.sadd(self.keys.queues, target)
        pipe.rpush(self.keys.queue(target), wire.dumps(payload))
        if payload.get("id"):
            # A tracked job is waiting again; SET XX leaves untracked jobs untracked.
            pipe.set(self.keys.status(payload["id"]), wire.status_record(wire.STATUS_WAITING, started=True), xx=True)
        pipe.execute()
        return stored

    def remove(self, index: int) -> None:
        """Resque's way: mark the slot with a unique value, then LREM it, so a
        concurrent push does not shift the wrong entry away."""
        marker = f"__resqued_removed_{uuid.uuid4().hex}"
        try:
            self.redis.lset(self.keys.failed, index, marker)
        except Exception as exc:
            if "index out of range" in str(exc) or "no such key" in str(exc):
                raise FailureError(f"no failure at index {index} (there are {self.count()})") from None
            raise
        self.redis.lrem(self.keys.failed, 1, marker)

    def clear(self) -> int:
        pipe = self.redis.pipeline(transaction=True)
        pipe.llen(self.keys.failed)
        pipe.delete(self.keys.failed)
        return pipe.execute()[0]
