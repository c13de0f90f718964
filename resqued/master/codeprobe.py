"""Checking a config's code before the master uses it, in a throwaway
interpreter (``python -m resqued.spawner.probe``, which loads redis-py and
the job modules): the master itself stays free of redis-py and of the
application's code and memory. The answer comes back on a pipe.

This is the check at the start, before a rolling restart (new resqued code
too), and for a reload while the spawner is down; a reload otherwise has a
child of the running spawner check it (reloadprobe.py), which is cheaper and
imports the modules as the workers it forks next will.
"""

import json
import os

from resqued.process import logs
from resqued.process.interpreter import start_module


def probe(config) -> str | None:
    """Check the Redis URL's options with redis-py and import the job
    modules and aliases, so that a broken URL or job module is reported at
    start (or refuses a reload or a restart) instead of making every worker
    die at boot. Returns the error as "<key>: <problem>", or None."""
    try:
        message, status = _run(config, "probe")
    except OSError as exc:
        # Exec can fail where a fork could not (the interpreter gone from a
        # venv rebuilt by a deploy): the config is refused, the master lives on.
        return f"jobs: cannot start a Python interpreter to check the job modules ({exc})"
    if os.waitstatus_to_exitcode(status) != 0:
        return message or f"jobs: job modules could not be loaded (exit status {status})"
    return None


def runtime_warnings(config, timeout: float = 2.0) -> list[str]:
    """What ``--check`` warns of: Redis cannot be reached (a master started
    would wait for it), its user may not run what workers need, and a pool's
    max_memory below what an idle worker of this config uses: such a worker
    would be recycled after every job. The estimate is the measure status
    shows and max_memory judges, PSS (process/memory.tree_memory), of a
    process that imports what a worker imports. A worker's job forker and
    standby share its pages, so they add little; but workers share their
    imports with each other (and the spawner), so a running worker's figure
    shrinks as more workers share pages."""
    try:
        message, _ = _run(config, "warnings", "--timeout", str(timeout))
    except OSError as exc:
        return [f"cannot start a Python interpreter to check Redis and memory ({exc})"]
    return message.splitlines()


def probe_settings(config) -> dict:
    """What a check reads of a config (spawner/probe.py)."""
    return {"redis_url": config.redis_url, "namespace": config.namespace, "jobs": list(config.jobs),
            "aliases": config.aliases, "max_memory": [pool.max_memory for pool in config.pools],
            # A check at start runs before the master's logging is set up (no
            # --log-format): how the app's output at import must come out.
            "log": [config.log_level, config.log_format]}


def _run(config, check: str, *extra) -> tuple[str, int]:
    """Run the check; its answer and its wait status."""
    settings = probe_settings(config)
    config_fd = os.memfd_create("resqued-probe", os.MFD_CLOEXEC)
    read_fd, write_fd = os.pipe()
    try:
        os.write(config_fd, json.dumps(settings).encode())
        os.lseek(config_fd, 0, os.SEEK_SET)
        pid = start_module("resqued.spawner.probe", [
            "--check", check, "--config-fd", str(config_fd), "--answer-fd", str(write_fd), *extra,
            *logs.exec_arguments()], pass_fds=[config_fd, write_fd])
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(config_fd)
        os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        message = pipe.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    return message, status
