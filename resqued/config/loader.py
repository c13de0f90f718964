"""pool.yml: read it, check all of it, and resolve it into a frozen Config.

Two formats. The native one has ``pools:`` and the settings below; resque-pool's
(``"high,default": 4`` at the top level, optionally under environment sections)
is accepted unchanged for migrations. Every setting is declared once, in
settings.py, with its check (checks.py); every error is one line naming the
file, the line and the key (``pool.yml:12: pools[1].max_mem: unknown key; did you mean 'max_memory'?``).

YAML is composed into nodes (not loaded) so that each value keeps its line;
scalars are built by PyYAML's SafeLoader only, so no tag can run code.
"""

import difflib
import os

import yaml

from resqued.config import checks, commandpool, schedule
from resqued.config.model import Config, ConfigError, PoolConfig
from resqued.config.settings import LIMITS, LOG, POOL, TOP
from resqued.config.sizes import human_size
from resqued.config.yamlnodes import LocatedError, NodeReader, read_text
from resqued.process.pidfile import socket_beside
from resqued.config.redisurl import BadRedisURL

# resque-pool picks its environment section from these, first set wins.
ENVIRONMENT_VARIABLES = ("RACK_ENV", "RAILS_ENV", "RESQUE_ENV")
# sun_path holds 108 bytes with the terminating NUL.
MAX_SOCKET_PATH = 107


def _pools(r, node, path):
    pools = r.items(node, path, "a list of pools")
    if not pools:
        raise r.fail(node, path, "empty: define at least one pool (a count of 0 is fine)")
    parsed = []
    for item, item_path in pools:
        settings = checks.mapping_of(r, item, item_path, _POOL)
        for required in ("queues", "count"):
            if required not in settings:
                raise r.fail(item, item_path, f"missing {required!r}")
        parsed.append((item, item_path, settings))
    return parsed


def _checks(table) -> dict:
    return {key: setting.check for key, setting in table.items()}


_LOG = _checks(LOG)
_LIMITS = _checks(LIMITS)
_POOL = _checks(POOL)
_TOP = {**_checks(TOP),
        "log": lambda r, node, path: checks.mapping_of(r, node, path, _LOG),
        "defaults": lambda r, node, path: checks.mapping_of(r, node, path, _LIMITS),
        "pools": _pools,
        "schedule": schedule.section}


# -- loading ------------------------------------------------------------------------

def load_config(path, environment: str | None = None, environ=os.environ) -> Config:
    """Read and check ``path``; raise ConfigError (one line, with file and line) if anything is wrong."""
    path = os.fspath(path)
    try:
        text = read_text(path)
        if "<%" in text:
            raise LocatedError("ERB templates ('<%') are not supported: render the file first",
                               line=text.count("\n", 0, text.index("<%")) + 1)
        with NodeReader(text, base_dir=os.path.dirname(os.path.abspath(path))) as r:
            root = r.root()
            top = r.mapping(root, "", allow_null=False)
            if any(key in _TOP for key in top):
                fields = _native(r, root, top)
            else:
                fields = _resque_pool(r, root, top, environment, environ)
    except LocatedError as exc:
        raise ConfigError(exc.problem, file=path, line=exc.line, path=exc.path) from None
    redis_url = environ.get("REDIS_URL")
    if redis_url:
        try:
            fields["redis_url"] = checks.check_redis_url(redis_url)
        except BadRedisURL as exc:
            raise ConfigError(str(exc), file=path, path="REDIS_URL (environment)") from None
    return Config(path=os.path.abspath(path), **fields)


def _defaults(r) -> dict:
    """Config's fields before the file's own: the settings' defaults (paths
    relative to the file)."""
    fields = {s.attribute: s.default for s in (*TOP.values(), *LOG.values())}
    for key in ("pidfile", "pid_dir"):
        fields[key] = r.resolve(fields[key])
    fields["control_socket"] = socket_beside(fields["pidfile"])
    return fields


def _native(r, root, top) -> dict:
    found = {}
    for key, (key_node, value, value_path) in top.items():
        if key not in _TOP:
            raise r.unknown(key_node, value_path, key, _TOP,
                            hint=" (resque-pool's 'queues: count' entries cannot be mixed with "
                                 "resqued settings: use pools:)" if r.is_integer(value) else "")
        found[key] = (_TOP[key](r, value, value_path), value, value_path)
    if "pools" not in found:
        raise r.fail(root, "pools", "missing: define at least one pool (a count of 0 is fine)")
    fields = _defaults(r)
    fields.update((TOP[key].attribute, value) for key, (value, _, _) in found.items() if key in TOP)
    fields.update((LOG[key].attribute, value) for key, (value, _, _) in found.get("log", ({},))[0].items())
    fields["schedule"] = found.get("schedule", ((),))[0]
    if "control_socket" not in found:
        fields["control_socket"] = socket_beside(fields["pidfile"])
    if len(os.fsencode(fields["control_socket"])) > MAX_SOCKET_PATH:
        _, node, path = found.get("control_socket") or found.get("pidfile") or (None, root, "control_socket")
        raise r.fail(node, path, f"control socket path {fields['control_socket']!r} is longer than "
                                 f"{MAX_SOCKET_PATH} bytes; set a shorter control_socket")
    # A pool's setting beats defaults:, whose interval beats the top-level one.
    defaults = {"interval": found.get("interval", (fields["interval"], root, "interval")),
                **found.get("defaults", ({},))[0]}
    pools, lines = [], {}
    for node, path, settings in found["pools"][0]:
        pool = _resolve_pool(r, settings, defaults)
        if pool.name in lines:
            raise r.fail(node, path, f"duplicate pool {pool.name!r} (first at line {lines[pool.name]}): "
                                     "raise its count instead")
        lines[pool.name] = node.start_mark.line + 1
        pools.append(pool)
    fields["pools"] = tuple(pools)
    return fields


