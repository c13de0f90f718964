"""The master under floods: a thousand clients that never finish their
request, clients that never read their answer, a storm of HUPs, a master
with no descriptor left. It stays up and answers a real ``resquectl status``
promptly throughout."""

import errno
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time

import psutil

from conftest import ROOT, log_text, wait_until
from resqued.ctl.masterclient import request

ONE_POOL = ["queues: [default]\ncount: 1"]


def control_path(tmp_path) -> str:
    return str(tmp_path / "var/run/resqued.sock")


def half_requests(path, n) -> list:
    """``n`` connections that each send half a request line and then nothing."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 200), hard))
    clients = []
    try:
        for _ in range(n):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            clients.append(sock)
            sock.settimeout(10)
            # A full listen queue says EAGAIN to a socket with a timeout: try
            # again until the master has accepted some (or the deadline).
            wait_until(lambda: sock.connect_ex(path) != errno.EAGAIN, interval=0.001,
                       message="the master to accept connections")
            sock.sendall(b'{"command": "sta')
    except BaseException:
        close_all(clients)
        raise
    return clients


def close_all(socks) -> None:
    for sock in socks:
        sock.close()


def timed_ctl_status(master, limit=5.0):
    """The master answers status within ``limit`` seconds, and resquectl
    status works. The bound is on the master's answer alone: a fresh
    resquectl interpreter on a loaded machine takes seconds of its own."""
    start = time.monotonic()
    request(str(master.config.parent / "var/run/resqued.sock"), "status", timeout=30)
    took = time.monotonic() - start
    assert took < limit, f"the master took {took:.1f}s to answer status"
    result = master.ctl("status", timeout=30)
    assert result.returncode == 0, result.stderr
    return result


def test_a_thousand_unfinished_requests_do_not_take_the_master_down(master_factory, tmp_path):
    m = master_factory(ONE_POOL)
    m.wait_workers(1)
    clients = half_requests(control_path(tmp_path), 1000)
    try:
        assert m.proc.poll() is None, log_text(m.proc)[-2000:]
        timed_ctl_status(m)
        # The master holds a bounded number of them, not a thousand descriptors.
        assert psutil.Process(m.pid).num_fds() < 200
    finally:
        close_all(clients)
    assert m.proc.poll() is None
    timed_ctl_status(m)


def test_a_master_out_of_descriptors_sheds_connections_and_still_answers(master_factory, tmp_path):
    m = master_factory(ONE_POOL)
    m.wait_workers(1)
    master = psutil.Process(m.pid)
    # Room for 30 more descriptors: far fewer than the connections it is sent.
    limit = master.num_fds() + 30
    master.rlimit(psutil.RLIMIT_NOFILE, (limit, limit))
    clients = half_requests(control_path(tmp_path), 300)
    try:
        assert m.proc.poll() is None, log_text(m.proc)[-2000:]
        timed_ctl_status(m)
        assert master.num_fds() <= limit
    finally:
        close_all(clients)
    wait_until(lambda: "cannot accept a connection" in log_text(m.proc) or "closing the oldest" in log_text(m.proc),
               message="the master to say it shed connections")
    assert m.proc.poll() is None
    timed_ctl_status(m)


def big_status_pools(n_pools=8, queues_each=2500) -> list:
    # Pools of count 0 with long queue lists: an answer to status of ~600 KB,
    # more than a socket buffer holds, without running hundreds of workers.
    pools = list(ONE_POOL)
    for p in range(n_pools):
        names = ", ".join(f"q{p}_{i:05d}_padding_padding" for i in range(queues_each))
        pools.append(f"queues: [{names}]\ncount: 0")
    return pools


def test_clients_that_never_read_their_answer_do_not_stall_the_master(master_factory, tmp_path):
    m = master_factory(big_status_pools())
    m.wait_workers(1)
    path = control_path(tmp_path)
    sleepers = []
    try:
        for _ in range(10):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sleepers.append(sock)
            sock.connect(path)
            sock.sendall(b'{"command": "status"}\n')   # and never read
        start = time.monotonic()
        answer = request(path, "status", timeout=30)
        assert time.monotonic() - start < 3, f"status took {time.monotonic() - start:.1f}s"
        assert len(answer["pools"]) == 9
        timed_ctl_status(m, limit=5)
    finally:
        close_all(sleepers)
    assert m.proc.poll() is None


SLOW_JOBS = """
import time
time.sleep(0.5)   # a reload checks that the jobs import: here it takes 0.5 s, longer than the storm


class Noop:
    @staticmethod
    def perform():
        pass
"""


def test_a_storm_of_hups_is_a_couple_of_reloads_and_status_is_answered_throughout(master_factory, tmp_path):
    jobs = tmp_path / "slowjobs.py"
    jobs.write_text(SLOW_JOBS)
    m = master_factory(ONE_POOL, jobs=f"[{jobs}]")
    m.wait_workers(1)
    path = control_path(tmp_path)
    latencies, stop = [], threading.Event()

    def ask_status():
        while not stop.is_set():
            start = time.monotonic()
            try:
                request(path, "status", timeout=30)
            except Exception:
                latencies.append(float("inf"))
                return
            latencies.append(time.monotonic() - start)
            time.sleep(0.02)

    asker = threading.Thread(target=ask_status)
    asker.start()
    try:
        start = time.monotonic()
        for _ in range(200):
            # Spread over a fraction of a second, as a loop of `kill -HUP` in
            # a shell sends them: each one lands apart, none merges with the next.
            os.kill(m.pid, signal.SIGHUP)
            time.sleep(0.001)
        storm = time.monotonic() - start
        wait_until(lambda: "reloaded" in log_text(m.proc), message="a reload")
        wait_until(lambda: len(latencies) >= 20, timeout=20, message="status answers after the storm")
    finally:
        stop.set()
        asker.join(30)
    reloads = log_text(m.proc).count("reloaded ")
    # The first HUP's reload, and one for all those that came during it
    # (one more if the storm outlasted a reload on a loaded machine).
    assert 1 <= reloads <= 2 + int(storm / 0.5), f"{reloads} reloads for one storm of HUPs ({storm:.2f}s)"
    assert max(latencies) < 5, f"a status took {max(latencies):.1f}s during the storm"
    assert m.proc.poll() is None
    assert len(m.wait_workers(1)) == 1


def test_resquectl_status_against_a_closing_master_says_so_without_a_traceback(tmp_path):
    # A master closing its socket resets what it has not answered (a
    # connection it never accepted), or cuts an answer short.
    path = str(tmp_path / "closing.sock")
    for behaviour in ("reset", "half"):
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(4)

        def serve():
            conn, _ = server.accept()
            select.select([conn], [], [], 10)   # the request has arrived
            if behaviour == "half":
                conn.recv(4096)
                conn.sendall(b'{"ok": true, "master": {"pid"')
            conn.close()   # "reset": with the request unread, the client sees ECONNRESET

        thread = threading.Thread(target=serve)
        thread.start()
        try:
            result = subprocess.run([sys.executable, "-m", "resqued.ctl", "--socket", path, "status"],
                                    capture_output=True, text=True, timeout=30, cwd=ROOT,
                                    env={**os.environ, "PYTHONPATH": ROOT})
        finally:
            thread.join(10)
            server.close()
            os.unlink(path)
        assert result.returncode == 1, (behaviour, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        assert result.stderr.startswith("resquectl: the master closed the connection without answering 'status'")
