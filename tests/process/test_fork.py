"""process/fork.py: a forked child leaves through its exit, whatever it runs."""

import os
import socket

from resqued.process.fork import fork_child


def _status(pid: int) -> int:
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_the_child_exits_with_what_it_returns():
    assert _status(fork_child(lambda: 7)) == 7
    assert _status(fork_child(lambda: None)) == 0


def test_a_child_that_raises_never_returns_into_the_caller():
    read_fd, write_fd = os.pipe()

    def crash():
        raise RuntimeError("boom")

    pid = fork_child(crash, on_crash=lambda: os.write(write_fd, b"crashed"))
    # Only the parent gets here: a child that came back would write it too.
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        said = pipe.read()
    assert _status(pid) == 1
    assert said == b"crashed"


def test_the_child_closes_what_it_is_given():
    read_fd, write_fd = os.pipe()
    ours, theirs = socket.socketpair()
    pid = fork_child(lambda: 0, close=(write_fd, theirs))
    os.close(write_fd)
    theirs.close()
    assert _status(pid) == 0
    assert os.read(read_fd, 1) == b""      # no writer left: the child closed its copy
    assert ours.recv(1) == b""             # and its socket's
    os.close(read_fd)
    ours.close()


def test_the_exit_given_is_the_one_used():
    pid = fork_child(lambda: 3, exit=lambda code: os._exit(code + 40))
    assert _status(pid) == 43
