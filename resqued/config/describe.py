"""Settings as text: a resolved config for ``resqued --check`` (the Redis
password redacted), and the settings table as the docs' markdown tables."""

import re
import shlex
import sys

from resqued.config.model import Config
from resqued.config.settings import REQUIRED, SAME, SETTINGS, TOP
from resqued.config.sizes import human_size
from resqued.config.redisurl import redact


def describe(config: Config) -> str:
    """The resolved config as text, for ``resqued --check``; the Redis password is redacted."""
    def seconds(value):
        return f"{value:g}s"

    lines = [
        f"config          {config.path}",
        f"redis           {redact(config.redis_url)}",
        f"namespace       {config.namespace}",
        f"jobs            {', '.join(config.jobs) or '(none)'}",
    ]
    lines += [f"alias           {name} -> {target}" for name, target in config.aliases.items()]
    lines += [
        f"pidfile         {config.pidfile}",
        f"pid_dir         {config.pid_dir}",
        f"control_socket  {config.control_socket}",
        f"timing          interval {seconds(config.interval)}, shutdown_timeout "
        f"{seconds(config.shutdown_timeout)}, heartbeat_interval {seconds(config.heartbeat_interval)}, "
        f"term_timeout {seconds(config.term_timeout)}",
        f"lost jobs       on_lost {config.on_lost}, max_lost {config.max_lost}",
        f"on HUP          {config.on_hup}",
        f"log             {config.log_level}, {config.log_format}",
        f"pools           {len(config.pools)} ({sum(p.count for p in config.pools)} workers)",
    ]
    for pool in config.pools:
        memory = f"max_memory {human_size(pool.max_memory)}" if pool.max_memory else "max_memory none"
        if pool.max_memory_hard:
            memory += f", max_memory_hard {human_size(pool.max_memory_hard)}"
        jobs = f"max_jobs {pool.max_jobs} (+0..{pool.max_jobs_jitter})" if pool.max_jobs else "max_jobs none"
        inline = ("" if pool.job_forker else "; job_forker false") if pool.fork else \
            "; fork false (jobs run in the worker)"
        timeout = f"; job_timeout {seconds(pool.job_timeout)}" if pool.job_timeout is not None else ""
        if pool.retry is not None:
            backoff = pool.retry["backoff"]
            timeout += f"; retry {pool.retry['attempts']} attempts, " + (
                f"delays {', '.join(map(seconds, backoff))}" if isinstance(backoff, list)
                else f"{backoff} backoff, base {seconds(pool.retry['base'])}, max {seconds(pool.retry['max'])}")
        if pool.command:   # a command pool (commandpool.py): none of the job settings apply
            env = f"; env {', '.join(pool.env)}" if pool.env else ""   # names only: values may be secrets
            where = f"; in {pool.directory}" if pool.directory else ""
            lines.append(f"  {pool.name}: count {pool.count}; {memory}; interval {seconds(pool.interval)}; "
                         f"command {shlex.join(pool.command)}{env}{where}")
            continue
        lines.append(f"  {pool.name}: count {pool.count}; {memory}; {jobs}; interval {seconds(pool.interval)}"
                     f"{timeout}{inline}")
    return "\n".join(lines)


# -- the docs' tables (docs/configuration.md, docs/envmode.md) ------------------------
# A table is generated between "<!-- generated table: NAME -->" and
# "<!-- end generated table -->"; tests/config/test_doc_tables.py fails when
# a doc's table differs from the settings, and `make docs` rewrites it.

GENERATED = re.compile(r"(<!-- generated table: (?P<name>[a-z]+) -->\n)(?P<table>.*?)(<!-- end generated table -->)",
                       re.DOTALL)


def _default_text(value) -> str:
    if value is REQUIRED:
        return "required"
    if value is None or value in ((), {}):
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        return f"`{value:g}`"
    return f"`{value}`"


def _rows(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def settings_table(where: str) -> str:
    """pool.yml's keys as a markdown table (key, type, default, meaning):
    ``where`` is "top" (the file's top level and log:) or "pool" (a pool's
    keys, also allowed under defaults:)."""
    chosen = [s for s in SETTINGS if s.pool == (where == "pool")]
    rows = []
    for s in chosen:
        meaning = s.help
        if s.pool and s.key in TOP:
            meaning += "; also at the top level, as every pool's default"
        default = s.default_doc or _default_text(s.default)
        rows.append([f"`{s.key}`", s.doc_type, default, meaning])
    return _rows(["key", "type", "default", "meaning"], rows)


def env_table() -> str:
    """Env mode's variables and flags as a markdown table, from the same settings."""
    rows = []
    for s in SETTINGS:
        if not (s.env or s.flag):
            continue
        default = s.default_doc if s.default_doc and s.env_default is SAME else _default_text(s.default_for_env())
        rows.append([f"`{s.env}`" if s.env else "", f"`{s.flag}`" if s.flag else "", f"`{s.key}`",
                     default, s.help])
    return _rows(["variable", "flag", "pool.yml key", "default", "meaning"], rows)


TABLES = {"top": lambda: settings_table("top"), "pool": lambda: settings_table("pool"), "env": env_table}


def fill_generated(text: str) -> str:
    """``text`` with every generated table rendered anew from the settings."""
    def render(match):
        return match.group(1) + TABLES[match.group("name")]() + match.group(4)
    return GENERATED.sub(render, text)


def main(paths) -> int:
    """``python -m resqued.config.describe FILE...`` (``make docs``): rewrite the generated tables."""
    for path in paths:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        new = fill_generated(text)
        if new != text:
            with open(path, "w", encoding="utf-8") as f:
                f.write(new)
            print(f"{path}: tables regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
