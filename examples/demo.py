#!/usr/bin/env python3
"""`make run`: a private Redis under ./var, the resqued master on
conf/pool.yml with the demo jobs of examples/jobs.py, a few jobs enqueued
(one fails), and the result shown. Ctrl-C stops everything; no process is
left behind.

--once: exit by itself once the demo jobs are done (used by the test suite).
"""

import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

from redis_server import RedisServer  # noqa: E402  (tests/redis_server.py)
from resqued import Resque  # noqa: E402


CONFIG = os.path.join(ROOT, "conf", "pool.yml")


def ctl(*args, env):
    subprocess.run([sys.executable, "-m", "resqued.ctl", "-c", CONFIG, *args], env=env, cwd=ROOT, check=False)


def main():
    once = "--once" in sys.argv
    # Ctrl-C stops the demo even when it was started with SIGINT ignored (from
    # a background job of a script, or a test runner's worker): Python then
    # installs no KeyboardInterrupt of its own.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    var = os.environ.get("RESQUED_DEMO_VAR") or os.path.join(ROOT, "var")
    redis = RedisServer(var, persistent=True).start()
    print(f"redis-server running on {redis.socket} (data in ./var)")
    # The demo's own Redis: every `make run` starts from a clean slate
    # (emptied before resqued starts, so its registrations stay).
    Resque(redis.url).redis.flushdb()
    print("(the demo's Redis was emptied: each `make run` starts clean)")
    # REDIS_URL overrides the redis: of conf/pool.yml.
    env = dict(os.environ, REDIS_URL=redis.url, PYTHONPATH=ROOT)
    # Its own session: Ctrl-C reaches only us, and we stop resqued in order.
    resqued = subprocess.Popen([sys.executable, "-m", "resqued", "-c", CONFIG], env=env, cwd=ROOT,
                               start_new_session=True)
    try:
        client = Resque(redis.url)
        deadline = time.monotonic() + 30
        while client.redis.scard(client.keys.workers) < 3:
            if resqued.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("resqued did not start; see the lines above")
            time.sleep(0.05)
        before = client.stats()["processed"]
        print("\nenqueueing 5 demo jobs (one of them fails on purpose)\n")
        client.enqueue("mail", "SendWelcomeEmail", {"to": "ada@example.com"}, track_status=True)
        client.enqueue_call("default", "ResizeImage", "photos/cat.jpg", 640, 480)
        client.enqueue_call("high", "rebuild_search_index", "books")
        client.enqueue("default", "ChargeCard", {"order": 1042})
        client.enqueue("mail", "SendWelcomeEmail", {"to": "grace@example.com"})
        while client.stats()["processed"] < before + 5:
            if time.monotonic() > deadline:
                raise SystemExit("the demo jobs did not finish in time")
            time.sleep(0.05)
        # Printed as they can be typed in another terminal: REDIS_URL points
        # resquectl at the demo's Redis (it overrides conf/pool.yml's redis:).
        typed = f"REDIS_URL={redis.url} .venv/bin/resquectl"
        for command in ("stats", "status", "failed"):
            print(f"\n$ {typed} -c conf/pool.yml {command}")
            ctl(command, env=env)
        if not once:
            print("\nresqued is still running. In another terminal, in this directory, try:\n"
                  f"  {typed} enqueue --call default ResizeImage '[\"a.png\", 10, 10]'\n"
                  f"  {typed} -c conf/pool.yml pause   (then resume, reload, restart, status)\n"
                  "Ctrl-C stops everything.")
            signal.pause()
    except KeyboardInterrupt:
        print("\nstopping")
    finally:
        if resqued.poll() is None:
            resqued.send_signal(signal.SIGQUIT)  # finish running jobs, then exit
            try:
                resqued.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(resqued.pid, signal.SIGKILL)
                resqued.wait()
        redis.stop()
    print("stopped: no resqued or redis-server process left running")


if __name__ == "__main__":
    main()
