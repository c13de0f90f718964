"""Failures an operator can see without reading worker logs: a FAILED pool
says why (resquectl status, --json, systemd's STATUS=), workers that cannot
reach Redis show as redis-down, and READY=1 does not wait for Redis."""

import os
import signal
import socket

from conftest import stop, wait_until


def test_a_failed_pool_says_why(master_factory, tmp_path):
    flag = tmp_path / "configured"
    flag.write_text("")
    jobs = tmp_path / "fragile.py"
    # Imports while the flag exists (the start's check passes), then not.
    jobs.write_text(f"import os\nif not os.path.exists({str(flag)!r}):\n"
                    "    raise RuntimeError('db not configured')\n\n\nclass Ok:\n    def perform(self):\n        pass\n")
    # start_retries: 1, so that the test does not wait out the default's backoff (0.5+1+2+4+8 s).
    m = master_factory(["queues: [default]\ncount: 1\nstart_retries: 1"], jobs=f"[{jobs}]")
    [worker] = m.wait_workers(1)
    flag.unlink()
    os.kill(worker, signal.SIGKILL)
    status = wait_until(lambda: (s := m.status()) and s["pools"][0]["failed"] and s, timeout=60,
                        message="the pool to fail")
    [pool] = status["pools"]
    assert "RuntimeError: db not configured" in pool["last_error"]
    assert pool["reason"] == "its workers died at boot 2 times in a row (last: exit code 3)"
    human = m.ctl("status")
    assert human.returncode == 0
    assert f"pool default FAILED: {pool['reason']}; last error: {pool['last_error']}" in human.stdout.splitlines()
    assert stop(m.proc) == 0


def test_ready_with_redis_down_at_start_and_workers_shown_redis_down(master_factory, tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(30)
    try:
        m = master_factory(["queues: [default]\ncount: 2"], redis="redis://127.0.0.1:1/0",
                           env={"NOTIFY_SOCKET": path})
        seen = []
        while not any("READY=1" in s for s in seen):
            seen.append(sock.recv(4096).decode())      # a timeout fails the test
        status_lines = [line for s in seen for line in s.splitlines() if line.startswith("STATUS=")]
        assert status_lines[-1] == "STATUS=2 workers; 2 waiting for Redis at redis://127.0.0.1:1/0"
        status = m.status()
        assert [w["state"] for w in status["workers"]] == ["redis-down", "redis-down"]
        assert all(w["since"] and "Connection refused" in w["error"] for w in status["workers"])
        human = m.ctl("status").stdout
        assert human.count("redis-down") == 2
        assert stop(m.proc) == 0
    finally:
        sock.close()
