"""The spawner process (resqued/spawner/main.py) on its own, started as the
master starts it, with the test as its master: it says R, refuses a
malformed request with one log line and an E reply, and goes on serving."""

import os
import socket

from conftest import wait_until
from resqued.process.interpreter import start_module
from resqued.protocols import spawnersocket as protocol


def start_spawner(tmp_path, master_pid):
    """A spawner whose stderr is tmp_path/spawner.log; (pid, our socket end)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    log = os.open(tmp_path / "spawner.log", os.O_WRONLY | os.O_CREAT)
    saved = os.dup(2)
    os.dup2(log, 2)   # what it inherits as stderr
    try:
        pid = start_module("resqued.spawner", [
            "--socket-fd", str(theirs.fileno()), "--title", "resqued-spawner[test]", "--master-pid",
            str(master_pid), "--log-level", "info", "--log-format", "text"], pass_fds=[theirs.fileno()])
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(log)
        theirs.close()
    ours.settimeout(20)
    return pid, ours


def test_the_spawner_refuses_a_malformed_request_and_goes_on_serving(tmp_path):
    pid, sock = start_spawner(tmp_path, os.getpid())
    try:
        assert protocol.decode_notice(sock.recv(16)) == protocol.SpawnerReady()
        socket.send_fds(sock, [b"X"], [os.memfd_create("garbage")])
        assert protocol.decode_reply(sock.recv(protocol.MAX_REPLY)) == protocol.NotForked("unknown request b'X'")
        log = wait_until(lambda: (tmp_path / "spawner.log").read_text().splitlines(), message="its log line")
        assert len(log) == 1 and "the worker spawner refused a request: unknown request b'X'" in log[0]
        # Still serving. (The run it forks is not adopted by us, no subreaper:
        # it sees that and leaves without running.)
        settings = os.memfd_create("settings")
        os.write(settings, protocol.ForkRecovery({"workers": []}).settings())
        socket.send_fds(sock, [b"L"], [settings])
        os.close(settings)
        assert isinstance(protocol.decode_reply(sock.recv(protocol.MAX_REPLY)), protocol.Forked)
    finally:
        sock.close()   # the master's end closed: it leaves
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_spawner_whose_master_is_gone_leaves_at_once(tmp_path):
    pid, sock = start_spawner(tmp_path, 1)   # not its parent: the master died before it started
    try:
        assert sock.recv(16) == b""
    finally:
        sock.close()
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
