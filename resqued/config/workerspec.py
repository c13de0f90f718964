"""A worker's spec: everything one worker runs with, as one frozen object,
built once by whoever starts the worker (the master's workerprocess.spawn,
env mode's single worker in cli.py). It is the only thing that crosses from
the master to the spawner and the worker, as JSON (``to_json``,
``from_json``: nobody re-shapes it on the way); the worker keeps it
(``worker.spec``) and its helpers read it.

Its fields are of two kinds:

- every setting settings.py declares with ``worker=True``, under its Config
  attribute: the pool's value for a pool setting, the config's otherwise.
  They are derived from the declarations, so a new one needs its
  declaration and the code that reads it, nothing here;
- what only whoever starts the worker knows (``RUNTIME``): what is drawn
  per worker, whether it starts paused, its place among processes.

Pure (no redis-py, no I/O): the master builds it.
"""

import copy
import json
from dataclasses import field, fields, make_dataclass

from resqued.config.model import Config, PoolConfig
from resqued.config.settings import REQUIRED, WORKER

# (field, type, default, what it is): set by whoever starts the worker. The
# master sets the first four; report_fd and pidfile are set in the worker's
# own process (spawner/entrypoints.py), the only one that knows its pid and fd.
RUNTIME = (
    ("max_jobs", int | None, None, "recycle after this many jobs: the pool's max_jobs plus 0..max_jobs_jitter"),
    ("start_paused", bool, False, "take no job until resumed (a paused pool's new worker)"),
    ("parent_pid", int | None, None, "its master: the worker stops after its job once that is gone"),
    ("orphan_timeout", float | None, None, "once its master is gone, how long a running job may go on"),
    ("report_fd", int | None, None, "a pipe to the master: its state as JSON lines (worker/reports.py)"),
    ("pidfile", str | None, None, "its own pidfile, in pid_dir"),
)


class _SpecMethods:
    """What a WorkerSpec does besides holding its fields."""

    @property
    def name(self) -> str:
        """Its pool's name (PoolConfig.name): the queues, comma separated."""
        return ",".join(self.queues)

    def to_json(self) -> str:
        # Not asdict(): its deep copy doubles the master's cost of a spawn.
        return json.dumps({f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def from_json(cls, text: str | bytes, unknown: list | None = None):
        """The spec ``to_json`` wrote. A field it does not know (written by a
        master of another version, during a rolling restart that loaded a new
        resqued) is left out and its name added to ``unknown``, if given;
        with ``unknown`` None it is refused (TypeError)."""
        # JSON has no tuples: every list field is a tuple (queues, jobs), so the spec stays frozen.
        values = json.loads(text)
        if unknown is not None:
            known = {f.name for f in fields(cls)}
            unknown += sorted(set(values) - known)
            values = {key: value for key, value in values.items() if key in known}
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in values.items()})


def _setting_field(setting) -> tuple:
    """A declared setting as a field: its Config (or PoolConfig) attribute and type, its default."""
    kind = (PoolConfig if setting.pool else Config).__annotations__[setting.attribute]
    if setting.default is REQUIRED:
        return setting.attribute, kind
    if isinstance(setting.default, (dict, list, set)):
        return setting.attribute, kind, field(default_factory=lambda value=setting.default: copy.copy(value))
    return setting.attribute, kind, field(default=setting.default)


WorkerSpec = make_dataclass(
    "WorkerSpec",
    [*(_setting_field(s) for s in WORKER.values()),
     *((name, kind, field(default=value, metadata={"help": help})) for name, kind, value, help in RUNTIME)],
    bases=(_SpecMethods,), frozen=True, kw_only=True)
WorkerSpec.__module__ = __name__
WorkerSpec.__doc__ = "What one worker runs with (this module's docstring says what is in it)."


def for_pool(config, pool, **runtime) -> WorkerSpec:
    """A worker of ``pool`` (a PoolConfig of ``config``); ``runtime``: the
    RUNTIME fields that whoever starts it sets."""
    settings = {s.attribute: getattr(pool if s.pool else config, s.attribute) for s in WORKER.values()}
    return WorkerSpec(**settings, **runtime)
