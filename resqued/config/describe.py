"""``resqued --check``: a resolved config as text, the Redis password redacted."""

from resqued.config.model import Config
from resqued.config.sizes import human_size
from resqued.redisio.connection import redact


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
        lines.append(f"  {pool.name}: count {pool.count}; {memory}; {jobs}; interval {seconds(pool.interval)}{inline}")
    return "\n".join(lines)
