"""The scheduler's command line, built for whoever starts it (the master's
helper process, a unit file): stdlib only, so the master may import it."""

import sys

MODULE = "resqued.scheduler"


def command(redis_url: str | None, namespace: str = "resque", *, lock_timeout: int | None = None,
            poll: float | None = None, schedule: str | None = None, log_arguments=(),
            python: str = sys.executable, title: str | None = None, lock_value: str | None = None,
            master_pid: int | None = None) -> list[str]:
    """argv for ``python -m resqued.scheduler``; ``log_arguments`` as
    process/logs.exec_arguments() gives them (how the starter logs);
    ``title``, ``lock_value`` and ``master_pid`` are what resqued's master
    passes (main.py's --help says why). ``redis_url`` None: the starter
    gives it on a descriptor (--redis-fd) instead, as resqued's master does:
    a password on a command line shows to anyone running ``ps``."""
    argv = [python, "-m", MODULE, *(["--redis", redis_url] if redis_url is not None else []),
            "--namespace", namespace]
    if title is not None:
        argv += ["--title", title]
    if lock_value is not None:
        argv += ["--lock-value", lock_value]
    if master_pid is not None:
        argv += ["--master-pid", str(master_pid)]
    if lock_timeout is not None:
        argv += ["--lock-timeout", str(lock_timeout)]
    if poll is not None:
        argv += ["--poll", repr(float(poll))]
    if schedule is not None:
        argv += ["--schedule", schedule]    # a pool.yml: its schedule: section, re-read on HUP
    return argv + list(log_arguments)
