"""The next job, taken with the last one's outcome, marked running in the
same step.

A worker says what it runs in Resque's working-on key (``<ns>:worker:<id>``:
queue, run_at, payload) and, for a job php-resque tracks, in its status
record. Sent on their own (worker.py ``mark_running``) they are a second
request per job beside the outcome's transaction; with no-op jobs that was
a third of a no-fork worker's time (each request wakes the server). So when
the next job is taken in that transaction (reserve.py ``take_in``), the
script that takes it writes the working-on key too, and says whether the
job has a status record: only then is the running status still sent apart
(its update keeps fields of the old record; see jobstatus.py), and only
then does the outcome's transaction update it (``Reserver.tracked``).

The key holds the payload as it was queued, byte for byte (what Ruby's
worker writes for a payload Ruby encoded); a job marked so that is not run
(the worker pauses, or its queue was paused) has the key deleted as it goes
back to its queue (reserve.py ``give_back``).
"""

import hashlib
import time

import redis

from resqued.resque import jobstatus, wire

# KEYS: the working-on key, queue1, inflight1, queue2, inflight2, ...;
# ARGV: the status keys' head ("<ns>:job:"), then for each queue its
# working-on record up to the payload -> {index, job, 1 if the job may have
# a status record (the worker updates it), 0 if surely not} of the first job
# found, in priority order, moved to its in-flight list; false if none.
# A status key as keys.py builds it: an id that is a string, a prefix that
# is a non-empty string other than "0" (a number: left to the worker, as
# JSON does not tell 5 from 5.0 here).
TAKE_MARKED = """
for i = 2, #KEYS, 2 do
  local job = redis.call('LMOVE', KEYS[i], KEYS[i + 1], 'LEFT', 'RIGHT')
  if job then
    local n = i / 2
    redis.call('SET', KEYS[1], ARGV[n + 1] .. job .. '}')
    local tracked = 1
    local ok, fields = pcall(cjson.decode, job)
    if ok and type(fields) == 'table' and type(fields['id']) == 'string' and fields['id'] ~= '' then
      local prefix = fields['prefix']
      if prefix == nil or prefix == cjson.null or type(prefix) == 'string' then
        if prefix == nil or prefix == cjson.null or prefix == '' or prefix == '0' then
          prefix = ''
        else
          prefix = prefix .. '_'
        end
        tracked = redis.call('EXISTS', ARGV[1] .. prefix .. fields['id'] .. ':status')
      end
    elseif ok then
      tracked = 0
    end
    return {n, job, tracked}
  end
end
return false
"""


TAKE_MARKED_SHA = hashlib.sha1(TAKE_MARKED.encode()).hexdigest()

_heads: dict = {}   # (working-on key, queues, second) -> the script's keys and arguments, made once a second


def take_command(keys, worker_id: str, queues: list[str], inflight) -> tuple:
    """The command that moves the first waiting job of ``queues`` to its
    in-flight list (``inflight(queue)``) and marks it running."""
    now = int(time.time())   # run_at's resolution
    working_on = keys.worker(worker_id)
    cached = _heads.get((working_on, tuple(queues), now))
    if cached is None:
        argv = [keys.status("")[:-len(":status")]]
        names = [working_on]
        for queue in queues:
            names += [keys.queue(queue), inflight(queue)]
            # The record as wire.working_on writes it, up to its payload.
            argv.append(wire.working_on(queue, None, now)[:-len("null}")])
        _heads.clear()
        # EVALSHA: the server need not read and hash the script's kilobyte
        # each time. A server that does not know it (restarted, failed over)
        # answers NOSCRIPT and nothing is taken: ``load`` then teaches it.
        cached = _heads[(working_on, tuple(queues), now)] = ("EVALSHA", TAKE_MARKED_SHA, len(names), *names, *argv)
    return cached


def unknown_script(reply) -> bool:
    """Whether ``reply`` (an error) says the server lacks the take's script."""
    # redis-py makes "NOSCRIPT ..." a NoScriptError, without the word.
    return isinstance(reply, redis.exceptions.NoScriptError) or str(reply).startswith("NOSCRIPT")


def load(client) -> None:
    client.execute_command("SCRIPT", "LOAD", TAKE_MARKED)


def running_marks(keys, worker_id: str, job, premarked: bool | None) -> list[tuple]:
    """The commands that mark ``job`` running that its take did not send
    (``premarked``: None when the take wrote nothing, else whether the job
    may have a status record)."""
    commands = []
    if premarked is None:
        commands.append(("SET", keys.worker(worker_id), wire.working_on(job.queue, job.payload)))
    status_key = keys.job_status(job.payload)
    if status_key is not None and premarked is not False:
        commands.append(jobstatus.update_command(status_key, wire.STATUS_RUNNING))
    return commands
