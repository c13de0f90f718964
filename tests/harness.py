"""What tests/chaos.py and tests/soak.py share: the job module's Redis
client, their log lines, and the master each runs, started and stopped with
whatever of its tree is left."""

import os
import signal
import subprocess
import sys
import time

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def job_module(env_var: str, body: str) -> str:
    """A job module's source: ``body`` after imports and ``_redis()``, the
    job process's one client to the Redis (or Sentinel) URL named by ``env_var``."""
    return f'''
import os, random, time
from resqued.redisio.connection import connect

_client = None

def _redis():
    global _client
    if _client is None:
        # As an application's: a Sentinel URL follows a failover, and waits to connect meanwhile.
        _client = connect(os.environ["{env_var}"], connect_wait=30)
    return _client
''' + body


def logger(name: str):
    def log(message):
        print(f"[{name} {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
    return log


def start_master(config: str, env: dict, log_file, workdir: str) -> subprocess.Popen:
    """``resqued -c config`` in ``workdir``, logging to ``log_file``."""
    return subprocess.Popen([sys.executable, "-m", "resqued", "-c", config],
                            env=dict(os.environ, PYTHONPATH=ROOT, **env),
                            stdout=log_file, stderr=subprocess.STDOUT, cwd=workdir)


def stop_master(master) -> None:
    """TERM, 30 s for a graceful stop, then KILL."""
    if master and master.poll() is None:
        master.send_signal(signal.SIGTERM)
        try:
            master.wait(30)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait()


def kill_left(procs) -> None:
    """SIGKILL what of ``procs`` (psutil.Process) still runs, and wait for it."""
    left = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                proc.kill()
                left.append(proc)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(left, timeout=10)
