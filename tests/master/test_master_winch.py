"""WINCH to the master, resque-pool's meaning: stop every worker and start
none until HUP. Honoured only when the master has no controlling terminal,
where a window resize sends WINCH too."""

import os
import pty
import signal
import sys

from conftest import log_text, stop, wait_until
from helpers import failures, log_entries, pid_gone, title, wait_log
from masters import Master, write_config

# Run the rest of argv in a session of its own, as a daemon or a service
# runs; with a tty path first, that terminal becomes the session's controlling
# terminal (a session leader's first open of a tty takes it), as in a shell.
IN_SESSION = """
import os, sys
os.setsid()
if sys.argv[1]:
    os.close(os.open(sys.argv[1], os.O_RDWR))
os.execv(sys.argv[2], sys.argv[2:])
"""


class SessionMaster(Master):
    def __init__(self, procs, tmp_path, redis_url, pools, tty=""):
        self.config = write_config(tmp_path / "pool.yml", redis_url, pools)
        self.redis_url = redis_url
        command = [sys.executable, "-m", "resqued", "-c", str(self.config)]
        self.proc = procs.spawn([sys.executable, "-c", IN_SESSION, tty, *command],
                                env={"REDIS_BACKEND": redis_url}, name="master")
        self.pid = self.proc.pid

    def terminal(self) -> int:
        """The device number of its controlling terminal, 0 for none."""
        with open(f"/proc/{self.pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[4])

    def pool_counts(self, status):
        return [(p["queues"], p["count"], p["alive"]) for p in status["pools"]]


POOLS = ["queues: [default]\ncount: 2", "queues: [mail]\ncount: 1"]


def test_winch_stops_every_worker_until_hup(procs, tmp_path, redis_url, r, resque):
    m = SessionMaster(procs, tmp_path, redis_url, POOLS)
    before = m.wait_workers(3)
    assert m.terminal() == 0
    resque.enqueue("default", "Slow", {"seconds": 60})
    wait_log(r, "started:")

    m.proc.send_signal(signal.SIGWINCH)
    wait_until(lambda: title(m.pid).endswith(": winched"), timeout=20, message="the winched title")
    # QUIT, not TERM: the idle workers leave, the busy one finishes its job first.
    wait_until(lambda: len([p for p in before if pid_gone(p)]) == 2, timeout=20, message="idle workers gone")
    status = m.status()
    assert status["master"]["state"] == "winched"
    assert m.pool_counts(status) == [(["default"], 2, 0), (["mail"], 1, 0)]
    assert [w["state"] for w in status["workers"]] == ["stopping"]
    human = m.ctl("status")
    assert human.returncode == 0 and "stopped by WINCH" in human.stdout
    r.rpush("test:release", 1)
    wait_until(lambda: all(pid_gone(p) for p in before), timeout=30, message="every worker gone")
    assert any(e.startswith("finished:") for e in log_entries(r)) and failures(r) == []

    # Every worker is reaped, and the turn that reaps one is the one that would
    # replace it: a status listing no worker proves none was started.
    wait_until(lambda: m.status()["workers"] == [], timeout=20, message="the master to reap them all")
    # TTIN/TTOU while winched set the counts the workers come back to.
    m.proc.send_signal(signal.SIGTTIN)
    status = wait_until(lambda: (s := m.status()) and s["pools"][0]["count"] == 3 and s, timeout=20,
                        message="TTIN's new count")
    assert m.pool_counts(status) == [(["default"], 3, 0), (["mail"], 2, 0)]
    assert status["workers"] == [] and m.workers(starting=True) == []
    assert m.proc.poll() is None
    assert (tmp_path / "var/run/resqued.pid").read_text().strip() == str(m.pid)

    m.proc.send_signal(signal.SIGHUP)
    after = m.wait_workers(5, "the workers back after HUP")
    assert not set(after) & set(before)
    wait_until(lambda: title(m.pid).endswith(": managing 5 workers"), timeout=20, message="managing title")
    assert m.status()["master"]["state"] == "running"
    assert stop(m.proc, timeout=30) == 0
    assert all(pid_gone(p) for p in after)


def test_winch_with_a_controlling_terminal_is_a_window_resize(procs, tmp_path, redis_url):
    controller, terminal = pty.openpty()
    try:
        m = SessionMaster(procs, tmp_path, redis_url, ["queues: [default]\ncount: 1"], tty=os.ttyname(terminal))
        before = m.wait_workers(1)
        assert m.terminal() == os.fstat(terminal).st_rdev
        m.proc.send_signal(signal.SIGWINCH)
        wait_until(lambda: "SIGWINCH ignored: the master has a controlling terminal" in log_text(m.proc),
                   timeout=20, message="the WINCH to be seen and ignored")
        status = m.status()
        assert status["master"]["state"] == "running"
        assert [w["pid"] for w in status["workers"]] == before
        assert status["workers"][0]["state"] != "stopping" and status["workers"][0]["stop_reason"] is None
        assert m.workers() == before
        assert stop(m.proc, timeout=30) == 0
    finally:
        # Closing the terminal hangs up its session: the master is gone by then.
        os.close(terminal)
        os.close(controller)
