"""Job timeouts on the worker's side: what the job child's title shows, the
failure of a job stopped past its limit, and the word a ``fork: false``
worker says about the limits it cannot enforce. Which limit a job has is
jobs/timeouts.py's; the watch that stops it is childwatch.py's.

The pool's ``job_timeout`` is set here once per process (``use_pool_timeout``,
by ForkingExecution as the worker starts), before any job child or job
forker is forked: they inherit it, and a child titles itself with its
deadline without the limit crossing the job forker's protocol.
"""

import json
import logging
import time

from resqued.jobs import events
from resqued.jobs.timeouts import JobTimeout, class_timeout, limit_for, timeout_message
from resqued.process.title import stamp
from resqued.resque.outcome import JOB_TIMEOUT, Failure

log = logging.getLogger("resqued.worker")

_pool_timeout = None   # this worker's pool's job_timeout (use_pool_timeout)


def use_pool_timeout(seconds: float | None) -> None:
    global _pool_timeout
    _pool_timeout = seconds


def processing_title(job, target) -> str:
    """The job child's title: Resque's ``Processing <queue> since <time>
    [<class>]``, which Resque's tools parse, then `` until <deadline>`` for
    a job with a limit."""
    started = time.time()
    title = f"Processing {job.queue} since {stamp(started)} [{job.job_class}]"
    limit = limit_for(_pool_timeout, target)
    return title if limit is None else f"{title} until {stamp(started + limit)}"


def timeout_failure(job, limit: float, ran: float, report: bytes) -> Failure:
    """The failure of a job stopped for running past ``limit`` seconds (it
    ran ``ran``), whatever its child reported after the TERM. A job that
    catches TERM and raises has had its onFailure listeners called in the
    child with that exception, which the error text adds; otherwise they are
    called here, with JobTimeout."""
    error = timeout_message(limit, ran)
    reported = _reported_failure(report)
    if reported is not None:
        return Failure(JOB_TIMEOUT, f"{error}; on TERM it raised {reported}")
    try:
        events.trigger("onFailure", JobTimeout(error), job)
    except Exception:
        log.exception("onFailure listener raised")
    return Failure(JOB_TIMEOUT, error)


def _reported_failure(report: bytes) -> str | None:
    """The exception a job child's report names (``Class: message``), if it reported one."""
    try:
        result = json.loads(report.split(b"\n", 1)[0])
        return None if result.get("ok") else f"{result['exception']}: {result['error']}"
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def warn_unenforced(targets, worker_id: str) -> None:
    """A fork: false worker runs its jobs inside itself, where a timeout
    cannot be enforced (config/loader.py refuses a pool's job_timeout
    there): a job class's own timeout is said once, at start, to be ignored."""
    timed = sorted(f"{getattr(t, '__module__', '?')}.{getattr(t, '__qualname__', t)}" for t in targets
                   if class_timeout(t) is not None)
    if timed:
        log.warning("worker %s: fork: false: the timeout of %s is not enforced (a job running inside the "
                    "worker cannot be stopped without killing it)", worker_id, ", ".join(timed))

