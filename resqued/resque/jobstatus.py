"""Updating a tracked job's status as php-resque >= 1.3 does: a new
``status`` and ``updated``, keeping the record's ``started`` (when the job
was enqueued) and ``result``.

Keeping them needs the old record, so the update is a Lua call: it reads and
writes in the server, in the same round trip as the commands around it (the
worker's running mark and its outcome transaction). Like php-resque's
``isTracking()``, it writes nothing when the job has no status (untracked).
"""

import time

# Defines update_status(key, code, updated, expire) for the scripts below and
# recovery.py's. The record is built as text, not with cjson.encode, so that
# its fields keep php-resque's order (status, updated, started, result).
LUA_UPDATE_STATUS = """
local function update_status(key, code, updated, expire)
  local old = redis.call('GET', key)
  if not old then return 0 end
  local record = '{"status":' .. code .. ',"updated":' .. updated
  local ok, fields = pcall(cjson.decode, old)
  if ok and type(fields) == 'table' then
    local started = fields['started']
    if type(started) == 'number' then
      record = record .. ',"started":' .. string.format(started % 1 == 0 and '%d' or '%.17g', started)
    end
    if fields['result'] ~= nil then
      record = record .. ',"result":' .. cjson.encode(fields['result'])
    end
  end
  record = record .. '}'
  if tonumber(expire) > 0 then
    redis.call('SET', key, record, 'EX', expire)
  else
    redis.call('SET', key, record)
  end
  return 1
end
"""

# KEYS: the status key; ARGV: code, updated (Unix seconds), expire (seconds, 0: none)
_UPDATE = LUA_UPDATE_STATUS + "return update_status(KEYS[1], ARGV[1], ARGV[2], ARGV[3])\n"


def update_command(key: str, code: int, expire: int = 0, ts: float | None = None) -> tuple:
    """The command that updates the status at ``key`` to ``code``;
    ``expire``: its TTL in seconds (php-resque gives a failed or complete
    status a day), 0 for none."""
    # EVAL, not EVALSHA: in a transaction a NOSCRIPT error could not be
    # retried alone; the server caches the script body by its hash anyway.
    return ("EVAL", _UPDATE, 1, key, code, int(time.time() if ts is None else ts), expire)


def add_update(pipe, key: str, code: int, expire: int = 0) -> None:
    """Queue ``update_command`` on ``pipe`` (anything with ``execute_command``)."""
    pipe.execute_command(*update_command(key, code, expire))
