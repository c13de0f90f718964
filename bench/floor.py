"""The physical limits, each in a fresh interpreter (run by bench/run.py):

  floor.py fork-lean N          os.fork + os._exit + waitpid, N times, nothing imported
  floor.py fork-imports N       the same after importing what a resqued worker imports
  floor.py redis N URL          the Redis commands one job needs, pipelined as resqued does

Prints one JSON line: {"n", "seconds", "per_s", "rss_kb"}.
"""

import os
import sys
import time


def rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def fork_loop(n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
    return time.perf_counter() - start


def redis_loop(n: int, url: str) -> float:
    """One job's minimum, in one round trip per job as a busy resqued worker
    does: one MULTI/EXEC that records the outcome (processed +1 globally and
    per worker, the worker's working-on key deleted, the payload removed from
    the in-flight list, the job's status set only if tracked: SET XX) and
    moves the next payload from the queue to the in-flight list."""
    import json
    import uuid
    import redis
    client = redis.Redis.from_url(url)
    queue, inflight = "floor:queue", "floor:inflight"
    client.delete(queue, inflight)
    payloads = [json.dumps({"class": "NoopJob", "args": [{"i": i}], "id": uuid.uuid4().hex,
                            "queue_time": time.time()}, separators=(",", ":")) for i in range(n)]
    pipe = client.pipeline(transaction=False)
    for start in range(0, n, 1000):
        pipe.rpush(queue, *payloads[start:start + 1000])
    pipe.execute()
    start = time.perf_counter()
    raw = client.blmove(queue, inflight, 1, "LEFT", "RIGHT")
    done = 0
    while raw is not None:
        job_id = json.loads(raw)["id"]
        pipe = client.pipeline(transaction=True)
        pipe.incrby("floor:stat:processed", 1)
        pipe.incrby("floor:stat:processed:worker", 1)
        pipe.delete("floor:worker")
        pipe.lrem(inflight, 1, raw)
        pipe.set(f"floor:job:{job_id}:status", "{}", xx=True)
        pipe.lmove(queue, inflight, "LEFT", "RIGHT")
        raw = pipe.execute()[-1]
        done += 1
    elapsed = time.perf_counter() - start
    if done != n:
        sys.exit(f"the floor loop handled {done} jobs, not {n}")
    client.delete(queue, inflight, "floor:stat:processed", "floor:stat:processed:worker")
    return elapsed


def main():
    mode, n = sys.argv[1], int(sys.argv[2])
    if mode == "fork-imports":
        import resqued.cli, resqued.worker.worker, resqued.master.arbiter, resqued.config.loader  # noqa: E401,F401
    if mode in ("fork-lean", "fork-imports"):
        rss = rss_kb()
        fork_loop(min(50, n))  # warm-up
        seconds = fork_loop(n)
    elif mode == "redis":
        rss = rss_kb()
        seconds = redis_loop(n, sys.argv[3])
    else:
        sys.exit(f"unknown mode {mode}")
    print('{"n": %d, "seconds": %r, "per_s": %r, "rss_kb": %d}' % (n, seconds, n / seconds, rss))


if __name__ == "__main__":
    main()
