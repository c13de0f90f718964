"""What an ACL user must be allowed for resqued's workers, and which of it a
given connection lacks (``resqued --check``).

Redis 6.2 has no ACL DRYRUN, and ACL GETUSER needs rights few application
users have; so each command is sent once, in a form that changes nothing
outside a scratch key of our namespace. Redis checks the ACL before it runs
a command, so NOPERM answers exactly "not allowed", and any other reply
(nil, 0, NOSCRIPT, "no such client") means allowed. Commands inside
resqued's Lua scripts are checked against the same user, so they are here
too.
"""

import os

from resqued.redisio import direct
from resqued.redisio.refusals import lacks_permission


NO_CLIENT = str(2 ** 63 - 1)   # client ids count up from 1: this one is never reached
# Sent, but not needed: wait_replicas' WAIT, whose refusal a worker counts and
# logs as a write not replicated (worker/replicawait.py), and goes on.
NOT_NEEDED = ("wait",)


def _probes(k: str) -> list[tuple[str, tuple]]:
    """(the ACL name of a command, a harmless call of it) for each command
    the worker, its job children and recovery runs send. ``k`` is made a
    string that expires in a minute by the first probe: every other write
    meets it and is refused as WRONGTYPE (after the ACL check, which is what
    we ask), so nothing else is created, and nothing lasts if DEL is denied."""
    return [
        ("set", ("SET", k, "x", "PX", "60000")),
        ("ping", ("PING",)), ("info", ("INFO", "server")), ("time", ("TIME",)),
        ("client|setname", ("CLIENT", "SETNAME", "resqued-check")), ("client|id", ("CLIENT", "ID")),
        ("client|list", ("CLIENT", "LIST", "TYPE", "pubsub")),
        # An id no client has: CLIENT KILL ID 0 is no filter at all, and kills every client.
        ("client|unblock", ("CLIENT", "UNBLOCK", NO_CLIENT)), ("client|kill", ("CLIENT", "KILL", "ID", NO_CLIENT)),
        ("get", ("GET", k)), ("incrby", ("INCRBY", k, "0")), ("exists", ("EXISTS", k)), ("type", ("TYPE", k)),
        ("pttl", ("PTTL", k)),
        ("sadd", ("SADD", k, "x")), ("srem", ("SREM", k, "x")), ("smembers", ("SMEMBERS", k)),
        ("sismember", ("SISMEMBER", k, "x")), ("scard", ("SCARD", k)),
        ("hset", ("HSET", k, "f", "v")), ("hsetnx", ("HSETNX", k, "f", "v")), ("hdel", ("HDEL", k, "f")),
        ("hget", ("HGET", k, "f")), ("hgetall", ("HGETALL", k)),
        ("rpush", ("RPUSH", k, "x")), ("lpush", ("LPUSH", k, "x")), ("lset", ("LSET", k, "0", "x")),
        ("lrange", ("LRANGE", k, "0", "0")), ("lindex", ("LINDEX", k, "0")), ("llen", ("LLEN", k)),
        ("lpos", ("LPOS", k, "y")), ("lrem", ("LREM", k, "0", "x")), ("ltrim", ("LTRIM", k, "0", "-1")),
        # Delayed jobs (resque-scheduler's sorted set): enqueue_at and the scheduler.
        ("zadd", ("ZADD", k, "0", "x")), ("zrem", ("ZREM", k, "x")), ("zrange", ("ZRANGE", k, "0", "0")),
        ("zrangebyscore", ("ZRANGEBYSCORE", k, "0", "0")), ("zcard", ("ZCARD", k)), ("zscore", ("ZSCORE", k, "x")),
        ("zremrangebyscore", ("ZREMRANGEBYSCORE", k, "0", "0")),   # the fleet advertiser forgets dead masters
        ("lmove", ("LMOVE", k, k, "LEFT", "RIGHT")), ("blmove", ("BLMOVE", k, k, "LEFT", "RIGHT", "0.01")),
        ("eval", ("EVAL", "return 1", "0")), ("evalsha", ("EVALSHA", "0" * 40, "1", k)),
        ("script|load", ("SCRIPT", "LOAD", "return 1")),
        ("multi", ("MULTI",)), ("exec", ("EXEC",)), ("discard", ("DISCARD",)),
        ("watch", ("WATCH", k)), ("unwatch", ("UNWATCH",)),
        ("del", ("DEL", k)),
    ]


def missing_commands(client, namespace: str) -> list[str]:
    """The commands (ACL names, e.g. "blmove", "client|id") that ``client``'s
    user may not run, in the order of ``_probes``, and "keys <namespace>:*"
    if it may not touch our keys."""
    scratch = f"{namespace}:resqued:check:{os.urandom(6).hex()}"
    probes = _probes(scratch)
    replies = direct.execute(client, [call for _, call in probes], raise_errors=False)
    missing = []
    for (name, _), reply in zip(probes, replies):
        if lacks_permission(reply):
            # The command is allowed, but not on our keys (the user's ~pattern).
            name = f"keys {namespace}:*" if "key" in str(reply).lower() else name
            if name not in missing:
                missing.append(name)
    return missing
