import ctypes
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
import redis

from resqued import Resque
from resqued.jobs import events
from redis_server import RedisServer

HERE = os.path.dirname(os.path.abspath(__file__))

# pytest-xdist's workers (make test) get LINES=24 and COLUMNS=80: curses
# (resquectl top) would keep that size through a resize, and what reads
# the terminal's width would see 80 columns where a plain run sees none.
for _name in ("LINES", "COLUMNS"):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ.pop(_name, None)

# Orphans (a killed worker's job child, a killed master's workers) come back to
# the test session instead of to init, so every one is reaped by pid here.
PR_SET_CHILD_SUBREAPER = 36
ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
ROOT = os.path.dirname(HERE)
GOLDEN = os.path.join(HERE, "golden")
JOBS_FILE = os.path.join(HERE, "jobs.py")


def wait_until(predicate, timeout=10.0, interval=0.01, message="condition"):
    """Poll ``predicate`` until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(str(tmp_path_factory.mktemp("redis"))).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def r(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def resque(redis_url):
    client = Resque(redis_url)
    yield client
    client.redis.close()


@pytest.fixture(autouse=True)
def _no_leftover_listeners():
    yield
    events.clear_listeners()


class Processes:
    """Processes spawned by a test, every one reaped by pid at teardown."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.procs = []

    def spawn(self, args, env=None, name="proc"):
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = os.pathsep.join([ROOT, HERE, full_env.get("PYTHONPATH", "")])
        full_env.update(env or {})
        log_path = self.tmp_path / f"{name}-{len(self.procs)}.log"
        log = open(log_path, "wb")
        proc = subprocess.Popen(args, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=ROOT)
        proc.log_path = log_path
        log.close()
        self.procs.append(proc)
        _TRACKED.add(proc.pid)
        return proc

    def resqued(self, redis_url, queue="default", extra_env=None, args=(), name="resqued"):
        env = {"QUEUE": queue, "REDIS_BACKEND": redis_url, "APP_INCLUDE": JOBS_FILE,
               "INTERVAL": "1", "VVERBOSE": "1"}
        env.update(extra_env or {})
        return self.spawn([sys.executable, "-m", "resqued", *args], env=env, name=name)

    def cleanup(self):
        killed = []
        for proc in self.procs:
            if proc.poll() is None:
                # Job children run in their own process groups: kill the tree.
                try:
                    tree = psutil.Process(proc.pid).children(recursive=True)
                except psutil.NoSuchProcess:
                    tree = []
                proc.kill()
                for child in tree:
                    try:
                        child.kill()
                        killed.append(child.pid)
                    except psutil.NoSuchProcess:
                        pass
            proc.wait(timeout=10)
        reap(killed)


def reap(pids) -> None:
    """Reap ``pids`` — killed descendants that were handed to us when their
    parent died (we are a subreaper) — and any other orphan that has exited."""
    for pid in pids:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass  # not ours (reaped by its own parent)
    for child in psutil.Process().children():
        try:
            if child.pid not in _TRACKED and child.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(child.pid, 0)
        except (psutil.NoSuchProcess, ChildProcessError):
            pass


_TRACKED = set()  # pids that subprocess.Popen waits for itself


@pytest.fixture
def procs(tmp_path):
    p = Processes(tmp_path)
    yield p
    p.cleanup()


def log_text(proc) -> str:
    return proc.log_path.read_text(errors="replace")


def stop(proc, sig=signal.SIGQUIT, timeout=15.0) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"process {proc.pid} did not exit within {timeout}s after {sig!r}:\n"
                             + log_text(proc)[-3000:])


@pytest.fixture
def master_factory(procs, tmp_path, redis_url):
    def make(pools, **kw):
        from masters import Master
        return Master(procs, tmp_path, redis_url, pools, **kw)
    return make


def _sentinel_setup(tmp_path, name: str, **start):
    from sentinels import SentinelSetup   # late: only the Sentinel tests need it
    directory = tmp_path / name
    directory.mkdir()
    setup = SentinelSetup(str(directory))
    try:
        yield setup.start(**start)
    finally:
        setup.stop()


@pytest.fixture
def sentinels(tmp_path):
    """A primary, its replica and three sentinels (tests/sentinels.py)."""
    yield from _sentinel_setup(tmp_path, "sentinels")


@pytest.fixture
def pair(tmp_path):
    """A primary and its replica, no sentinels."""
    yield from _sentinel_setup(tmp_path, "pair", sentinels=False)
