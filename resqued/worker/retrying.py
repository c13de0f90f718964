"""The worker's side of retries: whether a failed attempt is retried
(jobs/retries.py decides), its log line, and what the outcome's transaction
is to write (resque/retried.py: a delayed job instead of a failed entry).

The attempt number travels in the payload (``attempt``, 1 when absent), so
a retry is an ordinary delayed job that any scheduler moves; a requeue after
a stop or a lost worker keeps it (that run was no attempt).
"""

import logging
import random
import sys
import time

from resqued.jobs.retries import ClassRetries, class_name, retry_delay
from resqued.process.logs import job_event
from resqued.resque.retried import attempt_of

log = logging.getLogger("resqued.worker")

_by_target: dict = {}   # id(target) -> ClassRetries: validated when the registry was built


def exception_chain(name: str) -> list[str]:
    """For a failure that carries no lineage (one the worker detected, or
    reported by an older job child): the exception name, then its base classes' names, when
    the class is loaded in this worker (the job child raised it, the worker
    imported the same modules); else the name alone. Nothing is imported:
    ``retry_on = (OSError,)`` then also covers ConnectionError."""
    module, _, qualname = name.rpartition(".")
    found = sys.modules.get(module or "builtins")
    for part in qualname.split("."):
        found = getattr(found, part, None) if found is not None else None
    if not isinstance(found, type) or not issubclass(found, BaseException):
        return [name]
    return [name, *(class_name(cls) for cls in found.__mro__[1:] if issubclass(cls, BaseException))]


def judge(job, target, failure, spec) -> bool:
    """Whether ``failure`` (of ``job``, a run of ``target``) is retried. If
    so, it is marked for the outcome's transaction (``failure.retry``:
    due time, next attempt) and logged here; if the job had a policy and it
    is spent, ``failure.attempts`` records how many runs it had."""
    retries = _by_target.get(id(target))
    if retries is None:
        retries = _by_target[id(target)] = ClassRetries(target)
    policy = retries.policy_in(spec.retry)
    if policy is None:
        return False
    attempt = attempt_of(job.payload)
    chain = failure.lineage or exception_chain(failure.exception)
    seconds = retry_delay(policy, retries, chain, attempt, random.random())
    if seconds is None:
        failure.attempts = attempt
        return False
    failure.retry = (int(time.time() + seconds), attempt + 1)
    log.warning("job %s %s on %s failed (attempt %d of %d): %s: %s; retry in %s s", job.label,
                job.job_class, job.queue, attempt, policy["attempts"], failure.exception, failure.error,
                f"{seconds:.0f}" if seconds >= 1 else f"{seconds:.1f}",
                extra=job_event("job_retrying", job, exception=failure.exception, error=failure.error,
                                attempt=attempt, retry_in_ms=round(seconds * 1000)))
    return True

