"""The master starts its spawner and its code probes by exec, which can
fail where a fork could not: the interpreter gone from a venv that a deploy
is rebuilding. The master refuses what needs one, says why, and lives on."""

import os
import signal
import sys
import sysconfig

from conftest import log_text, stop, wait_until
from masters import Master, write_config


class GoneInterpreterMaster(Master):
    """A master run by an interpreter whose path the test can take away."""

    def __init__(self, procs, tmp_path, redis_url, pools):
        self.python = tmp_path / "bin" / "python3"
        self.python.parent.mkdir()
        self.python.symlink_to(os.path.realpath(sys.executable))
        self.config = write_config(tmp_path / "pool.yml", redis_url, pools)
        self.redis_url = redis_url
        # Outside the venv by its path: its packages come through PYTHONPATH.
        packages = os.pathsep.join({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
        self.proc = procs.spawn([str(self.python), "-m", "resqued", "-c", str(self.config)],
                                env={"REDIS_BACKEND": redis_url,
                                     "PYTHONPATH": os.pathsep.join([packages, os.environ.get("PYTHONPATH", "")])},
                                name="master")
        self.pid = self.proc.pid


def test_a_master_whose_interpreter_is_gone_refuses_restart_and_reload_and_lives(procs, tmp_path, redis_url):
    master = GoneInterpreterMaster(procs, tmp_path, redis_url, ["queues: [default]\ncount: 1"])
    [worker] = master.wait_workers(1)
    master.python.unlink()

    result = master.ctl("restart")
    assert result.returncode != 0 and "cannot start a Python interpreter" in result.stderr, result.stderr
    # A reload needs no exec: a child of the running spawner checks the code.
    os.kill(master.pid, signal.SIGHUP)
    wait_until(lambda: "reloaded " in log_text(master.proc), message="the reload applied")
    # A dead spawner cannot be replaced: said, and tried again later.
    spawner = master.status()["spawner"]["pid"]
    os.kill(spawner, signal.SIGKILL)
    wait_until(lambda: "cannot start the worker spawner" in log_text(master.proc), message="the failed start")
    # Meanwhile a reload's check needs an interpreter too: refused, and why.
    os.kill(master.pid, signal.SIGHUP)
    wait_until(lambda: "reload refused" in log_text(master.proc), message="the reload refused")
    assert "cannot start a Python interpreter" in log_text(master.proc)
    assert master.proc.poll() is None and master.workers() == [worker]
    assert master.status()["master"]["state"] == "running"

    master.python.symlink_to(os.path.realpath(sys.executable))   # the deploy is done
    result = master.ctl("restart")
    assert result.returncode == 0, result.stderr
    stop(master.proc)
