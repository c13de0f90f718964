"""Command pools with real non-Python Resque workers: tests/commandworker.php
and tests/commandworker.rb speak Resque's keys as php-resque and Ruby Resque
do. Run where ``php`` (with pcntl) or ``ruby`` (with the redis gem) is
installed, skipped saying so otherwise; tests/commandworker.py, the Python
stand-in, covers the same in test_command_pools.py everywhere."""

import json
import os
import shutil
import signal
import subprocess

import psutil
import pytest

from conftest import HERE, stop, wait_until
from test_command_pools import busy_worker, enqueue

# interpreter, the check that it can run the script, the script
FOREIGN = {
    "php": ("php", ["-r", "exit(function_exists('pcntl_fork') && function_exists('cli_set_process_title') ? 0 : 1);"],
            "commandworker.php"),
    "ruby": ("ruby", ["-e", "require 'redis'"], "commandworker.rb"),
}


def runnable(name):
    """The interpreter's path, or skip saying why."""
    program, probe, _ = FOREIGN[name]
    path = shutil.which(program)
    if path is None:
        pytest.skip(f"{program} is not installed: the {name} command pool test needs it (the Python stand-in "
                    "in test_command_pools.py covers the same)")
    if subprocess.run([path, *probe], capture_output=True, timeout=30).returncode != 0:
        pytest.skip(f"{path} lacks what tests/{FOREIGN[name][2]} needs "
                    f"({'pcntl and cli_set_process_title' if name == 'php' else 'the redis gem'})")
    return path


@pytest.mark.parametrize("name", sorted(FOREIGN))
def test_a_foreign_worker_is_kept_at_count_and_its_killed_job_failed_as_a_dirty_exit(name, master_factory, r):
    program = runnable(name)
    script = os.path.join(HERE, FOREIGN[name][2])
    m = master_factory([f"queues: [{name}]\ncount: 2\ncommand: [{program}, {script}]\ninterval: 0.1"],
                       on_lost="fail")
    workers = m.wait_workers(2)
    wait_until(lambda: r.scard("resque:workers") == 2, message="two registrations")
    payload = enqueue(r, name, "Sleep", 30)
    worker_id, working = wait_until(lambda: busy_worker(r), message="the job running")
    assert working["payload"] == payload and worker_id.split(":")[2] == name
    busy = int(worker_id.split(":")[1])
    assert busy in workers
    wait_until(lambda: psutil.Process(busy).children(), message="its job child")   # forked after the record
    os.kill(busy, signal.SIGKILL)
    [failure] = wait_until(lambda: r.lrange("resque:failed", 0, -1), message="the job failed")
    failure = json.loads(failure)
    assert (failure["exception"], failure["payload"], failure["worker"], failure["queue"]) == \
        ("Resque::DirtyExit", payload, worker_id, name)
    assert "died (signal SIGKILL) while processing it (on_lost: fail)" in failure["error"]
    assert not r.exists(f"resque:worker:{worker_id}")   # with the job, in one call; then unregistered:
    wait_until(lambda: not r.sismember("resque:workers", worker_id), message="its registration removed")
    wait_until(lambda: len(m.workers()) == 2 and busy not in m.workers(), message="a replacement")
    assert stop(m.proc) == 0
    assert r.scard("resque:workers") == 0 and r.get("resque:stat:processed") is None
