"""Rolling restart with new code: resquectl restart, and HUP under
on_hup: restart. Real master, real job modules edited on disk."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

from conftest import ROOT, log_text, stop, wait_until
from helpers import failures, log_entries, title, wait_log
from masters import Master, write_config
from resqued.ctl.masterclient import request
from resqued.version import __version__

VERSIONED = """
import os
import redis


class Version:
    def perform(self):
        redis.Redis.from_url(os.environ["REDIS_BACKEND"]).rpush("test:log", "{version}:%d" % os.getpid())


class Slow:
    def perform(self):
        client = redis.Redis.from_url(os.environ["REDIS_BACKEND"])
        client.rpush("test:log", "started:%d" % os.getpid())
        client.blpop(["test:release"], timeout=60)
        client.rpush("test:log", "finished:%d" % os.getpid())
"""


def write_jobs(path, version, broken=False):
    path.write_text(VERSIONED.format(version=version) + ("\ndef broken(:\n" if broken else ""))


def serving(status):
    """Workers taking jobs: reported for work and not told to stop."""
    return [w for w in status["workers"] if w["state"] not in ("starting", "stopping")]


def test_restart_runs_the_new_code_pool_by_pool_and_fails_nothing(master_factory, r, resque, tmp_path):
    jobs = tmp_path / "versioned.py"
    write_jobs(jobs, "v1")
    m = master_factory(["queues: [default]\ncount: 2"], jobs=f"[{jobs}]")
    old = set(m.wait_workers(2))
    resque.enqueue("default", "Version")
    wait_log(r, "v1:")
    resque.enqueue("default", "Slow")          # running through the restart: it finishes
    wait_log(r, "started:")

    write_jobs(jobs, "v2")
    ctl = subprocess.Popen([sys.executable, "-m", "resqued.ctl", "-c", str(m.config), "restart"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": ROOT})
    # Watched through the control socket itself (a resquectl process per look
    # would miss most of it): a new worker boots in well under 100 ms.
    socket_path = str(tmp_path / "var/run/resqued.sock")
    fewest, states = 2, set()
    while ctl.poll() is None:
        status = request(socket_path, "status")
        states.add(status["master"]["state"])
        fewest = min(fewest, len(serving(status)))
        if any(w["state"] == "stopping" and w["pid"] in old for w in status["workers"]):
            r.rpush("test:release", 1)   # the old busy worker may go once its job is done
        time.sleep(0.002)
    out, err = ctl.communicate()
    assert ctl.returncode == 0, err
    assert out.startswith("restarted: default=2")
    assert "restarting" in states and fewest >= 1    # never below count - 1
    new = set(m.wait_workers(2))
    assert not new & old

    r.rpush("test:release", 1)
    wait_log(r, "finished:")                   # the job that ran through the restart
    for _ in range(4):
        resque.enqueue("default", "Version")
    wait_log(r, "v2:", 4)
    assert not [e for e in log_entries(r) if e.startswith("v1:")][1:]
    assert failures(r) == [] and r.llen("resque:queue:default") == 0
    assert "restart: replaced by a worker running the new code" in log_text(m.proc)
    assert "pool default restarted: its old workers finish their jobs, new ones run the new code" in log_text(m.proc)
    assert stop(m.proc) == 0


def test_a_restart_whose_code_does_not_import_touches_no_worker(master_factory, r, tmp_path):
    jobs = tmp_path / "versioned.py"
    write_jobs(jobs, "v1")
    m = master_factory(["queues: [default]\ncount: 2"], jobs=f"[{jobs}]")
    before = m.wait_workers(2)
    spawner = m.status()["spawner"]["pid"]
    write_jobs(jobs, "v2", broken=True)
    result = m.ctl("restart")
    assert result.returncode == 78
    assert "restart refused, the workers keep the code they run" in result.stderr and "SyntaxError" in result.stderr
    status = m.status()
    assert sorted(w["pid"] for w in status["workers"]) == before and status["spawner"]["pid"] == spawner
    assert status["master"]["state"] == "running"
    unknown = m.ctl("restart", "nosuchpool")
    assert unknown.returncode == 1 and "no pool nosuchpool (pools: default)" in unknown.stderr
    assert stop(m.proc) == 0


def test_hup_with_on_hup_restart_restarts_every_worker(master_factory, r, resque, tmp_path):
    jobs = tmp_path / "versioned.py"
    write_jobs(jobs, "v1")
    m = master_factory(["queues: [default]\ncount: 1", "queues: [mail]\ncount: 1"], jobs=f"[{jobs}]",
                       on_hup="restart")
    old = set(m.wait_workers(2))
    write_jobs(jobs, "v2")
    m.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: (w := set(m.workers())) and len(w) == 2 and not w & old, timeout=30,
               message="both pools' workers replaced")
    resque.enqueue("mail", "Version")
    wait_log(r, "v2:")
    status = json.loads(m.ctl("status", "--json").stdout)
    assert [p["alive"] for p in status["pools"]] == [1, 1] and failures(r) == []
    assert stop(m.proc) == 0


def test_a_restart_whose_new_workers_die_at_boot_ends_with_the_reason(master_factory, r, tmp_path):
    """The new code imports in the check but its workers die at boot: the
    pool turns FAILED, the restart ends (exit 1, the reason), the old
    workers keep serving; a restart once the code is fixed brings it back."""
    flag = tmp_path / "configured"
    jobs = tmp_path / "versioned.py"
    write_jobs(jobs, "v1")
    m = master_factory(["queues: [default]\ncount: 1\nstart_retries: 1"], jobs=f"[{jobs}]")
    [old] = m.wait_workers(1)
    # v2 imports while the flag exists (the restart's check), then not.
    flag.write_text("")
    jobs.write_text(f"import os\nif not os.path.exists({str(flag)!r}):\n    raise RuntimeError('db not configured')\n"
                    + VERSIONED.format(version="v2"))
    ctl = subprocess.Popen([sys.executable, "-m", "resqued.ctl", "-c", str(m.config), "restart"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": ROOT})
    wait_until(lambda: "restarting default" in log_text(m.proc), message="the restart's check to pass")
    flag.unlink()
    out, err = ctl.communicate(timeout=90)
    assert ctl.returncode == 1, (out, err)
    assert "restart stopped: pool default FAILED: its workers died at boot 2 times in a row" in err
    status = m.status()
    assert [w["pid"] for w in status["workers"] if w["state"] != "stopping"] == [old]
    assert status["master"]["state"] == "running" and status["pools"][0]["failed"]
    flag.write_text("")
    result = m.ctl("restart")
    assert result.returncode == 0, result.stderr
    assert not m.status()["pools"][0]["failed"]
    assert stop(m.proc) == 0


def descriptors(pid):
    """fd number -> what it is (``socket:[inode]``, a path, ``pipe:[inode]``)."""
    found = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            found[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
        except FileNotFoundError:
            pass
    return found


def test_the_new_spawner_holds_nothing_of_the_master_but_its_own_socket(master_factory, r, tmp_path):
    """It is forked while the master holds the old spawner's socket and the
    restart request's connection: neither may reach it, nor what it forks."""
    m = master_factory(["queues: [default]\ncount: 1"])
    m.wait_workers(1)
    old_spawner = m.status()["spawner"]["pid"]
    master_before = set(descriptors(m.pid).values())
    result = m.ctl("restart")
    assert result.returncode == 0, result.stderr
    spawner = m.status()["spawner"]["pid"]
    assert spawner != old_spawner
    held = {fd: what for fd, what in descriptors(spawner).items() if fd > 2}
    assert len(held) == 1 and next(iter(held.values())).startswith("socket:"), held
    # Its own end of the new socketpair; the master's end of the old one was in the master.
    assert not set(held.values()) & master_before
    assert stop(m.proc) == 0


