"""The worker's spec (config/workerspec.py): built from a config and a pool,
and the same after its JSON round trip. Pure: no Redis and no processes."""

import dataclasses
import json
import types
import typing

import pytest

from resqued.cli import build_parser
from resqued.config.loader import load_config
from resqued.config.settings import REQUIRED, WORKER
from resqued.config.workerspec import RUNTIME, WorkerSpec, for_pool
from resqued.envmode import variables
from resqued.master.workerprocess import global_settings


def other_value(kind, default):
    """A value of type ``kind`` that differs from ``default``, so that a field
    the round trip dropped (or left at its default) shows."""
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        kind = next(k for k in typing.get_args(kind) if k is not type(None))
    origin = typing.get_origin(kind) or kind
    if origin is bool:
        return not default
    if origin is int:
        return (default or 0) + 7
    if origin is float:
        return (default or 0.0) + 2.5
    if origin is str:
        return f"{default or ''}-other"
    if origin is tuple:
        return ("high", "default")
    if origin is dict:
        return {"Common\\Job\\MailJob": "myapp.jobs.MailJob"}
    raise AssertionError(f"no sample value for {kind}")


def every_field_changed() -> dict:
    return {f.name: other_value(f.type, None if f.default is dataclasses.MISSING else f.default)
            for f in dataclasses.fields(WorkerSpec)}


def test_every_worker_setting_and_runtime_field_is_in_the_spec():
    names = [f.name for f in dataclasses.fields(WorkerSpec)]
    assert names == [s.attribute for s in WORKER.values()] + [name for name, *_ in RUNTIME]
    # Its defaults are the declarations'.
    for s in WORKER.values():
        [f] = [f for f in dataclasses.fields(WorkerSpec) if f.name == s.attribute]
        if s.default is REQUIRED:
            assert f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        else:
            assert (f.default if f.default_factory is dataclasses.MISSING else f.default_factory()) == s.default


def test_the_json_round_trip_keeps_every_field():
    values = every_field_changed()
    spec = WorkerSpec(**values)
    again = WorkerSpec.from_json(spec.to_json())
    assert again == spec
    assert dataclasses.asdict(again) == values
    assert isinstance(again.queues, tuple) and isinstance(again.jobs, tuple)


def test_the_json_is_one_object_of_the_fields():
    spec = WorkerSpec(queues=("a",))
    assert set(json.loads(spec.to_json())) == {f.name for f in dataclasses.fields(WorkerSpec)}


def test_an_unknown_field_is_refused():
    text = json.dumps({**json.loads(WorkerSpec(queues=("a",)).to_json()), "no_such_field": 5})
    with pytest.raises(TypeError):
        WorkerSpec.from_json(text)


def test_the_spec_is_frozen():
    spec = WorkerSpec(queues=("a",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.interval = 1.0


def test_for_pool_takes_pool_settings_from_the_pool_and_the_rest_from_the_config(tmp_path):
    path = tmp_path / "pool.yml"
    path.write_text("redis: redis://127.0.0.1:6380/2\nnamespace: ns\njobs: [myapp.jobs]\n"
                    "aliases: {'Common\\Job': myapp.jobs.MailJob}\ninterval: 3\nterm_timeout: 9\n"
                    "heartbeat_interval: 20\non_lost: fail\nmax_lost: 5\nshutdown_timeout: 12\n"
                    "pools:\n  - {queues: [high, default], count: 2, interval: 0.5, fork: false,\n"
                    "     job_forker: false, max_memory: 300MB, max_memory_hard: 1GB, max_jobs: 100}\n")
    config = load_config(str(path))
    [pool] = config.pools
    spec = for_pool(config, pool, max_jobs=104, parent_pid=42, orphan_timeout=config.shutdown_timeout)
    for s in WORKER.values():
        assert getattr(spec, s.attribute) == getattr(pool if s.pool else config, s.attribute), s.key
    assert (spec.name, spec.interval, spec.term_timeout, spec.fork, spec.job_forker) == (
        "high,default", 0.5, 9, False, False)
    assert (spec.max_jobs, spec.parent_pid, spec.orphan_timeout, spec.start_paused) == (104, 42, 12, False)
    assert WorkerSpec.from_json(spec.to_json()) == spec


def test_env_mode_builds_the_same_spec():
    config = variables.load(build_parser().parse_args([]), {"QUEUE": "a,b", "INTERVAL": "0.25", "APP_INCLUDE": "myapp.jobs",
                                               "FORK_PER_JOB": "false"})
    spec = for_pool(config, config.pools[0])
    assert (spec.queues, spec.interval, spec.fork, spec.jobs, spec.pid_dir) == (
        ("a", "b"), 0.25, False, ("myapp.jobs",), None)
    assert (spec.max_jobs, spec.parent_pid, spec.report_fd, spec.pidfile) == (None, None, None, None)


def test_a_reload_replaces_workers_when_a_worker_setting_outside_the_pools_changes(tmp_path):
    path = tmp_path / "pool.yml"
    path.write_text("jobs: [myapp.jobs]\npools:\n  - {queues: [a], count: 1}\n")
    config = load_config(str(path))
    assert global_settings(config) == global_settings(dataclasses.replace(config, shutdown_timeout=99.0))
    for s in WORKER.values():
        if not s.pool:
            current = getattr(config, s.attribute)
            changed = dataclasses.replace(config, **{s.attribute: other_value(type(current) if current is not None
                                                                              else str, current)})
            assert global_settings(changed) != global_settings(config), s.key


def test_a_spec_from_another_version_keeps_what_this_one_knows():
    """During a rolling restart that loaded a new resqued, the old master's
    spec may name a setting this version dropped: left out, and named."""
    text = json.dumps({**json.loads(WorkerSpec(queues=("a",)).to_json()), "a_setting_of_another_version": 1})
    unknown = []
    assert WorkerSpec.from_json(text, unknown).queues == ("a",)
    assert unknown == ["a_setting_of_another_version"]
