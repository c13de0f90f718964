"""A real master for the tests: ``resqued -c pool.yml`` with a written
pool.yml, its workers found by title, resquectl run against it."""

import json
import os
import subprocess
import sys
import textwrap

import psutil

from conftest import JOBS_FILE, ROOT, log_text, wait_until
from helpers import title


def write_config(path, redis_url, pools, **top):
    settings = {"redis": redis_url, "jobs": f"[{JOBS_FILE}]", "interval": 1, "shutdown_timeout": 10,
                "log": "{level: debug}", **top}
    lines = [f"{k}: {v}" for k, v in settings.items()]
    lines.append("pools:")
    lines += [f"  - {textwrap.dedent(p).strip()}".replace("\n", "\n    ") for p in pools]
    path.write_text("\n".join(lines) + "\n")
    return path


class Master:
    def __init__(self, procs, tmp_path, redis_url, pools, name="pool.yml", args=(), env=None, **top):
        self.config = write_config(tmp_path / name, redis_url, pools, **top)
        self.redis_url = redis_url
        self.proc = procs.spawn([sys.executable, "-m", "resqued", "-c", str(self.config), *args],
                                env={"REDIS_BACKEND": redis_url, **(env or {})}, name="master")
        self.pid = self.proc.pid

    def workers(self, starting=False):
        """The master's workers, by title; ``starting``: also those not ready yet."""
        try:
            kids = psutil.Process(self.pid).children()
        except psutil.NoSuchProcess:
            return []
        return sorted(k.pid for k in kids if title(k.pid).startswith("resque-")
                      and (starting or not title(k.pid).endswith(": Starting")))

    def wait_workers(self, n, message=None):
        found = wait_until(lambda: (len(self.workers()) == n and self.workers()) or self.proc.poll() is not None,
                           timeout=20, message=message or f"{n} workers")
        assert self.proc.poll() is None, f"master exited:\n{log_text(self.proc)[-3000:]}"
        return found

    def ctl(self, *args, timeout=60):
        return self.ctl_file(self.config, *args, timeout=timeout)

    def ctl_file(self, config, *args, timeout=60):
        """resquectl -c ``config`` (not necessarily this master's)."""
        return subprocess.run([sys.executable, "-m", "resqued.ctl", "-c", str(config), *args],
                              capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": ROOT})

    def status(self):
        result = self.ctl("status", "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


TWO_POOLS = ["queues: [default]\ncount: 2", "queues: [mail]\ncount: 1"]
