"""Hardening with real processes: a Redis URL that cannot be parsed is one
line and exit 78 with no part of its password; --daemonize refuses a symlink
at its log file or pidfile before it detaches; pid_dir may not be a symlink;
ids, classes and errors from payloads are logged and shown with their control
characters escaped."""

import os
import subprocess
import sys

import pytest

from conftest import JOBS_FILE, ROOT
from masters import write_config

ENV = {**os.environ, "PYTHONPATH": ROOT}


def resqued(*args, env=None, timeout=30):
    return subprocess.run([sys.executable, "-m", "resqued", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, env={**ENV, **(env or {})})


# -- Redis URLs ----------------------------------------------------------------------

@pytest.mark.parametrize("url,problem", [
    ("redis://[::1:6379/0", "an unclosed '['"),
    ("redis://app:hunter#2?x/y@db:6379/0", "the port is not a number"),
])
def test_an_unparseable_redis_url_is_one_line_exit_78_and_shows_no_password(tmp_path, url, problem):
    cfg = write_config(tmp_path / "pool.yml", "redis://127.0.0.1:1/0", ["queues: [default]\ncount: 1"])
    for args, env in ((["-c", str(cfg)], {"REDIS_URL": url}), ([], {"REDIS_URL": url, "QUEUE": "default",
                                                                   "APP_INCLUDE": JOBS_FILE})):
        out = resqued(*args, env=env)
        assert out.returncode == 78, out.stderr
        assert out.stderr.count("\n") == 1 and problem in out.stderr, out.stderr
        assert "hunter" not in out.stderr and "x/y" not in out.stderr
