"""How long a master takes to replace a SIGKILLed worker: two checkouts
side by side, under the same load at the same moment (BENCHMARKS.md,
"Worker replacement, paired").

    .venv/bin/python bench/replace_pair.py --tree A --tree B [--count 8] [--pairs 20] [--busy]

Starts one master per tree (``python -m resqued -c pool.yml`` with
PYTHONPATH=tree) against one private redis-server, each with ``--count``
workers, idle or (``--busy``) on a queue of 1 s sleeping jobs of its own.
Then, pair by pair, kills one worker of A and one of B in turn (which goes
first alternates), timing each until the master has a new worker child
whose title has left "Starting" (as bench/scenarios.py's replace_one; and
apart, until the new worker is the master's child at all: the master's part
of it), and prints each tree's median and the median of the per-pair ratios
B/A: a burst of load from elsewhere hits both members of a pair alike.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from master_costs import children  # noqa: E402  (from /proc/PID/task/TID/children)
from redis_server import RedisServer  # noqa: E402  (the tests' helper)

JOBS = ("import time\n\nclass Noop:\n    def perform(self):\n        pass\n\n"
        "class SleepJob:\n    def perform(self):\n        time.sleep(self.args['seconds'])\n")


def title(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def workers(master):
    return [p for p in children(master) if title(p).startswith("resque-")]


def ready_workers(master):
    return [p for p in workers(master) if "Starting" not in title(p)]


def wait(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.01)


def start(tree, work, name, redis_url, count, queue):
    cfg = os.path.join(work, f"{name}.yml")
    with open(cfg, "w") as f:
        f.write(f"redis: {redis_url}\njobs: [{os.path.join(work, 'benchjobs.py')}]\n"
                f"pid_dir: {work}/{name}\npidfile: {work}/{name}/resqued.pid\n"
                f"control_socket: {work}/{name}/resqued.sock\nlog: {{level: warning}}\n"
                f"pools:\n  - queues: [{queue}]\n    count: {count}\n")
    env = {**os.environ, "PYTHONPATH": tree}
    proc = subprocess.Popen([sys.executable, "-m", "resqued", "-c", cfg], cwd=tree, env=env,
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, f"{name}.log"), "wb"))
    wait(lambda: len(ready_workers(proc.pid)) >= count, 120, f"{name}'s workers")
    return proc


def replace_one(master):
    """(seconds until the new worker is a child of the master, seconds until
    its title has left "Starting"): the master's part, then the worker's."""
    before = set(children(master))
    victim = workers(master)[0]
    t0 = time.perf_counter()
    os.kill(victim, 9)
    forked = None
    while time.perf_counter() - t0 < 10:
        for pid in children(master):
            if pid not in before and title(pid).startswith("resque-"):
                forked = forked or time.perf_counter() - t0
                if "Starting" not in title(pid):
                    return forked, time.perf_counter() - t0
        time.sleep(0.001)
    raise TimeoutError("no replacement worker within 10 s")


def feed(redis_url, queue, jobs):
    import redis
    client = redis.Redis.from_url(redis_url)
    job = json.dumps({"class": "SleepJob", "args": [{"seconds": 1.0}], "id": "x", "queue_time": time.time()})
    client.sadd("resque:queues", queue)
    client.rpush(f"resque:queue:{queue}", *[job] * jobs)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tree", action="append", required=True, help="two checkouts: A, then B")
    p.add_argument("--count", type=int, default=8)
    p.add_argument("--pairs", type=int, default=20)
    p.add_argument("--busy", action="store_true", help="workers on 1 s sleeping jobs, not idle")
    args = p.parse_args()
    if len(args.tree) != 2:
        p.error("give --tree twice")
    trees = [os.path.abspath(t) for t in args.tree]
    with tempfile.TemporaryDirectory(prefix="rqd-pair-") as work:
        with open(os.path.join(work, "benchjobs.py"), "w") as f:
            f.write(JOBS)
        server = RedisServer(os.path.join(work, "redis")).start()
        masters = []
        try:
            for i, tree in enumerate(trees):
                queue = f"q{i}"
                if args.busy:
                    feed(server.url, queue, int(args.count * (args.pairs * 2 + 60) * 1.5))
                masters.append(start(tree, work, f"m{i}", server.url, args.count, queue))
            time.sleep(2)
            times, forks = [[], []], [[], []]
            for n in range(args.pairs):
                order = (0, 1) if n % 2 == 0 else (1, 0)
                for i in order:
                    forked, ready = replace_one(masters[i].pid)
                    forks[i].append(forked * 1000)
                    times[i].append(ready * 1000)
                    wait(lambda: len(ready_workers(masters[i].pid)) >= args.count, 10, "the replacement")
                    time.sleep(0.3)
        finally:
            for m in masters:
                m.terminate()
            for m in masters:
                try:
                    m.wait(30)
                except subprocess.TimeoutExpired:
                    m.kill()
                    m.wait()
            server.stop()
    for i, tree in enumerate(trees):
        t = times[i]
        f = forks[i]
        print(f"{'AB'[i]} {tree}: ready: median {statistics.median(t):.1f} ms  min {min(t):.1f}  max {max(t):.1f}; "
              f"forked: median {statistics.median(f):.1f} ms  min {min(f):.1f}  ({len(t)} kills)")
    for what, figures in (("ready", times), ("forked", forks)):
        ratios = [b / a for a, b in zip(*figures)]
        print(f"B/A per pair, {what}: median {statistics.median(ratios):.2f}  min {min(ratios):.2f}  "
              f"max {max(ratios):.2f}")


if __name__ == "__main__":
    main()
