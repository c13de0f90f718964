"""Queues paused fleet-wide (``<ns>:resqued:paused_queues``, a set of queue
names that ``resquectl pause --queue Q --fleet`` or any tool sets), as a
worker honours them with its takes:

- every take is followed, on the same connection, by a read of the set
  and of Resque's pause-all-workers key (``READ``: plain GET and SMEMBERS,
  no script); a take with an outcome (reserve.py ``take_in``) and its read
  are one transaction, a blocking take's read runs when BLMOVE returns. A
  job taken from a queue that read finds paused goes back to the head of
  its queue unrun (``paused``), as one taken while pause-all-workers is set
  does: so a job of a paused queue never runs;
- a take leaves out the queues the last read found paused (``takeable``):
  while jobs flow and nothing is paused, a take is a plain LMOVE and costs
  nothing more than before the set existed; once a read sees a queue
  paused, no job of it is taken again until a read sees it resumed;
- a key of the wrong type (either one) reads as "not paused": its error
  reply never fails the take it rides with;
- a worker does not wait on a queue it knows is paused, and while one of
  its queues is, it reads the set again at least every RECHECK seconds: a
  resumed queue is taken from again within about a second (or, for a
  worker waiting on its other queues, when that wait ends: ``interval``).

No extra round trip while jobs flow: what is read rides on the takes.
"""

import time

import redis

from resqued.fleet.keys import FleetKeys
from resqued.redisio import direct
from resqued.resque.queuestats import pause_requested

RECHECK = 1.0


class QueuePauses:
    def __init__(self, client, keys):
        self.client = client
        self.keys = keys
        self.paused_key = FleetKeys(keys.namespace).paused_queues
        self.queues = frozenset()   # paused, as last read
        self.read_at = 0.0          # time.monotonic() of that read

    def read_commands(self) -> list[tuple]:
        """The commands that follow a take: their replies go to ``seen``."""
        return [("GET", self.keys.pause_all), ("SMEMBERS", self.paused_key)]

    def seen(self, replies: list) -> bool:
        """Take in the replies to ``read_commands``; whether pause-all-workers
        is set. An error reply (a key of the wrong type) reads as "not
        paused", as a failed GET of pause-all-workers always did."""
        everything, queues = replies
        if isinstance(queues, redis.ResponseError):
            queues = ()
        self.queues = frozenset(q.decode(errors="replace") for q in queues or ())
        self.read_at = time.monotonic()
        return pause_requested(everything)

    def takeable(self, queues: list[str]) -> list[str]:
        """``queues`` without those the last read found paused (a queue
        paused since is caught by the read that follows the take)."""
        return [q for q in queues if q not in self.queues] if self.queues else queues

    def paused(self, queue: str) -> bool:
        """Whether the last read found ``queue`` paused: a job just taken
        from it goes back unrun."""
        return queue in self.queues

    def unpaused(self, queues: list[str]) -> list[str]:
        """``queues`` without those paused fleet-wide (read again if that
        leaves one out and was read over RECHECK seconds ago)."""
        if self.queues and time.monotonic() - self.read_at >= RECHECK:
            self.seen(direct.execute(self.client, self.read_commands(), raise_errors=False))
        return self.takeable(queues)