VERSION_JOB = """
import os
import redis
import resqued.version


class ResquedVersion:
    def perform(self):
        redis.Redis.from_url(os.environ["REDIS_BACKEND"]).rpush("test:log", "resqued:" + resqued.version.__version__)
"""

# The master run on a copy of resqued (first on its import path), as an
# installed one would be: `python -m resqued` in ROOT would find ROOT's.
FROM_COPY = "import sys; sys.path.insert(0, sys.argv.pop(1)); from resqued.cli import main; sys.exit(main())"


class CopyMaster(Master):
    def __init__(self, procs, tmp_path, redis_url, pools, code, **top):
        self.config = write_config(tmp_path / "pool.yml", redis_url, pools, **top)
        self.redis_url = redis_url
        self.proc = procs.spawn([sys.executable, "-c", FROM_COPY, str(code), "-c", str(self.config)],
                                env={"REDIS_BACKEND": redis_url}, name="master")
        self.pid = self.proc.pid


def test_restart_loads_new_resqued_code_too(procs, tmp_path, redis_url, r, resque):
    """The new spawner is a fresh interpreter: upgrading resqued on disk and
    running `resquectl restart` gives the workers the new resqued, not only
    the new jobs; the master keeps running its own."""
    code = tmp_path / "code"
    shutil.copytree(os.path.join(ROOT, "resqued"), code / "resqued", ignore=shutil.ignore_patterns("__pycache__"))
    jobs = tmp_path / "versionjob.py"
    jobs.write_text(VERSION_JOB)
    m = CopyMaster(procs, tmp_path, redis_url, ["queues: [default]\ncount: 1"], code, jobs=f"[{jobs}]")
    [old] = m.wait_workers(1)
    resque.enqueue("default", "ResquedVersion")
    wait_log(r, f"resqued:{__version__}")

    (code / "resqued" / "version.py").write_text('__version__ = "9.9.9"\n')
    result = m.ctl("restart")
    assert result.returncode == 0, result.stderr
    [new] = wait_until(lambda: [w for w in m.workers() if w != old] if old not in m.workers() else None,
                       message="the worker replaced")
    assert title(new).startswith("resque-9.9.9: ")
    resque.enqueue("default", "ResquedVersion")
    wait_log(r, "resqued:9.9.9")
    assert m.status()["master"]["pid"] == m.pid
    assert stop(m.proc) == 0
