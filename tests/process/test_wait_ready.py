"""process/signals.wait_ready: poll(2) over report pipes, control
connections and the signal socket, as every loop of the master and the
worker waits."""

import os
import socket
import time

import pytest

from resqued.process.signals import wait_ready, wait_readable


class Fd:
    """An object with fileno(), as the master's children and connections are."""

    def __init__(self, fd):
        self.fd = fd

    def fileno(self):
        return self.fd


def test_readable_and_writable_ints_and_objects():
    r, w = os.pipe()
    a, b = socket.socketpair()
    try:
        reader = Fd(r)
        assert wait_ready([reader, a], [], 0) == ([], [])   # nothing written yet
        os.write(w, b"x")
        assert wait_ready([reader, a], [b], 0) == ([reader], [b])
        # Listed twice, or for reading and writing: once each, the first object given.
        assert wait_ready([reader, Fd(r)], [], 0) == ([reader], [])
        b.send(b"y")
        assert wait_ready([a], [a], 0) == ([a], [a])
        assert wait_readable([r, a], 0) == [r, a]
    finally:
        for fd in (r, w):
            os.close(fd)
        a.close()
        b.close()


def test_a_hang_up_is_news_to_a_reader():
    r, w = os.pipe()
    os.close(w)
    try:
        assert wait_readable([r], 0) == [r]   # EOF: the reader finds out by reading
    finally:
        os.close(r)


def test_a_closed_descriptor_is_reported_not_waited_on():
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    started = time.monotonic()
    assert wait_readable([r], 5) == [r]   # POLLNVAL: the reader's read fails and says why
    assert time.monotonic() - started < 1


def test_timeouts():
    r, w = os.pipe()
    try:
        with pytest.raises(ValueError):
            wait_ready([-1], [], 0)
        started = time.monotonic()
        assert wait_ready([r], [], 0.05) == ([], [])
        assert wait_ready([r], [], -1) == ([], [])   # negative: no wait
        assert wait_ready([r], [], 0.0004) == ([], [])   # rounded up to a millisecond, not down to none
        assert 0.04 <= time.monotonic() - started < 2
        os.write(w, b"x")
        assert wait_ready([r], [], None) == ([r], [])   # None: until ready
    finally:
        os.close(r)
        os.close(w)
