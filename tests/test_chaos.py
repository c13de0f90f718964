"""The reduced chaos run inside the suite (`make chaos` runs 10,000 jobs):
random SIGKILLs of job children, workers and the master, and a Redis
restart, and not one job lost."""

import os
import re
import subprocess
import sys

from conftest import HERE


def test_chaos_loses_no_job():
    jobs = os.environ.get("CHAOS_JOBS_IN_TESTS", "1000")
    result = subprocess.run([sys.executable, os.path.join(HERE, "chaos.py"), "--jobs", jobs],
                            capture_output=True, text=True, timeout=600)
    summary = re.search(r"^chaos: (\d+) enqueued, (\d+) done, (\d+) failed, (\d+) lost, (\d+) duplicates$",
                        result.stdout, re.M)
    assert summary, result.stdout + result.stderr[-3000:]
    enqueued, done, failed, lost, _ = map(int, summary.groups())
    assert lost == 0 and result.returncode == 0, result.stderr[-3000:]
    assert enqueued == int(jobs) and done + failed == enqueued
    # The chaos really happened: something was killed of each kind.
    kills = re.findall(r"kills: \{'job': (\d+), 'worker': (\d+), 'master': (\d+), 'spawner': (\d+), "
                       r"'redis': (\d+)\}", result.stderr)
    assert kills and all(int(k) > 0 for k in kills[-1]), result.stderr[-2000:]
