"""Reading a worker's process tree for its memory figure while processes and
threads in it come and go: a task that ends mid-read is simply gone, never an
error that takes the worker down."""

import sys
import textwrap
import time

from conftest import wait_until
from resqued.process.memory import descendants, tree_memory

# Threads and children that start and end as fast as they can, for a bounded
# time: the tree the reader walks changes under it all the time.
CHURN = textwrap.dedent("""
    import os, sys, threading, time
    print("ready", flush=True)
    deadline = time.monotonic() + float(sys.argv[1])
    while time.monotonic() < deadline:
        threads = [threading.Thread(target=lambda: None) for _ in range(8)]
        for t in threads:
            t.start()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        for t in threads:
            t.join()
        os.waitpid(pid, 0)
""")


def test_reading_a_tree_whose_tasks_come_and_go_never_fails(procs):
    churn = procs.spawn([sys.executable, "-c", CHURN, "20"], name="churn")
    wait_until(lambda: b"ready" in churn.log_path.read_bytes() or churn.poll() is not None,
               message="the churning process to start")
    assert churn.poll() is None, churn.log_path.read_text()
    reads, deadline = 0, time.monotonic() + 8
    while time.monotonic() < deadline and churn.poll() is None:
        assert churn.pid in descendants(churn.pid, include_self=True)
        assert tree_memory(churn.pid) > 0
        reads += 1
    assert reads > 200, reads
    churn.kill()
    churn.wait(10)
