"""Hardening with real processes: a Redis URL that cannot be parsed is one
line and exit 78 with no part of its password; --daemonize refuses a symlink
at its log file or pidfile before it detaches; pid_dir may not be a symlink;
ids, classes and errors from payloads are logged and shown with their control
characters escaped."""

import json
import os
import signal
import subprocess
import sys

import psutil
import pytest

from conftest import JOBS_FILE, ROOT, log_text, reap, wait_until
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


# -- --daemonize, its log file and pidfile, and pid_dir ----------------------------------

@pytest.fixture(autouse=True)
def _no_daemon_left(tmp_path):
    """A daemon that should have been refused but started (the bug) is stopped."""
    yield
    pidfile = tmp_path / "var/run/resqued.pid"
    pid = pidfile.exists() and not pidfile.is_symlink() and pidfile.read_text().strip()
    if pid and psutil.pid_exists(int(pid)):
        os.kill(int(pid), signal.SIGTERM)
        wait_until(lambda: not psutil.pid_exists(int(pid)) or psutil.Process(int(pid)).status() == "zombie",
                   timeout=30, message="the daemon to stop")
        reap([int(pid)])


def no_daemon_started(tmp_path):
    return not (tmp_path / "var/run/resqued.pid").exists() and not (tmp_path / "var/run/resqued.sock").exists()


@pytest.mark.parametrize("at", ["log", "pid", "sock"])
def test_daemonize_refuses_a_symlink_at_its_log_pidfile_or_socket_before_detaching(tmp_path, redis_url, at):
    precious = tmp_path / "precious"
    precious.write_text("keep me\n")
    run = tmp_path / "var/run"
    run.mkdir(parents=True)
    link = run / f"resqued.{at}"
    link.symlink_to(precious)
    cfg = write_config(tmp_path / "pool.yml", redis_url, ["queues: [default]\ncount: 1"])
    out = resqued("-c", str(cfg), "--daemonize")
    assert out.returncode == 1, out
    assert out.stdout == "" and out.stderr.count("\n") == 1, out
    assert str(link) in out.stderr and ("symbolic link" in out.stderr or "not a socket" in out.stderr), out.stderr
    assert precious.read_text() == "keep me\n" and link.is_symlink()
    assert not (run / "resqued.log").exists() or at == "log"
    assert not (run / "resqued.pid").exists() or at == "pid"


def test_daemonize_refuses_a_log_file_that_is_not_a_regular_file(tmp_path, redis_url):
    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)      # opening it for writing would wait for a reader
    cfg = write_config(tmp_path / "pool.yml", redis_url, ["queues: [default]\ncount: 1"])
    out = resqued("-c", str(cfg), "--daemonize", "--log-file", str(fifo))
    assert out.returncode == 1 and "is not a regular file" in out.stderr, out
    assert no_daemon_started(tmp_path)


def test_pid_dir_may_not_be_a_symlink(tmp_path, redis_url):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "var/run").mkdir(parents=True)
    (tmp_path / "var/run/workers").symlink_to(elsewhere)
    cfg = write_config(tmp_path / "pool.yml", redis_url, ["queues: [default]\ncount: 1"])
    out = resqued("-c", str(cfg), "--daemonize")
    assert out.returncode == 78, out
    assert "pid_dir" in out.stderr and "is a symbolic link" in out.stderr and out.stderr.count("\n") == 1
    assert no_daemon_started(tmp_path) and not list(elsewhere.iterdir())


# -- control characters from payloads -------------------------------------------------

FORGED = "\n2026-01-01 00:00:00 resqued[1] ERROR forged line\x1b[2J\x1b]0;owned\x07"


def test_ids_classes_and_errors_from_a_payload_are_logged_and_shown_escaped(procs, redis_url, r):
    payload = {"class": "Nope" + FORGED, "args": [{}], "id": "id" + FORGED, "queue": "default"}
    r.sadd("resque:queues", "default")
    r.rpush("resque:queue:default", json.dumps(payload))
    worker = procs.resqued(redis_url)
    wait_until(lambda: r.llen("resque:failed") == 1, timeout=20, message="the refused job in the failed list")
    env = {**ENV, "REDIS_URL": redis_url}
    shown = [subprocess.run([sys.executable, "-m", "resqued.ctl", *args], capture_output=True, text=True,
                            cwd=ROOT, timeout=30, env=env) for args in (["failed"], ["failed", "show", "0"])]
    assert all(out.returncode == 0 for out in shown), shown
    logged = log_text(worker)
    for text in [logged] + [out.stdout + out.stderr for out in shown]:
        assert "\x1b" not in text and "\x07" not in text and "\nforged" not in text, text
        assert "\n2026-01-01" not in text
    assert "Nope\\n2026-01-01 00:00:00 resqued[1] ERROR forged line\\x1b[2J" in logged, logged
    # resquectl's tables make a newline a space; what is left is escaped.
    assert "forged line\\x1b[2J\\x1b]0;owned\\x07" in shown[0].stdout + shown[1].stdout
