#!/usr/bin/env python3
"""The soak: one master fed jobs for a while (SOAK_SECONDS, 600 by default)
through reloads, restarts, SIGKILLs of job children, workers and the
spawner, and a Redis restart; then it reports what drifted and the ledger.

    python tests/soak.py [--seconds N] [--rate JOBS_PER_S]    (make soak)

Where tests/chaos.py asks "is a job ever lost?" with the master killed too,
this asks "does anything grow?": the master is never killed, so its RSS,
open fds and process tree, and Redis' key count, can be compared from after
the first round of events (the warm-up) to the end, once the queue has
drained and the pools are idle again.

The ledger: every job records its run (and the pids of its process and its
ancestors) in Redis. Lost = enqueued, never ran and not in the failed list.
Ran twice = more than one run; Resque is at-least-once, so a run twice
whose earlier run was in a process this script killed is expected and only
counted; any other is a bug.

Exits 1 when a job is lost or ran twice unexplained, or a resource drifted
past its bound (BOUNDS in tests/soakledger.py); the last line is the summary.
"""

import argparse
import collections
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, HERE]

import psutil  # noqa: E402
import redis  # noqa: E402
from harness import job_module, kill_left, logger, start_master, stop_master  # noqa: E402
from redis_server import RedisServer  # noqa: E402
from resqued.resque import wire  # noqa: E402
from soakledger import Ledger, drift, hourly, memory_parts  # noqa: E402

JOB_MODULE = job_module("SOAK_REDIS", '''
def _ancestry():
    """This process and its parents up to the master (or four levels)."""
    pids, pid = [], os.getpid()
    for _ in range(4):
        pids.append(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
        if pid <= 1 or pid == int(os.environ["SOAK_MASTER_PARENT"]):
            break
    return pids

class SoakJob:
    def perform(self):
        n = self.args["n"]
        time.sleep(random.random() * self.args["max_sleep"])
        record = f"{n} " + ",".join(map(str, _ancestry()))
        for attempt in range(60):   # through the Redis restart: the run must be recorded
            try:
                pipe = _redis().pipeline(transaction=True)
                pipe.hincrby("soak:runs", n, 1)
                pipe.rpush("soak:runlog", record)
                pipe.execute()
                return
            except redis.ConnectionError:
                time.sleep(0.5)
        raise RuntimeError("could not record the run")
''')

EVENTS = ["kill job", "reload", "kill worker", "restart", "kill spawner"]


# -- the run -------------------------------------------------------------------

log = logger("soak")


