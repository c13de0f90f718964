"""What keptprocess.py does with a process that dies or will not stop,
with real processes (the master's loop is stood in for: start_due, reap,
on_exit)."""

import os
import sys
import time

import pytest

from resqued.master.keptprocess import SETTLED, KeptProcess


class Quitter(KeptProcess):
    """Exits at once with code 3, as a scheduler that cannot start would."""
    what = "a quitter"

    def wanted(self, config):
        return config

    def launch(self, serves) -> int:
        return os.posix_spawn(sys.executable, [sys.executable, "-c", "raise SystemExit(3)"], os.environ)


class Stubborn(KeptProcess):
    """Ignores TERM (says so on its stdout, our pipe): only KILL ends it."""
    what = "a stubborn one"

    def __init__(self, said):
        super().__init__("stubborn")
        self.said = said

    def wanted(self, config):
        return config

    def launch(self, serves) -> int:
        code = ("import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "os.write(1, b'ignoring'); time.sleep(60)")
        return os.posix_spawn(sys.executable, [sys.executable, "-c", code], os.environ,
                              file_actions=[(os.POSIX_SPAWN_DUP2, self.said, 1)])

    def grace_for(self, config) -> float:
        return 0.3


def reap(kept):
    pid = kept.pid
    _, status = os.waitpid(pid, 0)
    kept.on_exit(pid, os.waitstatus_to_exitcode(status), "exit code 3")


def test_one_that_exits_at_once_backs_off_doubling_up_to_30s_and_settles_after_a_long_run():
    kept = Quitter("quitter")
    waits = []
    for _ in range(9):
        kept.start_due("on")
        assert kept.pid is not None and kept.state() == "running"
        reap(kept)
        waits.append(round(kept.backoff.until - time.monotonic(), 1))
        assert kept.state() == "down" and kept.deadline() == kept.backoff.until
        kept.start_due("on")
        assert kept.pid is None    # backing off: not started again yet
        kept.backoff.until = 0.0   # as if the wait had passed
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    kept.start_due("on")
    kept.started -= SETTLED        # as if it had run a while before it died
    reap(kept)
    assert round(kept.backoff.until - time.monotonic(), 1) == 0.5
    kept.start_due(None)           # the config no longer wants it
    assert kept.state() == "off"


def test_stop_terms_then_kills_after_the_grace():
    said, theirs = os.pipe()
    kept = Stubborn(theirs)
    try:
        kept.start_due("on")
        pid = kept.pid
        assert os.read(said, 100) == b"ignoring"
        started = time.monotonic()
        kept.stop()
        assert 0.3 <= time.monotonic() - started < 5
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)   # reaped by stop()
        assert kept.state() == "off" and not kept.leaving
    finally:
        os.close(said)
        os.close(theirs)
