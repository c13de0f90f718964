"""The control socket and pidfiles against bad input: the master answers
every bad request with one clear error and keeps running; paths that are not
what they should be are refused."""

import json
import os
import socket

import pytest

from conftest import wait_until
from resqued.ctl.masterclient import request
from resqued.master.control import ControlError, ControlServer
from resqued.process.pidfile import Pidfile, PidfileError
from masters import TWO_POOLS


def raw_request(path, data: bytes) -> dict:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(path)
    sock.sendall(data)
    reply = b""
    while not reply.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        reply += chunk
    sock.close()
    return json.loads(reply)


@pytest.mark.parametrize("data,error", [
    (b"not json\n", "not JSON"),
    (b"[1,2]\n", "not a JSON object"),
    (b'{"command": "rm -rf /"}\n', "unknown command"),
    (b'{"command": null}\n', "unknown command"),
    (b'\xff\xfe{"command":"status"}\n', "not JSON"),
    (b'{"command": "status"' + b" " * 70000 + b"}\n", "longer than"),
    (b'{"command": "pause", "wait": NaN}\n', "wait must be a number of seconds above 0"),
])
def test_bad_requests_get_one_line_errors_and_master_goes_on(master_factory, tmp_path, data, error):
    m = master_factory(TWO_POOLS)
    m.wait_workers(3)
    path = str(tmp_path / "var/run/resqued.sock")
    answer = raw_request(path, data)
    assert answer["ok"] is False and error in answer["error"] and "\n" not in answer["error"]
    # A client that connects and says nothing, or hangs up, does not block the master.
    idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    idle.connect(path)
    assert request(path, "status")["master"]["pid"] == m.pid
    idle.close()
    assert m.proc.poll() is None


def test_control_socket_refuses_non_socket_and_live_socket(tmp_path):
    regular = tmp_path / "file.sock"
    regular.write_text("precious")
    with pytest.raises(ControlError, match="not a socket"):
        ControlServer(str(regular)).open()
    assert regular.read_text() == "precious"
    link = tmp_path / "link.sock"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ControlError, match="not a socket"):
        ControlServer(str(link)).open()
    live = ControlServer(str(tmp_path / "live.sock"))
    live.open()
    try:
        assert oct(os.stat(live.path).st_mode & 0o777) == "0o600"
        with pytest.raises(ControlError, match="in use by a running master"):
            ControlServer(live.path).open()
    finally:
        live.close()
    # A socket file left behind by a dead master is replaced.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / "stale.sock"))
    stale.close()
    server = ControlServer(str(tmp_path / "stale.sock"))
    server.open()
    server.close()
    assert not (tmp_path / "stale.sock").exists()


def test_pidfile_refuses_symlink_and_removes_only_its_own(tmp_path):
    target = tmp_path / "target"
    target.write_text("not yours")
    link = tmp_path / "resqued.pid"
    link.symlink_to(target)
    with pytest.raises(PidfileError, match="symbolic link"):
        Pidfile(str(link)).create()
    assert target.read_text() == "not yours"
    own = Pidfile(str(tmp_path / "own.pid"))
    own.create()
    assert (tmp_path / "own.pid").read_text().strip() == str(os.getpid())
    own.remove(pid=os.getpid() + 1)  # someone else's pid: not removed
    assert (tmp_path / "own.pid").exists()
    own.remove()
    assert not (tmp_path / "own.pid").exists()
    assert sorted(os.listdir(tmp_path)) == ["resqued.pid", "target"]  # no temp or lock files left


def test_status_memory_of_an_idle_worker_is_the_pss_of_it_and_its_helpers(master_factory, tmp_path):
    import psutil
    from helpers import title
    m = master_factory(["queues: [default]\ncount: 1"])
    [worker] = m.wait_workers(1)
    path = str(tmp_path / "var/run/resqued.sock")
    def titled():
        # A standby has its forker's title until it sets its own, just after the fork.
        found = psutil.Process(worker).children(recursive=True)
        names = sorted(title(p.pid).split(": ")[1].split(" for ")[0] for p in found)
        return found if names == ["Job forker", "Standby"] else None
    helpers = wait_until(titled, message="the forker and its standby, titled")
    [entry] = request(path, "status")["workers"]
    processes = [psutil.Process(worker), *helpers]
    rss = sum(p.memory_info().rss for p in processes)
    pss = sum(p.memory_full_info().pss for p in processes)
    # The three share most of their pages: their PSS adds up to far less than
    # their RSS (which counts every shared page three times), within what
    # moved between the two readings.
    assert abs(entry["memory"] - pss) < 0.1 * pss and entry["memory"] < 0.7 * rss


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to try the socket as another user")
def test_another_user_is_told_to_run_resquectl_as_the_masters_user(master_factory, tmp_path):
    m = master_factory(["queues: [default]\ncount: 1"])
    m.wait_workers(1)
    import sys
    from resqued.ctl.cli import main    # loaded before: the other user may not read the checkout
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:       # another user, with resquectl's code already loaded
        code = 99
        try:
            os.close(read_fd)
            os.setgid(65534)
            os.setuid(65534)
            sys.stderr = os.fdopen(write_fd, "w", buffering=1)
            code = main(["--socket", str(tmp_path / "var/run/resqued.sock"), "status"])
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
        err = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 1 and "Traceback" not in err, err
    assert "permission denied" in err and "sudo -u resqued" in err
