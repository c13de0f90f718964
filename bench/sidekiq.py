"""nofork_vs_sidekiq (issue 23 item 5): resqued's no-fork hot path against
Sidekiq, the job system Ruby shops hold up as fast, in one run.

The same no-op job, one completion write each: resqued's is its outcome
transaction (which also takes the next job); Sidekiq counts jobs in memory
only (written with its heartbeat, every 5 s), so a server middleware writes
one pipelined INCR after each job (jobs_sidekiq.rb). Rows:

- sidekiq_drain1: Sidekiq ``-c 1`` against one resqued worker, ``fork: false``;
- sidekiq_drain2: Sidekiq ``-c 2`` against a master of two such workers;
- sidekiq_pickup_p50: idle pickup (enqueue to start), p50, one worker each.

Sidekiq is Debian's ruby-sidekiq (apt-get install ruby-sidekiq), run as its
users do (``sidekiq -r``); the bench never installs it (that needs root)
and says "sidekiq not installed: skipped" when it is missing. Besides jobs/s
each drain row records Redis's read events per job: the round trips the
workers made (a pipeline or a transaction sent at once is one read event).
"""

import json
import os
import shutil
import subprocess
import time

from contenders import QUEUE, Contender, Handle, Resqued
from procs import BENCH
from scenarios import attempt, drain, estimate, latency_once

JOBS = os.path.join(BENCH, "jobs_sidekiq.rb")
DONE = "bench:sidekiq:done"


def missing() -> str | None:
    """Why Sidekiq cannot run here, or None."""
    if not shutil.which("sidekiq") or not shutil.which("ruby"):
        return "no sidekiq command"
    try:
        probe = subprocess.run(["ruby", "-e", 'require "sidekiq"'], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"ruby failed: {exc}"
    return None if probe.returncode == 0 else "the sidekiq gem does not load"


class Sidekiq(Contender):
    system = "sidekiq"
    forks_per_job = False
    poll_commands = 1

    def __init__(self, ctx, concurrency: int = 1):
        super().__init__(ctx)
        self.concurrency = concurrency
        self.label = f"sidekiq -c {concurrency}"

    def start(self, tag):
        argv = ["sidekiq", "-r", JOBS, "-c", str(self.concurrency), "-q", QUEUE, "-e", "production"]
        proc = self.ctx.procs.start(tag, argv, env={"REDIS_URL": self.ctx.url})
        handle = Handle(proc, proc.pid)
        self._wait_ready(handle, lambda: self.r.scard("processes") >= 1, "sidekiq to register")
        return handle

    def _payload(self, job_class: str, args: list) -> str:
        now = time.time()
        return json.dumps({"retry": False, "queue": QUEUE, "class": job_class, "args": args,
                           "jid": os.urandom(12).hex(), "created_at": now, "enqueued_at": now})

    def _push(self, job_class: str, args: list) -> None:
        # As Sidekiq::Client does: SADD queues, LPUSH queue:<name> (its fetch BRPOPs).
        pipe = self.r.pipeline(transaction=False)
        pipe.sadd("queues", QUEUE)
        pipe.lpush(f"queue:{QUEUE}", self._payload(job_class, args))
        pipe.execute()

    def enqueue_pid_job(self, key):
        self._push("PidJob", [key])

    def enqueue_latency(self, t):
        self._push("LatencyJob", [t])

    def prepare_push(self, n):
        payloads = [self._payload("NoopJob", [{"i": i}]) for i in range(n)]
        pipe = self.r.pipeline(transaction=False)
        pipe.sadd("queues", QUEUE)
        for start in range(0, n, 1000):
            pipe.lpush(f"queue:{QUEUE}", *payloads[start:start + 1000])
        sent = len(pipe.command_stack)
        return lambda: (pipe.execute(), sent)[1]

    def progress_base(self):
        return int(self.r.get(DONE) or 0)

    def progress(self, base):
        return int(self.r.get(DONE) or 0) - base


def nofork_vs_sidekiq(ctx, res, n, reps, pickups=50, gap=0.020):
    why = missing()
    if why:
        print(f"  sidekiq not installed: skipped ({why})", flush=True)
        res.notes["nofork_vs_sidekiq"] = f"sidekiq not installed: skipped ({why})"
        return
    drain(ctx, res, "sidekiq_drain1", [("resqued", lambda c: Resqued(c, fork=False)),
                                       ("sidekiq", lambda c: Sidekiq(c, 1))], n, reps, timeout=120)
    drain(ctx, res, "sidekiq_drain2", [("resqued", lambda c: Resqued(c, fork=False, count=2, master=True)),
                                       ("sidekiq", lambda c: Sidekiq(c, 2))], 2 * n, reps, timeout=120)
    contenders = [("resqued", Resqued(ctx, fork=False)), ("sidekiq", Sidekiq(ctx, 1))]
    for rep in range(reps):
        for key, c in contenders:
            tag = f"sidekiq_pickup-{key}-{rep + 1}"
            out = attempt(ctx, res, "sidekiq_pickup_p50", key, c.label, "ms",
                          estimate(ctx, "sidekiq_pickup_p50", key, 20),
                          lambda: latency_once(ctx, c, pickups, gap, tag))
            if out is not None:
                res.add("sidekiq_pickup_p50", key, c.label, "ms", out[50], out["extra"])
                print(f"  {tag}: p50 {out[50]:.2f} ms", flush=True)
