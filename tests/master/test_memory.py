"""The memory rule: max_memory judges a worker between jobs by its own
processes (the worker, its job forker and standby), whose PSS is the MEMORY
of resquectl status and what resqued --check estimates; max_memory_hard
judges a running job child. A job that holds 100 MiB shows in the status's
job_memory, and its worker, healthy once the job's child is gone, stays."""

import os
import re
import statistics
import subprocess
import sys

import pytest

from conftest import ROOT, log_text, stop, wait_until
from helpers import failures, wait_log
from masters import write_config

HOG = 100 * 1024 * 1024     # what the Hog job holds (tests/jobs.py), in bytes


def worker_entry(m, pid):
    [entry] = [w for w in m.status()["workers"] if w["pid"] == pid]
    return entry


def idle_figure(m, worker):
    return statistics.median(worker_entry(m, worker)["memory"] for _ in range(3))


def test_a_big_job_does_not_recycle_its_forking_worker(master_factory, r, resque, redis_url):
    m = master_factory(["queues: [default]\ncount: 1"])
    [worker] = m.wait_workers(1)
    resque.enqueue("default", "Sleeper", {"seconds": 0})   # forker and standby up, job path warm
    wait_log(r, "slept")
    idle = idle_figure(m, worker)
    assert 5e6 < idle < 100e6, idle

    limit = int(idle * 1.5)
    write_config(m.config, redis_url, [f"queues: [default]\ncount: 1\nmax_memory: {limit}"])
    result = m.ctl("reload")
    assert result.returncode == 0, result.stderr
    [worker] = wait_until(lambda: (ws := m.workers()) and worker not in ws and ws, message="the new pool's worker")

    # Outlasting a memory check during the job (every second) changes nothing.
    resque.enqueue("default", "Hog", {"mb": 100, "seconds": 30})
    wait_log(r, "hogging")
    entry = wait_until(lambda: (e := worker_entry(m, worker))["job_memory"] and e["job_memory"] > 0.85 * HOG and e,
                       message="job_memory to take in the job's 100 MiB")
    assert entry["job_memory"] < 1.15 * HOG + idle, entry
    assert entry["memory"] < limit, entry      # the worker's own processes: not the job's memory
    r.rpush("test:release", 1)
    wait_log(r, "hog-done")
    resque.enqueue("default", "Sleeper", {"seconds": 0})
    wait_log(r, "slept", 2)
    assert m.workers() == [worker], log_text(m.proc)[-3000:]
    assert "over max_memory" not in log_text(m.proc)
    assert worker_entry(m, worker)["job_memory"] is None
    assert failures(r) == []
    assert stop(m.proc) == 0


@pytest.mark.parametrize("fork", [True, False], ids=["forking", "inline"])
def test_a_worker_over_max_memory_between_jobs_is_recycled_and_the_log_says_by_how_much(master_factory, r,
                                                                                           resque, fork):
    # 5MB: below any worker's own processes, so the first job's end recycles it.
    m = master_factory([f"queues: [default]\ncount: 1\nmax_memory: 5MB\nfork: {str(fork).lower()}"])
    [worker] = m.wait_workers(1)
    resque.enqueue("default", "Sleeper", {"seconds": 0})
    wait_log(r, "slept")
    wait_until(lambda: (ws := m.workers()) and worker not in ws, message="the worker recycled after its job")
    line = wait_until(lambda: re.search(r"worker \S+: recycled over max_memory \(1 job done\): its own processes "
                                        r"use ([\d.]+)MB, over max_memory 5\.0MB", log_text(m.proc)),
                      message="the recycle's log line")
    assert 5 < float(line.group(1)) < 200, line.group(0)
    assert m.status()["pools"][0]["recycles"] >= 1
    assert failures(r) == []
    assert stop(m.proc) == 0


def test_check_estimates_what_status_shows(master_factory, r, resque, redis_url, tmp_path):
    m = master_factory(["queues: [default]\ncount: 1"])
    [worker] = m.wait_workers(1)
    resque.enqueue("default", "Sleeper", {"seconds": 0})
    wait_log(r, "slept")
    shown = idle_figure(m, worker)
    cfg = write_config(tmp_path / "check.yml", redis_url, ["queues: [default]\ncount: 1\nmax_memory: 5MB"])
    out = subprocess.run([sys.executable, "-m", "resqued", "--check", "-c", str(cfg)], capture_output=True,
                         text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, timeout=60)
    assert out.returncode == 0, out.stderr
    estimate = float(re.search(r"about ([\d.]+)MB, an estimate", out.stderr).group(1)) * 1e6
    assert "shrinks as more workers share pages" in out.stderr
    print(f"status {shown / 1e6:.1f}MB, --check {estimate / 1e6:.1f}MB")
    # The same measure (PSS, not RSS, which said about 1.25x what one worker
    # shows): near what a lone worker shows, which more workers would lower.
    assert 0.7 * shown <= estimate <= 1.15 * shown, (shown, estimate)
    assert stop(m.proc) == 0
