"""Which Redis errors mean "Redis cannot serve us now": an outage to ride
out with backoff (the job and its outcome kept), not a bug to crash on.

A server can be unreachable (connection refused, timeouts, LOADING after a
restart) or reachable and refusing: OOM (maxmemory under noeviction),
READONLY (a replica, e.g. after a failover demoted it), MISCONF (a failed
background save with stop-writes-on-bgsave-error: what a full disk looks
like), MASTERDOWN (a replica cut off from its master), UNBLOCKED (a blocking
take cut short as the server turned replica). Each clears without
anything resqued could do, so a worker waits for it as it waits for a
restart. A refusal inside a Lua script comes back, on Redis 6.2, wrapped in
"Error running script ...: -OOM ...": the code is looked for there too.

NOPERM is different: an ACL user without a command resqued needs never
heals by waiting. It is a configuration error (``lacks_permission``).
"""

import re

import redis
from redis.exceptions import NoPermissionError, OutOfMemoryError, ReadOnlyError

_OUTAGE_TYPES = (redis.ConnectionError, redis.TimeoutError, OutOfMemoryError, ReadOnlyError)
# The reply's error code, at its start or, from a script, after "-".
_OUTAGE_CODES = re.compile(r"(?:^|: -)(?:OOM|READONLY|MISCONF|LOADING|MASTERDOWN|NOREPLICAS|BUSY|UNBLOCKED)\b")
# A script's ACL refusal reads otherwise: "The user executing the script
# can't run this command" (Redis 6.2, 7.0), "ACL failure in script" (7.2).
_NOPERM = re.compile(r"(?:^|: -)NOPERM\b|user executing the script can't run|ACL failure in script")
_STRIPPED_CODES = ((OutOfMemoryError, "OOM"), (ReadOnlyError, "READONLY"), (NoPermissionError, "NOPERM"))


def is_outage(exc: BaseException) -> bool:
    """Is ``exc`` Redis being away or refusing for now (worth waiting for)?"""
    if isinstance(exc, _OUTAGE_TYPES):
        return True
    return isinstance(exc, redis.ResponseError) and bool(_OUTAGE_CODES.search(str(exc)))


def lacks_permission(exc: BaseException) -> bool:
    """Is ``exc`` an ACL refusal (NOPERM): the Redis user lacks a command or key?"""
    if isinstance(exc, NoPermissionError):
        return True
    return isinstance(exc, redis.ResponseError) and bool(_NOPERM.search(str(exc)))


def describe(exc: BaseException) -> str:
    """One line for a log or a status: the reply as Redis wrote it
    (redis-py strips the code from the exceptions it maps, e.g. OOM)."""
    text = " ".join(str(exc).split())
    code = next((code for cls, code in _STRIPPED_CODES if isinstance(exc, cls)), None)
    if code and not text.startswith(code):
        text = f"{code} {text}"
    return text or type(exc).__name__
