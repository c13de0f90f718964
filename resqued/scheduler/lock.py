"""resque-scheduler's master lock, with its semantics: whoever holds
``resque_scheduler_master_lock`` moves delayed jobs, and nobody else.

Ruby (lib/resque/scheduler/lock/resilient.rb) takes it with SETNX and an
EXPIRE of ``lock_timeout`` (LOCK_TIMEOUT, 180 s by default), renews that
expiry while GET still returns its own value (``hostname:pid``), and, when
it stops, deletes it only if the value is still its own. A holder that dies
keeps it until it expires: another scheduler takes over within the TTL.

The key is taken under both names Ruby may use (delayed.DelayedKeys.
master_locks), in one script: a resqued scheduler holds both or neither, so
it never moves beside a Ruby scheduler holding either. Every move also
checks the lock in its own script (delayedmove._MOVE): a scheduler paused
past the TTL and replaced moves nothing when it wakes.
"""

import os
import secrets

from resqued.resque.delayed import DelayedKeys
from resqued.process.hostname import hostname

DEFAULT_TIMEOUT = 180

# KEYS: the lock's names. ARGV: our value, the TTL in seconds. Taken (or
# renewed) only if every name is free or already ours.
_TAKE = """
for _, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if holder and holder ~= ARGV[1] then return 0 end
end
for _, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[1], 'EX', ARGV[2])
end
return 1
"""

_RELEASE = """
local released = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then released = released + redis.call('DEL', key) end
end
return released
"""


class MasterLock:
    def __init__(self, redis, keys, timeout: int = DEFAULT_TIMEOUT, value: str | None = None):
        self.redis = redis
        self.names = list(DelayedKeys(keys).master_locks)
        self.timeout = int(timeout)
        # Ruby's value, hostname and pid (lock/base.rb:22-24), and a token:
        # containers may share a hostname and each run as pid 1.
        self.value = value or f"{hostname()}:{os.getpid()}:{secrets.token_hex(6)}"
        self._take = redis.register_script(_TAKE)
        self._release = redis.register_script(_RELEASE)

    def take(self) -> bool:
        """Acquire the lock, or renew it if ours; whether we hold it now."""
        return self._take(keys=self.names, args=[self.value, self.timeout]) == 1

    def holder(self) -> str | None:
        for name in self.names:
            value = self.redis.get(name)
            if value is not None:
                return value.decode(errors="replace")
        return None

    def release(self) -> bool:
        return self._release(keys=self.names, args=[self.value]) > 0
