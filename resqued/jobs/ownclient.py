"""resqued's own client for jobs: ``resqued.client()``, ``resqued.enqueue``
and ``resqued.enqueue_call``, for a job (or a listener) that enqueues other
jobs on its worker's Redis and namespace, as Ruby's jobs call the global
``Resque.enqueue``.

Its connection is what a fresh job child pays for: building a redis-py
client and connecting it cost ~2 ms in a freshly forked child, more than
a no-op job. So the client object is built once, in the worker (its job
children inherit it), and when the app asked for it ahead (``client()``
called in the worker: at a job module's top level, or in a beforeFirstFork
or childReady listener) each standby connects it before its job arrives
(``open_ahead``, childready.py). Without that, it connects on first use,
in the job.

The module loads no redis-py until the client is built: the master
imports ``resqued``.
"""

import logging

log = logging.getLogger("resqued.jobs")

_where: tuple[str, str] | None = None   # (redis URL, namespace): the worker's
_resque = None                          # the Resque, once built
_wanted = False                         # client() was called: open it in each standby


class NotInWorker(RuntimeError):
    """resqued.client() used outside a worker's process."""


class _Client:
    """What ``client()`` returns: the Resque of the worker, built on first
    use, so that a job module may take it at import time (in the master's
    config probe, too, which never uses it)."""

    def __getattr__(self, name):
        return getattr(_built(), name)

    def __repr__(self):
        return f"<resqued job client {_built()!r}>" if _where else "<resqued job client (no worker)>"


_CLIENT = _Client()


def client() -> _Client:
    """The worker's Resque (its Redis URL and namespace), for code that runs
    in a worker: a job, a listener. Called in the worker before its jobs
    run, it has each job child connect it before its job arrives."""
    global _wanted
    _wanted = True
    return _CLIENT


def enqueue(queue: str, job_class: str, args=None, **options):
    """``client().enqueue``: php-resque's ``Resque::enqueue``."""
    return _built().enqueue(queue, job_class, args, **options)


def enqueue_call(queue: str, job_class: str, *args, **options):
    """``client().enqueue_call``: Ruby's ``Resque.enqueue(Klass, *args)``."""
    return _built().enqueue_call(queue, job_class, *args, **options)


def attach(url: str, namespace: str) -> None:
    """In the worker, before its first job child: where the client points.
    Built now if it is wanted, so that no child builds it."""
    global _where, _resque
    if _where != (url, namespace):
        _where, _resque = (url, namespace), None
    if _wanted:
        _built()


def open_ahead() -> None:
    """In a standby (or an inline worker, once): connect the client if it
    is wanted. A Redis that refuses now is the job's to meet: the job's
    first call connects again, and fails as it would have."""
    if not (_wanted and _where):
        return
    try:
        _built().connect_ahead()
    except Exception as exc:   # redis-py's errors, or a bad URL: the job meets them again
        log.debug("job client: could not connect ahead: %s", exc)


def _built():
    global _resque
    if _resque is None:
        if _where is None:
            raise NotInWorker("resqued.client() is the client of a worker's jobs, and this process is no "
                              "worker: make one with resqued.Resque(url)")
        # here, not at the top: the client loads redis-py, which the master must not
        from resqued.resque.client import Resque
        _resque = Resque(*_where)
    return _resque
