"""process/interpreter.start_module: how the master starts the spawner and
the probe. What the new interpreter inherits is chosen, not accidental."""

import json
import os
import signal
import sys

from resqued.process.interpreter import start_module

REPORT = """
import json, os, signal, sys
out = int(sys.argv[1])
os.write(out, json.dumps({
    "path": sys.path, "main": __name__, "argv": sys.argv[2:],
    "blocked": sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])),
    "hup_ignored": signal.getsignal(signal.SIGHUP) == signal.SIG_IGN,
    "usr2_default": signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL,
    "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
    "pgid": os.getpgid(0) == os.getpid(),
}).encode())
"""


def test_the_child_gets_our_path_our_ignored_signals_its_mask_and_only_the_passed_fds(tmp_path, monkeypatch):
    package = tmp_path / "probepkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "report.py").write_text(REPORT)
    monkeypatch.syspath_prepend(str(tmp_path))
    read_fd, write_fd = os.pipe()
    unrelated = os.open(os.devnull, os.O_RDONLY)
    os.set_inheritable(unrelated, True)   # as one inherited from a shell or a supervisor may be
    # What a fork gave: an ignored signal stays ignored (python-daemon's SIGTSTP),
    # a handled one is back to its default.
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    previous_usr2 = signal.signal(signal.SIGUSR2, lambda *_: None)
    try:
        pid = start_module("probepkg.report", [str(write_fd), "--flag", "x y"], pass_fds=[write_fd],
                           blocked=(signal.SIGQUIT, signal.SIGUSR1), new_group=True)
    finally:
        signal.signal(signal.SIGHUP, previous)
        signal.signal(signal.SIGUSR2, previous_usr2)
        os.close(write_fd)
        os.close(unrelated)
    with os.fdopen(read_fd, "rb") as pipe:
        seen = json.loads(pipe.read())
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert seen["path"] == sys.path and seen["path"][0] == str(tmp_path)
    assert seen["main"] == "__main__" and seen["argv"] == ["--flag", "x y"]
    assert seen["blocked"] == sorted([signal.SIGQUIT, signal.SIGUSR1])
    assert seen["hup_ignored"] and seen["usr2_default"]
    # Ours hold dozens (pytest's, the unrelated one): the child holds its
    # stdio, the pipe, and the one its listing of /proc/self/fd opened.
    assert seen["fds"][:3] == [0, 1, 2] and write_fd in seen["fds"]
    assert len(set(seen["fds"]) - {0, 1, 2, write_fd}) <= 1, seen["fds"]
    assert seen["pgid"]
