"""The next job, taken with the last one's outcome, marked running in the
same step.

A worker says what it runs in Resque's working-on key (``<ns>:worker:<id>``:
queue, run_at, payload) and, for a job php-resque tracks, in its status
record. Sent on their own (worker.py ``mark_running``) they are a second
request per job beside the outcome's transaction; with no-op jobs that was
a third of a no-fork worker's time (each request wakes the server). So when
the next job is taken in that transaction (reserve.py ``take_in``), the
script that takes it writes the working-on key and the running status too
(jobstatus.py's update: nothing without a status record).

Whether a job has a status record is never decided at the take: php-resque
(``Resque_Job::create``) pushes the job first and writes its status after,
in another request, so a job may be taken before its record exists. The
outcome's update is therefore always sent (it too writes nothing without a
record); a record written after the take ends complete or failed all the same.

The key holds the payload as it was queued, byte for byte (what Ruby's
worker writes for a payload Ruby encoded). A payload that is not JSON gets
no record (Ruby's ``Worker#job`` would raise reading it, breaking
resque-web's workers page and Ruby's prune); such a job fails unrun anyway.
A job marked so that is not run (the worker pauses, or its queue was
paused) goes back to its queue with the key deleted and its status waiting
again (reserve.py ``give_back``).
"""

import hashlib
import time

import redis

from resqued.resque import jobstatus, wire

# KEYS: the working-on key, queue1, inflight1, queue2, inflight2, ...;
# ARGV: the status keys' head ("<ns>:job:"), the running status's code, now
# (Unix seconds), then for each queue its working-on record up to the
# payload -> {index, job, marked} of the first job found, in priority order,
# moved to its in-flight list; false if none. ``marked``: 1 if the job's
# working-on key and status (if it has a record) were written, 0 if the
# status is left to the worker; absent if nothing was written (not JSON).
# A status key as keys.py builds it: an id that is a string, a prefix that
# is a string ("" and "0": none); a prefix of another type (a number: JSON
# does not tell 5 from 5.0 here) is left to the worker.
TAKE_MARKED = jobstatus.LUA_UPDATE_STATUS + """
for i = 2, #KEYS, 2 do
  local job = redis.call('LMOVE', KEYS[i], KEYS[i + 1], 'LEFT', 'RIGHT')
  if job then
    local n = i / 2
    local ok, fields = pcall(cjson.decode, job)
    if not ok or type(fields) ~= 'table' then
      return {n, job}
    end
    redis.call('SET', KEYS[1], ARGV[n + 3] .. job .. '}')
    local id = fields['id']
    if type(id) == 'string' and id ~= '' then
      local prefix = fields['prefix']
      if prefix == nil or prefix == cjson.null or prefix == '' or prefix == '0' then
        prefix = ''
      elseif type(prefix) == 'string' then
        prefix = prefix .. '_'
      else
        return {n, job, 0}
      end
      update_status(ARGV[1] .. prefix .. id .. ':status', ARGV[2], ARGV[3], 0)
    end
    return {n, job, 1}
  end
end
return false
"""


TAKE_MARKED_SHA = hashlib.sha1(TAKE_MARKED.encode()).hexdigest()

_heads: dict = {}   # (working-on key, queues, second) -> the script's keys and arguments, made once a second


def take_command(keys, worker_id: str, queues: list[str], inflight, by_body: bool = False) -> tuple:
    """The command that moves the first waiting job of ``queues`` to its
    in-flight list (``inflight(queue)``) and marks it running. ``by_body``:
    the server lacks the script (it answered NOSCRIPT): send it whole."""
    now = int(time.time())   # run_at's resolution
    working_on = keys.worker(worker_id)
    cached = _heads.get((working_on, tuple(queues), now))
    if cached is None:
        argv = [keys.status("")[:-len(":status")], wire.STATUS_RUNNING, now]
        names = [working_on]
        for queue in queues:
            names += [keys.queue(queue), inflight(queue)]
            # The record as wire.working_on writes it, up to its payload.
            argv.append(wire.working_on(queue, None, now)[:-len("null}")])
        _heads.clear()
        # EVALSHA: the server need not read and hash the script's kilobyte
        # each time. A server that does not know it (restarted, failed over)
        # answers NOSCRIPT and nothing is taken: the next take is then an
        # EVAL, which teaches it (no SCRIPT LOAD apart: a request that could
        # fail after the outcome was committed, see reserve.py ``taken``).
        cached = _heads[(working_on, tuple(queues), now)] = ("EVALSHA", TAKE_MARKED_SHA, len(names), *names, *argv)
    return ("EVAL", TAKE_MARKED, *cached[2:]) if by_body else cached


def unknown_script(reply) -> bool:
    """Whether ``reply`` (an error) says the server lacks the take's script."""
    # redis-py makes "NOSCRIPT ..." a NoScriptError, without the word.
    return isinstance(reply, redis.exceptions.NoScriptError) or str(reply).startswith("NOSCRIPT")


def running_marks(keys, worker_id: str, job, premarked: bool | None) -> list[tuple]:
    """The commands that mark ``job`` running that its take did not send
    (``premarked``: None when the take wrote nothing, else whether it wrote
    the running status as well as the working-on key)."""
    if premarked:
        return []
    commands = []
    if premarked is None:
        commands.append(("SET", keys.worker(worker_id), wire.working_on(job.queue, job.payload)))
    status_key = keys.job_status(job.payload)
    if status_key is not None:
        commands.append(jobstatus.update_command(status_key, wire.STATUS_RUNNING))
    return commands