def _resolve_pool(r, settings, defaults) -> PoolConfig:
    merged = {**defaults, **settings}
    value = commandpool.check(r, merged)
    merged = {key: located for key, located in merged.items() if key in value}
    soft, hard = value.get("max_memory"), value.get("max_memory_hard")
    if soft is not None and hard is not None and hard <= soft:
        (_, hard_node, hard_path), (_, soft_node, soft_path) = merged["max_memory_hard"], merged["max_memory"]
        node, path = (soft_node, soft_path) if soft_path.startswith("pools") and \
            not hard_path.startswith("pools") else (hard_node, hard_path)
        raise r.fail(node, path, f"max_memory_hard ({human_size(hard)}, line {hard_node.start_mark.line + 1}) "
                                 f"must be greater than max_memory ({human_size(soft)}, "
                                 f"line {soft_node.start_mark.line + 1})")
    if value.get("job_timeout") is not None and value.get("fork") is False:
        _refuse_inline_timeout(r, merged)
    max_jobs = value.get("max_jobs")
    if "max_jobs_jitter" in merged and "max_jobs" not in merged:
        _, node, path = merged["max_jobs_jitter"]
        raise r.fail(node, path, "max_jobs_jitter has no effect without max_jobs")
    jitter = 0 if max_jobs is None else value.get("max_jobs_jitter", max_jobs // 10)
    value["max_jobs_jitter"] = jitter
    value["interval"] = float(value["interval"])
    return PoolConfig(**value)


# A job running inside its worker cannot be stopped without killing the
# worker, and an exception raised into it from a SIGALRM handler can land in
# any line (a finally, a lock held, a half-written reply): so no timeout there.
INLINE_TIMEOUT = ("is not enforced in a fork: false pool: a job running inside the worker cannot be "
                  "stopped without killing the worker")


def _refuse_inline_timeout(r, merged):
    """Say so at the pool's own line: its job_timeout, or its fork: false
    when the timeout comes from defaults: (which the pool may set to null)."""
    (_, timeout_node, timeout_path), (_, fork_node, fork_path) = merged["job_timeout"], merged["fork"]
    if timeout_path.startswith("pools") or not fork_path.startswith("pools"):
        raise r.fail(timeout_node, timeout_path, f"{INLINE_TIMEOUT}; set fork: true, or remove job_timeout "
                                                 f"(fork: false at line {fork_node.start_mark.line + 1})")
    raise r.fail(fork_node, fork_path, f"job_timeout (line {timeout_node.start_mark.line + 1}) {INLINE_TIMEOUT}; "
                                       "set job_timeout: null in this pool, or fork: true")


def _resque_pool(r, root, top, environment, environ) -> dict:
    """resque-pool's file: top-level "queues: count", overridden by the environment's section."""
    base, sections = {}, {}
    for key, (key_node, value, value_path) in top.items():
        if isinstance(value, yaml.MappingNode):
            sections[key] = _resque_pool_counts(r, r.mapping(value, value_path).values())
        elif not r.is_integer(value) and difflib.get_close_matches(key, _TOP, n=1):
            raise r.unknown(key_node, value_path, key, _TOP)  # a misspelt setting, not a queue list
        else:
            base.update(_resque_pool_counts(r, [(key_node, value, value_path)], base))
    chosen = environment or next((environ[name] for name in ENVIRONMENT_VARIABLES if environ.get(name)), None)
    if environment and environment not in sections:
        known = ", ".join(sections) or "none"
        raise r.fail(root, None, f"environment {environment!r} has no section in this file (sections: {known})")
    counts = {**base, **sections.get(chosen, {})}
    if not counts:
        why = f"environment {chosen!r} adds none" if chosen else \
            "no environment is chosen (--environment, RACK_ENV, RAILS_ENV or RESQUE_ENV)"
        raise r.fail(root, None, f"no pools: the top level has only environment sections "
                                 f"({', '.join(sections) or 'none'}) and {why}")
    fields = _defaults(r)
    fields["pools"] = tuple(PoolConfig(queues=queues, count=count) for queues, count in counts.values())
    return fields


def _resque_pool_counts(r, entries, already=None) -> dict:
    """{pool name: (queues, count)} from "a,b: N" entries; a name seen twice is an error."""
    counts = {}
    for key_node, value, path in entries:
        if isinstance(value, yaml.MappingNode):
            raise r.fail(value, path, "expected a worker count; environment sections cannot be nested")
        if r.is_null(value):
            raise r.fail(value, path, "expected a worker count (an integer) or an environment section (a mapping)")
        located = [(name.strip(), key_node, path) for name in r.name(key_node, path).split(",")]
        queues = checks.check_queues(r, located)
        name = ",".join(queues)
        if name in counts or (already and name in already):
            raise r.fail(key_node, path, f"duplicate pool {name!r}")
        counts[name] = (queues, r.integer(value, path, minimum=0))
    return counts
