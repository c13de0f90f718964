"""localpids reads the process table for the pruner: which pid is a stopped
worker (never pruned on its host) and which is no worker any more. Real
processes with real titles."""

import subprocess
import sys
import textwrap

from conftest import wait_until
from helpers import title
from resqued.resque.localpids import LocalPid

# A titled parent that forks a titled child, as a Ruby worker forks its job
# (and a resqued job forker its standbys); both wait until killed.
FAMILY = textwrap.dedent("""
    import os, signal, sys, setproctitle
    setproctitle.setproctitle("resque-9.9: Forked for default")
    pid = os.fork()
    if pid == 0:
        setproctitle.setproctitle("resque-9.9: Processing default since 0")
    else:
        print(pid, flush=True)
    while True:
        signal.pause()   # until the test kills it
""")


def test_a_workers_child_with_a_workers_title_is_no_stopped_worker():
    parent = subprocess.Popen([sys.executable, "-c", FAMILY], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        wait_until(lambda: "Processing" in title(child), message="the child's title")
        assert LocalPid(parent.pid).titled_worker()        # its parent is this test: a worker's place
        assert not LocalPid(child).titled_worker()          # a worker's child: a job, not a worker
        assert not LocalPid(child).no_worker()              # still a Resque process
    finally:
        subprocess.run(["pkill", "-KILL", "-P", str(parent.pid)])
        parent.kill()
        parent.wait()


def test_resqueds_helpers_are_no_workers():
    helper = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import signal, setproctitle
        setproctitle.setproctitle("resque-0.1.0: Job forker for default")
        while True:
            signal.pause()
    """)])
    try:
        wait_until(lambda: "Job forker" in title(helper.pid), message="the helper's title")
        assert not LocalPid(helper.pid).titled_worker()
    finally:
        helper.kill()
        helper.wait()
