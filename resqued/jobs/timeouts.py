"""Job timeouts, as a job sees them: ``resqued.JobTimeout``, a job class's
own ``timeout``, and which limit a job runs under. Pure (no process or
Redis code): the registry checks classes with it, the worker
(worker/execution/jobtimeout.py) enforces what it decides.

A job's limit is its class's ``timeout`` attribute when it has one, else
its pool's ``job_timeout``: the job knows how long it needs (a report that
takes ten minutes in a pool of one-second mails), as with Sidekiq's and
RQ's per-job timeouts, which also beat their defaults.
"""

import math


class JobTimeout(Exception):
    """A job ran past its timeout and was stopped (TERM, then KILL after
    term_timeout). onFailure listeners get it; the failed entry names it
    ``resqued.JobTimeout``."""


# Named as users import it (resqued.JobTimeout), which is also how
# jobs.job.exception_name, and so a failed entry, names it.
JobTimeout.__module__ = "resqued"


# ``job_timeout`` is ours and unambiguous: it wins and is checked strictly.
# ``timeout`` is the name users ask for, but a class may carry one meant for
# something else (requests' ``(3.05, 27)``, a ``timeout()`` method, a
# client's own number): an invalid one is ignored with a warning at load,
# not refused, and a valid number is taken as the job's (the hazard the
# docs name).
OWN = "job_timeout"
PLAIN = "timeout"


def class_timeout(target) -> float | None:
    """The job class's (or function's) own timeout, in seconds; None
    without one. ``job_timeout`` (checked at load: timeout_problem) beats
    ``timeout``, which counts only when valid (timeout_ignored)."""
    if hasattr(target, OWN):
        value = getattr(target, OWN)
        return None if value is None else float(value)
    value = getattr(target, PLAIN, None)
    return None if value is None or _problem(value) else float(value)


def _problem(value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        return f"must be a number of seconds greater than 0 (or None), not {shown}"
    return None


def timeout_problem(target) -> str | None:
    """What is wrong with the ``job_timeout`` of a job class or function,
    if anything (the job is refused)."""
    value = getattr(target, OWN, None)
    problem = None if value is None else _problem(value)
    return f"{OWN} {problem}" if problem else None


def timeout_ignored(target) -> str | None:
    """Why a class's plain ``timeout`` is not taken as its job's, if it is not."""
    if hasattr(target, OWN):
        return None
    value = getattr(target, PLAIN, None)
    problem = None if value is None else _problem(value)
    return f"{PLAIN} {problem}: ignored (set {OWN} for the job's own)" if problem else None


def limit_for(pool_timeout: float | None, target) -> float | None:
    """The seconds a job of ``target`` may run: its class's timeout, else
    the pool's ``job_timeout``; None: no limit."""
    own = class_timeout(target)
    return own if own is not None else pool_timeout


def timeout_message(limit: float, ran: float) -> str:
    """The failure's error text: the limit and how long the job ran."""
    return f"job ran past its {limit:g} s timeout (ran {ran:.1f} s)"
