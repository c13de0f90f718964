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


def class_timeout(target) -> float | None:
    """The job class's (or function's) own ``timeout``, in seconds; None
    without one. Checked when the worker's job table is built (timeout_problem)."""
    value = getattr(target, "timeout", None)
    return None if value is None else float(value)


def timeout_problem(target) -> str | None:
    """What is wrong with the ``timeout`` of a job class or function, if anything."""
    value = getattr(target, "timeout", None)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        return f"timeout must be a number of seconds greater than 0 (or None), not {shown}"
    return None


def limit_for(pool_timeout: float | None, target) -> float | None:
    """The seconds a job of ``target`` may run: its class's timeout, else
    the pool's ``job_timeout``; None: no limit."""
    own = class_timeout(target)
    return own if own is not None else pool_timeout


def timeout_message(limit: float, ran: float) -> str:
    """The failure's error text: the limit and how long the job ran."""
    return f"job ran past its {limit:g} s timeout (ran {ran:.1f} s)"
