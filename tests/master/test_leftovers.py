"""What a job leaves running, even in a session of its own (setsid and a
double fork, as a daemon does), ends with the job, or with the master's stop
when the job was killed (resqued/process/descendants.py)."""

import os
import signal

import psutil

from conftest import log_text, wait_until
from helpers import failures, pid_gone

LEAVING = '''
import os
import signal
import time


def _publish(path, pid):
    with open(path + ".tmp", "w") as f:
        f.write(str(pid))
    os.rename(path + ".tmp", path)


def _escape(path):
    """setsid() and fork twice, as a daemon does; then exec sleep."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                _publish(path, os.getpid())
                os.execvp("sleep", ["sleep", "300"])
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _stay(path):
    """Forked without exec (it keeps the job's title), deaf to SIGTERM."""
    if os.fork() == 0:
        try:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            _publish(path, os.getpid())
            while True:
                signal.pause()   # until killed: TERM is ignored, so KILL
        finally:
            os._exit(0)


def _wait_for(*paths):
    deadline = time.monotonic() + 10
    while not all(os.path.exists(p) for p in paths) and time.monotonic() < deadline:
        time.sleep(0.01)


class LeavesProcesses:
    def perform(self):
        base = self.args["base"]
        _escape(base + ".escaped")
        _stay(base + ".stayed")
        _wait_for(base + ".escaped", base + ".stayed")


class LeavesProcessesAndDies:
    def perform(self):
        base = self.args["base"]
        _escape(base + ".escaped")
        _wait_for(base + ".escaped")
        os.kill(os.getpid(), signal.SIGKILL)


class LeavesProcessesAndWaits:
    def perform(self):
        base = self.args["base"]
        _escape(base + ".escaped")
        _wait_for(base + ".escaped")
        time.sleep(300)
'''


def read_pid(path):
    return int(wait_until(lambda: os.path.exists(path) and open(path).read(), message=path))


def kill_all(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def leaving_master(master_factory, tmp_path):
    jobs = tmp_path / "leaving.py"
    jobs.write_text(LEAVING)
    return master_factory(["queues: [default]\ncount: 1"], jobs=f"[{jobs}]", term_timeout=1)


def test_what_a_job_leaves_running_ends_with_it(master_factory, r, resque, tmp_path):
    m = leaving_master(master_factory, tmp_path)
    [worker] = m.wait_workers(1)
    base = str(tmp_path / "job")
    resque.enqueue("default", "LeavesProcesses", {"base": base})
    pids = [read_pid(base + ".escaped"), read_pid(base + ".stayed")]
    try:
        # The one deaf to SIGTERM gets SIGKILL term_timeout (1 s) later.
        wait_until(lambda: all(pid_gone(p) for p in pids), timeout=15, message="what the job left running to end")
        wait_until(lambda: r.get("resque:stat:processed") == b"1", message="the job counted as processed")
        assert failures(r) == [] and m.workers() == [worker]
        assert "left processes running (pids" in log_text(m.proc)
        assert m.ctl("stop").returncode == 0
    finally:
        kill_all(pids)


def test_a_stop_ends_what_a_killed_job_left_running(master_factory, r, resque, tmp_path):
    m = leaving_master(master_factory, tmp_path)
    m.wait_workers(1)
    base = str(tmp_path / "job")
    resque.enqueue("default", "LeavesProcessesAndDies", {"base": base})
    escaped = read_pid(base + ".escaped")
    try:
        wait_until(lambda: failures(r), message="the killed job's failure")
        # Its job child died at once: nothing ended it then; the master adopted it.
        assert psutil.Process(escaped).ppid() == m.pid and not pid_gone(escaped)
        result = m.ctl("stop")
        assert result.returncode == 0, result.stderr
        assert pid_gone(escaped)
        assert f"ending what jobs left running, adopted by the master (pids {escaped})" in log_text(m.proc)
    finally:
        kill_all([escaped])


def test_killing_a_job_kills_what_it_started_in_a_session_of_its_own(master_factory, r, resque, tmp_path):
    m = leaving_master(master_factory, tmp_path)
    [worker] = m.wait_workers(1)
    base = str(tmp_path / "job")
    resque.enqueue("default", "LeavesProcessesAndWaits", {"base": base})
    escaped = read_pid(base + ".escaped")
    try:
        os.kill(worker, signal.SIGUSR1)   # kill the running job, keep working
        wait_until(lambda: failures(r), message="the killed job's failure")
        wait_until(lambda: pid_gone(escaped), message="what the killed job started to end with it")
        assert m.workers() == [worker]
        assert m.ctl("stop").returncode == 0
    finally:
        kill_all([escaped])
