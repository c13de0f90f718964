"""--daemonize's log survives logrotate's copytruncate (conf/logrotate.resqued):
the master and its workers append (O_APPEND), so after a truncation they
write at the new end, with no hole of NUL bytes and no signal needed."""

import os
import signal
import subprocess
import sys

import psutil

from conftest import ROOT, wait_until
from masters import write_config

ENV = {**os.environ, "PYTHONPATH": ROOT}


def start_daemon(tmp_path, cfg):
    """``resqued -c cfg --daemonize``: the daemon's pid and its log file."""
    launcher = subprocess.run([sys.executable, "-m", "resqued", "-c", str(cfg), "--daemonize"], capture_output=True,
                              text=True, cwd=ROOT, timeout=30, env=ENV)
    assert launcher.returncode == 0, launcher.stderr
    pidfile = tmp_path / "var/run/resqued.pid"
    pid = int(wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), message="daemon pidfile"))
    return pid, tmp_path / "var/run/resqued.log"


def test_the_daemons_log_is_written_from_its_start_after_copytruncate(tmp_path, redis_url, r):
    cfg = write_config(tmp_path / "pool.yml", redis_url, ["queues: [default]\ncount: 1"])
    pid, log = start_daemon(tmp_path, cfg)
    try:
        wait_until(lambda: r.scard("resque:workers") == 1, message="the daemon's worker")
        before = log.stat().st_size
        assert before > 0
        os.truncate(log, 0)                       # what copytruncate does after its copy
        ctl = subprocess.run([sys.executable, "-m", "resqued.ctl", "-c", str(cfg), "pause"],
                             capture_output=True, text=True, cwd=ROOT, timeout=60, env=ENV)
        assert ctl.returncode == 0, ctl.stderr
        text = wait_until(lambda: log.read_bytes(), message="new log lines")
        assert not text.startswith(b"\0") and b"\0" not in text and len(text) < before + 4096
    finally:
        out = subprocess.run([sys.executable, "-m", "resqued.ctl", "-c", str(cfg), "stop"], capture_output=True,
                             text=True, cwd=ROOT, env=ENV, timeout=60)
        if out.returncode != 0 and psutil.pid_exists(pid):
            os.kill(pid, signal.SIGKILL)


SHOUT = '''
import sys


class Shout:
    def perform(self):
        print("job says", self.args["word"], flush=True)
        print("job warns", self.args["word"], file=sys.stderr, flush=True)
'''


def test_hup_reopens_the_log_for_the_master_its_workers_and_their_jobs(tmp_path, redis_url, r, resque):
    """logrotate without copytruncate (resque-pool's way): mv the log, then HUP.
    The worker and its standby job child were forked before the HUP, and
    on_hup is reload: they must move to the new file themselves."""
    (tmp_path / "shout.py").write_text(SHOUT)
    cfg = write_config(tmp_path / "pool.yml", redis_url, ["queues: [default]\ncount: 1"],
                       jobs=f"[{tmp_path / 'shout.py'}]")
    pid, log = start_daemon(tmp_path, cfg)
    try:
        wait_until(lambda: r.scard("resque:workers") == 1, message="the daemon's worker")
        resque.enqueue("default", "Shout", {"word": "before"})
        wait_until(lambda: b"job warns before" in log.read_bytes(), message="the first job's output")
        rotated = tmp_path / "var/run/resqued.log.1"
        os.rename(log, rotated)
        os.kill(pid, signal.SIGHUP)
        wait_until(lambda: log.exists() and b"reloaded" in log.read_bytes(), message="the master's new log")
        assert oct(log.stat().st_mode & 0o777) == "0o640"
        resque.enqueue("default", "Shout", {"word": "after"})
        text = wait_until(lambda: b"Shout on default done" in log.read_bytes() and log.read_text(),
                          message="the worker's line in the new log")
        assert "job says after" in text and "job warns after" in text, text
        assert "after" not in rotated.read_text()
    finally:
        out = subprocess.run([sys.executable, "-m", "resqued.ctl", "-c", str(cfg), "stop"], capture_output=True,
                             text=True, cwd=ROOT, env=ENV, timeout=60)
        if out.returncode != 0 and psutil.pid_exists(pid):
            os.kill(pid, signal.SIGKILL)
