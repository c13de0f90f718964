"""process/memory.resident: a process's RSS from /proc/PID/statm, which the
master's status gives for itself and its helpers."""

import subprocess
import sys

import psutil

from conftest import wait_until
from resqued.process.memory import resident


def test_resident_is_psutils_rss_and_none_once_the_process_is_gone():
    # A child holding 64 MB resident: the figure is its own, not ours.
    child = subprocess.Popen([sys.executable, "-c", "import sys; b = b'x' * (64 << 20); sys.stdin.read()"],
                             stdin=subprocess.PIPE)
    try:
        proc = psutil.Process(child.pid)
        wait_until(lambda: proc.memory_info().rss >= 64 << 20, message="the child's 64 MB")
        assert abs(resident(child.pid) - proc.memory_info().rss) < 1 << 20
        assert abs(resident(psutil.Process().pid) - psutil.Process().memory_info().rss) < 1 << 20
    finally:
        child.stdin.close()
        child.wait(10)
    assert resident(child.pid) is None
