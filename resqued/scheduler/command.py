"""The scheduler's command line, built for whoever starts it (the master's
helper process, a unit file): stdlib only, so the master may import it."""

import sys

MODULE = "resqued.scheduler"


def command(redis_url: str, namespace: str = "resque", *, lock_timeout: int | None = None,
            poll: float | None = None, schedule: str | None = None, log_arguments=(),
            python: str = sys.executable) -> list[str]:
    """argv for ``python -m resqued.scheduler``; ``log_arguments`` as
    process/logs.exec_arguments() gives them (how the starter logs)."""
    argv = [python, "-m", MODULE, "--redis", redis_url, "--namespace", namespace]
    if lock_timeout is not None:
        argv += ["--lock-timeout", str(lock_timeout)]
    if poll is not None:
        argv += ["--poll", repr(float(poll))]
    if schedule is not None:
        argv += ["--schedule", schedule]    # a pool.yml: its schedule: section, re-read on HUP
    return argv + list(log_arguments)
