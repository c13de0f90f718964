import json
import os
import socket
import subprocess
import sys

import psutil

from conftest import ROOT, wait_until


def title(pid: int) -> str:
    try:
        # setproctitle pads a shortened title with spaces in /proc/PID/cmdline.
        return " ".join(psutil.Process(pid).cmdline()).rstrip()
    except psutil.NoSuchProcess:
        return ""


def worker_id(proc, queues="default") -> str:
    return f"{socket.gethostname()}:{proc.pid}:{queues}"


def wait_registered(r, proc, queues="default", timeout=15):
    wid = worker_id(proc, queues)
    wait_until(lambda: r.sismember("resque:workers", wid) or proc.poll() is not None,
               timeout, message=f"worker {wid} to register")
    assert proc.poll() is None, f"worker exited early:\n{proc.log_path.read_text()}"
    return wid


def log_entries(r):
    return [e.decode() for e in r.lrange("test:log", 0, -1)]


def wait_log(r, prefix, count=1, timeout=15):
    return wait_until(lambda: [e for e in log_entries(r) if e.startswith(prefix)][count - 1:] and
                      [e for e in log_entries(r) if e.startswith(prefix)],
                      timeout, message=f"{count} log entries starting {prefix!r}")


def failures(r):
    return [json.loads(f) for f in r.lrange("resque:failed", 0, -1)]


def job_child_pid(r):
    """The pid of the Slow job's child, which logs 'started:<pid>'."""
    entry = wait_log(r, "started:")[-1]
    return int(entry.split(":")[1])


def pid_gone(pid):
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def worker_of(job_pid: int) -> int:
    """The worker running job child ``job_pid``: its parent, or its job
    forker's parent."""
    parent = psutil.Process(job_pid).parent()
    if "Job forker for" in title(parent.pid):
        parent = parent.parent()
    return parent.pid


def check_pool_yml(tmp_path, text):
    """``resqued --check`` on ``text`` written to pool.yml: (exit code, output)."""
    path = tmp_path / "pool.yml"
    path.write_text(text)
    done = subprocess.run([sys.executable, "-m", "resqued", "--check", "-c", str(path)], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    return done.returncode, (done.stdout + done.stderr).strip()


def queue_tags(r, queue="default"):
    """The ``tag`` argument of each job waiting in ``queue``, in order."""
    return [json.loads(raw)["args"][0].get("tag") for raw in r.lrange(f"resque:queue:{queue}", 0, -1)]


def no_inflight(r):
    return r.keys("resque:resqued:inflight:*") == []
