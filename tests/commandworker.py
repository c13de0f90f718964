"""A stand-in for php-resque's worker, for command pools' tests: run as a
plain program (``python tests/commandworker.py``), it speaks Resque's keys
as php-resque does (tests/golden/php-resque/README.md): registers in
``workers``, writes ``worker:<id>`` before it forks each job, counts
``stat:processed:<id>``, unregisters on QUIT/TERM/INT; USR2 pauses, CONT
resumes; titles as Resque's. Its jobs: class ``Sleep`` (args [seconds],
or [seconds, MB the job holds]); BOOT_DELAY delays its handlers; a
worker started with LEAK_MB keeps that much more memory after each job."""

import json
import os
import signal
import socket
import time

import redis
import setproctitle

QUEUES = os.environ["QUEUE"].split(",")
PREFIX = os.environ.get("PREFIX", "resque").rstrip(":") + ":"
ID = f"{socket.gethostname()}:{os.getpid()}:{os.environ['QUEUE']}"
r = redis.Redis.from_url(os.environ["REDIS_URL"])   # REDIS_BACKEND is php-resque's host:port
flags = {"quit": False, "paused": False}
leaked = []


def on_signal(signum, frame):
    flags["quit"] |= signum in (signal.SIGQUIT, signal.SIGTERM, signal.SIGINT)
    flags["paused"] = signum == signal.SIGUSR2 or (flags["paused"] and signum != signal.SIGCONT)


def title(text):
    setproctitle.setproctitle(f"resque-1.2: {text}")


# BOOT_DELAY: seconds before its handlers are in place, as a Rails app boots
# before Resque's (a USR2 meanwhile kills it).
time.sleep(float(os.environ.get("BOOT_DELAY", "0")))
for sig in (signal.SIGQUIT, signal.SIGTERM, signal.SIGINT, signal.SIGUSR2, signal.SIGCONT):
    signal.signal(sig, on_signal)
r.sadd(PREFIX + "workers", ID)
r.set(f"{PREFIX}worker:{ID}:started", time.ctime())
while not flags["quit"]:
    queue, raw = next(((q, raw) for q in ([] if flags["paused"] else QUEUES)
                       if (raw := r.lpop(f"{PREFIX}queue:{q}"))), (None, None))
    if raw is None:
        title("Paused" if flags["paused"] else f"Waiting for {os.environ['QUEUE']}")
        time.sleep(float(os.environ.get("INTERVAL", "5")))
        continue
    job = json.loads(raw)
    r.set(f"{PREFIX}worker:{ID}", json.dumps({"queue": queue, "run_at": time.ctime(), "payload": job}))
    pid = os.fork()
    if pid == 0:
        title(f"Processing {queue} since {int(time.time())}")
        hog = b"\1" * (int(job["args"][1]) << 20) if len(job["args"]) > 1 else b""   # MB held while it runs
        time.sleep(float(job["args"][0]) if job["class"] == "Sleep" else 0)
        os._exit(0)
    title(f"Forked {pid} at {int(time.time())}")
    os.waitpid(pid, 0)
    leaked.append(b"\1" * (int(os.environ.get("LEAK_MB", "0")) << 20))   # written: resident
    r.incr(PREFIX + "stat:processed")
    r.incr(f"{PREFIX}stat:processed:{ID}")
    r.delete(f"{PREFIX}worker:{ID}")
r.srem(PREFIX + "workers", ID)
r.delete(f"{PREFIX}worker:{ID}", f"{PREFIX}worker:{ID}:started", f"{PREFIX}stat:processed:{ID}")