class Soak:
    def __init__(self, args, workdir):
        self.args = args
        self.workdir = workdir
        self.rng = random.Random(args.seed)
        self.redis = RedisServer(os.path.join(workdir, "redis"), persistent=True)
        self.master_log_path = os.path.join(workdir, "master.log")
        self.master_log = open(self.master_log_path, "ab")
        self.master = None
        self.ledger = Ledger()
        self.events = {name: 0 for name in EVENTS + ["redis restart"]}
        self.pending_ctl = None      # a resquectl reload/restart running
        self.next_n = 0
        self.count = 3

    # The pools: recycling (max_jobs) on both, one forking jobs itself.
    def write_config(self):
        with open(os.path.join(self.workdir, "soakjobs.py"), "w") as f:
            f.write(JOB_MODULE)
        self.config = os.path.join(self.workdir, "pool.yml")
        with open(self.config, "w") as f:
            f.write(f"redis: {self.redis.url}\njobs: [soakjobs.py]\n"
                    "interval: 1\nshutdown_timeout: 5\nheartbeat_interval: 1\nmax_lost: 20\n"
                    "log: {level: info}\n"
                    f"pools:\n  - queues: [soak]\n    count: {self.count}\n    max_jobs: 200\n"
                    "  - queues: [soak, soak_plain]\n    count: 1\n    max_jobs: 100\n    job_forker: false\n")

    def start(self):
        self.redis.start()
        self.write_config()
        self.client = redis.Redis.from_url(self.redis.url)
        self.master = start_master(self.config, {"SOAK_REDIS": self.redis.url, "SOAK_MASTER_PARENT": str(os.getpid())},
                                   self.master_log, self.workdir)

    def tree(self):
        try:
            return psutil.Process(self.master.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def sample(self) -> dict:
        master = psutil.Process(self.master.pid)
        # A live worker's own keys come and go with it (its stat keys appear
        # with its first job): only the others can leak.
        live = [w.decode() for w in self.client.smembers("resque:workers")]
        keys = {key.decode() for key in self.client.scan_iter(count=1000) if not key.startswith(b"soak:")}
        keys = {key for key in keys if not any(key.endswith(":" + w) or f":{w}:" in key for w in live)}
        titles = []
        for proc in self.tree():
            try:
                titles.append(" ".join(proc.cmdline()))
            except Exception:
                pass
        # The names (not compared, only shown): what a count's drift is made of.
        self.names = {"redis_keys": keys, "processes": titles}
        return {"master_rss_mb": master.memory_info().rss / 1e6, **memory_parts(master.pid),
                "master_fds": master.num_fds(), "processes": len(titles), "redis_keys": len(keys)}

    # -- feeding ----------------------------------------------------------------
    def feed(self, count):
        batch = list(range(self.next_n, self.next_n + count))
        self.next_n += count
        pipe = self.client.pipeline(transaction=True)
        pipe.sadd("resque:queues", "soak")
        for n in batch:
            payload = wire.payload("SoakJob", [{"n": n, "max_sleep": self.args.max_sleep}], wire.new_job_id())
            pipe.rpush("resque:queue:soak", wire.dumps(payload))
        try:
            pipe.execute()
            self.ledger.enqueued.update(batch)
        except redis.RedisError as exc:
            log(f"enqueue of {len(batch)} jobs failed ({exc}): counted as maybe enqueued")
            self.ledger.uncertain.update(batch)

    # -- events -----------------------------------------------------------------
    def kill(self, pids):
        if pids:
            pid = self.rng.choice(pids)
            self.ledger.killed.add(pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def titled(self, test):
        out = []
        for proc in self.tree():
            try:
                if test(" ".join(proc.cmdline())):
                    out.append(proc.pid)
            except Exception:
                pass
        return out

    def ctl(self, *args):
        env = dict(os.environ, PYTHONPATH=ROOT)
        return subprocess.Popen([sys.executable, "-m", "resqued.ctl", "-c", self.config, *args], env=env,
                                cwd=self.workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def event(self, name):
        if name == "kill job":
            self.kill(self.titled(lambda t: "Processing" in t))
        elif name == "kill worker":
            self.kill(self.titled(lambda t: t.startswith("resque-") and "Processing" not in t))
        elif name == "kill spawner":
            self.kill(self.titled(lambda t: t.startswith("resqued-spawner[")))
        elif name == "reload":
            # A real change, so that workers are started and retired.
            self.count = 4 if self.count == 3 else 3
            self.write_config()
            self.pending_ctl = (name, self.ctl("reload"))
        elif name == "restart":
            self.pending_ctl = (name, self.ctl("restart"))
        self.events[name] += 1

    def ctl_done(self) -> bool:
        if not self.pending_ctl:
            return True
        name, proc = self.pending_ctl
        if proc.poll() is None:
            return False
        output = proc.stdout.read().strip()
        if proc.returncode != 0:
            log(f"resquectl {name} exited {proc.returncode}: {output[-500:]}")
            self.events[f"{name} failed"] = self.events.get(f"{name} failed", 0) + 1
        self.pending_ctl = None
        return True

    def restart_redis(self):
        log("restarting Redis")
        self.redis.stop()
        self.redis.start()
        self.events["redis restart"] += 1

    # -- the soak -----------------------------------------------------------------
    def run(self) -> int:
        args = self.args
        self.start()
        step = 0.1
        started = time.monotonic()
        end_at = started + args.seconds
        redis_at = started + args.seconds * 0.6
        next_event = started + args.event_every
        order = list(EVENTS)
        baseline = None
        last_print = started
        while time.monotonic() < end_at:
            time.sleep(step)
            if self.master.poll() is not None:
                log(f"the master exited ({self.master.returncode}): see {self.master_log_path}")
                return self.report(None, None, started)
            if redis_at and time.monotonic() >= redis_at and self.ctl_done():
                self.restart_redis()
                redis_at = None
                continue
            self.feed(max(1, round(args.rate * step)))
            if time.monotonic() >= next_event and self.ctl_done():
                self.event(order[self.events_done() % len(order)])
                next_event = time.monotonic() + args.event_every
            if baseline is None and self.events_done() >= len(order) and self.ctl_done():
                # Warm-up over: every kind of event happened once.
                baseline = self.settled_sample("the warm-up")
                baseline_at, baseline_count = time.monotonic(), self.count
            if time.monotonic() - last_print >= 30:
                last_print = time.monotonic()
                log(f"{len(self.ledger.enqueued)} enqueued, {self.client.hlen('soak:runs')} ran; {self.sample()}")
        while not self.ctl_done():
            time.sleep(0.2)
        if baseline is None:
            log("too short for a warm-up (every event once): give more --seconds")
            return 1
        if self.count != baseline_count:
            self.event("reload")      # back to the warm-up's pool size, to compare like with like
            while not self.ctl_done():
                time.sleep(0.2)
        self.drain()
        end = self.settled_sample("the end")
        return self.report(baseline, end, time.monotonic() - baseline_at)

    def events_done(self):
        return sum(self.events[name] for name in EVENTS)

    def settled_sample(self, when) -> dict:
        """A sample once the queue is empty, every worker idle, and the
        process tree and the keys unchanged for three checks in a row: the
        same state at the warm-up as at the end, so a difference is drift.
        Feeding pauses meanwhile."""
        deadline = time.monotonic() + 120
        previous, stable = None, 0
        while time.monotonic() < deadline:
            time.sleep(1)
            if self.client.llen("resque:queue:soak") or not self.master_idle():
                previous, stable = None, 0
                continue
            sample = self.sample()
            shape = (sorted(self.names["processes"]), sorted(self.names["redis_keys"]))
            stable = stable + 1 if shape == previous else 0
            previous = shape
            if stable >= 3:
                break
        else:
            log(f"the pools did not settle for the sample at {when}")
            sample = self.sample()
        sample["names"] = self.names
        log(f"sample at {when}: " + str({k: v for k, v in sample.items() if k != "names"}))
        return sample

    def master_idle(self):
        try:
            status = json.loads(subprocess.run([sys.executable, "-m", "resqued.ctl", "-c", self.config,
                                                "status", "--json"], capture_output=True, text=True,
                                               env=dict(os.environ, PYTHONPATH=ROOT), timeout=30).stdout)
        except (ValueError, subprocess.TimeoutExpired):
            return False
        workers = status.get("workers", [])
        return all(w.get("state") == "idle" for w in workers) and len(workers) == self.count + 1

    def drain(self):
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            self.collect()
            if not self.ledger.lost() and not self.client.llen("resque:queue:soak"):
                return
            time.sleep(1)
        log("the queue did not drain in 180 s")

    def collect(self):
        self.ledger.runs = {}
        for line in self.client.lrange("soak:runlog", 0, -1):
            self.ledger.add_run(line.decode())
        self.ledger.failed = set()
        for raw in self.client.lrange("resque:failed", 0, -1):
            try:
                self.ledger.failed.add(json.loads(raw)["payload"]["args"][0]["n"])
            except (ValueError, KeyError, IndexError, TypeError):
                pass

    def report(self, baseline, end, seconds) -> int:
        self.collect()
        lost = self.ledger.lost()
        explained, unexplained = self.ledger.ran_twice()
        unknown = self.ledger.unknown()
        problems = []
        if lost:
            problems.append(f"{len(lost)} jobs lost (first: {lost[:10]})")
        if unexplained:
            problems.append(f"{len(unexplained)} jobs ran twice with no kill to explain it (first: {unexplained[:10]})")
        if unknown:
            problems.append(f"{len(unknown)} runs of jobs never enqueued")
        for name in ("reload", "restart"):
            if self.events.get(f"{name} failed"):
                problems.append(f"resquectl {name} failed {self.events[f'{name} failed']} times (see above)")
        if baseline is None or end is None:
            problems.append("no drift measured")
        else:
            problems += drift(baseline, end)
            rss = end["master_rss_mb"] - baseline["master_rss_mb"]
            parts = ", ".join(f"{k[7:-3]} {end[k] - baseline[k]:+.2f}" for k in end if k.startswith("master_")
                              and k.endswith("_mb") and k != "master_rss_mb")
            log(f"drift over {seconds:.0f} s: master RSS {rss:+.2f} MB ({hourly(rss, seconds):+.1f} MB/h; "
                f"{parts}), "
                + ", ".join(f"{k} {end[k] - baseline[k]:+d}" for k in ("master_fds", "processes", "redis_keys")))
        if baseline and end:
            for name in ("redis_keys", "processes"):
                before, after = collections.Counter(baseline["names"][name]), collections.Counter(end["names"][name])
                if end[name] != baseline[name]:   # the same count under new names (new worker ids) is no drift
                    log(f"{name}: gone {sorted((before - after).elements())}, new {sorted((after - before).elements())}")
        log(f"events: {self.events}")
        log_bytes = os.path.getsize(self.master_log_path)
        ran = len(self.ledger.runs)
        log(f"log: {log_bytes} bytes, {log_bytes / max(ran, 1):.0f} bytes per job at level info")
        for problem in problems:
            log(f"FAIL: {problem}")
        print(f"soak: {len(self.ledger.enqueued)} enqueued, {ran} ran, "
              f"{len(self.ledger.failed - set(self.ledger.runs))} failed, {len(lost)} lost, "
              f"{len(explained) + len(unexplained)} ran twice ({len(unexplained)} unexplained); "
              + (f"drift: master RSS {end['master_rss_mb'] - baseline['master_rss_mb']:+.2f} MB, "
                 f"fds {end['master_fds'] - baseline['master_fds']:+d}, "
                 f"processes {end['processes'] - baseline['processes']:+d}, "
                 f"Redis keys {end['redis_keys'] - baseline['redis_keys']:+d}"
                 if baseline and end else "drift: not measured")
              + ("; FAILED" if problems else "; ok"), flush=True)
        return 1 if problems else 0

    def stop(self):
        tree = self.tree()
        stop_master(self.master)
        if self.pending_ctl:
            self.pending_ctl[1].kill()
            self.pending_ctl[1].wait()
        kill_left(tree)
        self.redis.stop()
        self.master_log.close()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 600)))
    p.add_argument("--rate", type=float, default=float(os.environ.get("SOAK_RATE", 40)),
                   help="jobs enqueued per second")
    p.add_argument("--event-every", type=float, default=8.0, help="seconds between events")
    p.add_argument("--max-sleep", type=float, default=0.01, help="longest a job sleeps")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs) and say where")
    args = p.parse_args(argv)
    args.seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    log(f"seed {args.seed}, {args.seconds:.0f} s at {args.rate:g} jobs/s")
    workdir = tempfile.mkdtemp(prefix="resqued-soak-")
    soak = Soak(args, workdir)
    try:
        return soak.run()
    finally:
        soak.stop()
        if args.keep:
            log(f"logs in {workdir}")
        else:
            subprocess.run(["rm", "-rf", workdir])


if __name__ == "__main__":
    sys.exit(main())
