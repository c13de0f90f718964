"""The spawner's socket protocol (resqued/spawner/protocol.py), both ends in
one process over a real socketpair: what is sent is what is received, and
anything else is refused as a ProtocolError, its descriptors closed."""

import os
import socket

import pytest

from resqued.spawner import protocol


@pytest.fixture
def pair():
    master, spawner = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    yield master, spawner
    master.close()
    spawner.close()


def open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


def test_a_worker_request_arrives_with_its_settings_and_report_pipe(pair):
    master, spawner = pair
    read_fd, write_fd = os.pipe()
    spec = {"pool": {"queues": ["default"]}, "aliases": {f"Job{i}": "add" for i in range(20000)}}
    protocol.send_request(master, protocol.ForkWorker(spec, write_fd))
    os.close(write_fd)
    request = protocol.receive_request(spawner)
    assert isinstance(request, protocol.ForkWorker) and request.spec == spec
    os.write(request.report_fd, b"hello")   # the same pipe, passed across
    os.close(request.report_fd)
    assert os.read(read_fd, 5) == b"hello"
    os.close(read_fd)


def test_a_recovery_request_and_the_end_of_the_master(pair):
    master, spawner = pair
    protocol.send_request(master, protocol.ForkRecovery({"workers": [["host:1:default", "lost"]]}))
    assert protocol.receive_request(spawner) == protocol.ForkRecovery({"workers": [["host:1:default", "lost"]]})
    master.close()
    assert protocol.receive_request(spawner) is None


@pytest.mark.parametrize("kind, fd_count, content, problem", [
    (b"X", 1, b"{}", "unknown request b'X'"),
    (b"W", 1, b"{}", "request W with 1 descriptors, not 2"),
    (b"L", 1, b"not json", "request L with unreadable settings"),
    (b"L", 1, b"[1, 2]", "request L with settings that are no JSON object"),
])
def test_a_malformed_request_is_refused_and_its_descriptors_closed(pair, kind, fd_count, content, problem):
    master, spawner = pair
    fds = [os.memfd_create("test")]
    os.write(fds[0], content)
    fds += [os.open(os.devnull, os.O_RDONLY) for _ in range(fd_count - 1)]
    socket.send_fds(master, [kind], fds)
    for fd in fds:
        os.close(fd)
    before = open_fds()
    with pytest.raises(protocol.ProtocolError, match=problem.replace("[", r"\[")):
        protocol.receive_request(spawner)
    assert open_fds() == before


def test_replies_round_trip_and_garbage_is_refused():
    assert protocol.decode_reply(protocol.encode_reply(protocol.Forked(4242))) == protocol.Forked(4242)
    assert protocol.decode_reply(protocol.encode_reply(protocol.Refused("fork failed"))) == \
        protocol.Refused("fork failed")
    assert protocol.encode_reply(protocol.Forked(7)) == b"P 7"      # the wire, as before
    assert protocol.encode_reply(protocol.Refused("no")) == b"E no"
    for garbage in (b"P", b"P x", b"Q 1", b"R"):
        with pytest.raises(protocol.ProtocolError):
            protocol.decode_reply(garbage)
