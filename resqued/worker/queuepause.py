"""Queues paused fleet-wide (``<ns>:resqued:paused_queues``, a set of queue
names that ``resquectl pause --queue Q --fleet`` or any tool sets), as a
worker honours them with its takes:

- a take that does not block (the next job taken with the last one's
  outcome, or the first waiting job of several queues) is a script that
  skips a paused queue in the same atomic step: no job of it ever leaves
  its queue;
- the read that follows every take (Resque's pause-all-workers key, see
  reserve.py) reads the set too, in one script: so a job a blocking take
  (BLMOVE) got from a queue paused meanwhile goes back to the head of its
  queue, as one taken while pause-all-workers is set does;
- a worker does not wait on a queue it knows is paused, and while one of
  its queues is, it reads the set again at least every RECHECK seconds: a
  resumed queue is taken from again within about a second (or, for a
  worker waiting on its other queues, when that wait ends: ``interval``).

No extra round trip while jobs flow: what is read rides on the takes.
"""

import time

from resqued.fleet.keys import FleetKeys
from resqued.resque.queuestats import pause_requested

RECHECK = 1.0

# KEYS: pause-all-workers, paused_queues -> {pause-all-workers' value, the
# paused queues}. A key of the wrong type reads as "not paused", as a
# failed GET of pause-all-workers always did; never an error that would
# fail the take it rides with.
_READ = """
local all = redis.pcall('GET', KEYS[1])
if type(all) == 'table' then all = false end
local queues = {}
if redis.call('TYPE', KEYS[2]).ok == 'set' then queues = redis.call('SMEMBERS', KEYS[2]) end
return {all, queues}
"""

# KEYS: paused_queues, queue1, inflight1, queue2, inflight2, ...; ARGV: the
# queues' names -> {index, job} of the first job found in a queue not
# paused, in priority order, moved to its in-flight list.
_TAKE = """
local check = redis.call('TYPE', KEYS[1]).ok == 'set'
for i = 2, #KEYS, 2 do
  local n = i / 2
  if not (check and redis.call('SISMEMBER', KEYS[1], ARGV[n]) == 1) then
    local job = redis.call('LMOVE', KEYS[i], KEYS[i + 1], 'LEFT', 'RIGHT')
    if job then return {n, job} end
  end
end
return false
"""


class QueuePauses:
    def __init__(self, client, keys):
        self.client = client
        self.keys = keys
        self.paused_key = FleetKeys(keys.namespace).paused_queues
        self.queues = frozenset()   # paused, as last read
        self.read_at = 0.0          # time.monotonic() of that read

    def read_command(self) -> tuple:
        """The command that follows a take: its reply goes to ``seen``."""
        return "EVAL", _READ, 2, self.keys.pause_all, self.paused_key

    def take_command(self, queues, inflight) -> tuple:
        """The command that moves the first waiting job of ``queues`` not
        paused (``inflight(queue)``: its in-flight list) -> {index, job} or nil."""
        keys = [self.paused_key]
        for queue in queues:
            keys += [self.keys.queue(queue), inflight(queue)]
        # EVAL, not EVALSHA: a redis-py pipeline with a script in it first
        # asks the server whether it knows the script, a round trip per
        # job; the server caches the script body by its hash anyway.
        return ("EVAL", _TAKE, len(keys), *keys, *queues)

    def seen(self, reply) -> bool:
        """Take in ``read_command``'s reply; whether pause-all-workers is set."""
        if not isinstance(reply, list) or len(reply) != 2:
            return pause_requested(reply)   # an error reply: nothing learnt
        everything, queues = reply
        self.queues = frozenset(q.decode(errors="replace") for q in queues or ())
        self.read_at = time.monotonic()
        return pause_requested(everything)

    def unpaused(self, queues: list[str]) -> list[str]:
        """``queues`` without those paused fleet-wide (read again if that
        leaves one out and was read over RECHECK seconds ago)."""
        if self.queues and time.monotonic() - self.read_at >= RECHECK:
            self.seen(self.client.execute_command(*self.read_command()))
        return [q for q in queues if q not in self.queues] if self.queues else queues
