"""How the master's cost grows with its workers (issue 23): one master with
1, 8, 32 and 64 workers in turn, every worker busy on a queue of sleeping
jobs (SleepJob: a fork per job, the child sleeps, so the workers and the
master do their real per-job work and the CPU stays free to measure it).

At each size: the master's CPU over a window (the master process alone:
its spawner and workers are other processes), the master's RSS, the PSS
per worker (the worker, its job forker and standby, and the job child
running then: PSS counts a page shared by n processes as 1/n in each, so
the sum is what the worker tree really adds), and the time to replace a
SIGKILLed worker (scenarios.replace_one: until the new worker's title
leaves "Starting")."""

import os
import time

import psutil

from contenders import QUEUE
from procs import wait_for
from scenarios import _cpu, _title, live_workers, replace_one, start_master

SIZES = (1, 8, 32, 64)
JOB_SECONDS = 1.0


def cpu_seconds(p) -> float:
    """``p``'s CPU time, all its threads (those gone too), from the
    process's CPU clock (clock_gettime, nanoseconds). psutil's user +
    system time counts 10 ms clock ticks: over a 20 s window one tick is
    0.05 %, as much as the master's whole cost at one worker, so the curve
    was made of 2 to 7 ticks."""
    try:
        # The kernel's clock id for another process's CPU time: CPUCLOCK_SCHED (2) of pid.
        return time.clock_gettime(((~p.pid) << 3) | 2)
    except (OSError, OverflowError):
        return _cpu(p)   # ticks, where that clock cannot be read


def feed(ctx, jobs: int) -> None:
    from resqued.resque import wire
    raw = [wire.dumps(wire.payload("SleepJob", [{"seconds": JOB_SECONDS}], wire.new_job_id()))
           for _ in range(jobs)]
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.sadd("resque:queues", QUEUE)
    for i in range(0, len(raw), 1000):
        pipe.rpush(f"resque:queue:{QUEUE}", *raw[i:i + 1000])
    pipe.execute()


def tree_pss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_full_info().pss
        except psutil.Error:
            pass   # a job child that finished between the listing and the read
    return total


def busy(m) -> int:
    """Workers running a job: a forking worker's title says "Forked PID at ..."."""
    return sum(1 for c in m.children() if _title(c).startswith("resque-") and "Forked " in _title(c))


def scale(ctx, res, window: float, reps: int, sizes=SIZES):
    for count in sizes:
        key = f"w{count}"
        label = f"resqued -c pool.yml (count {count}, busy on {JOB_SECONDS:g} s sleeping jobs)"
        ctx.budget.check(window + 60)
        ctx.flush()
        # Enough work for the whole visit at this size, with room: the queue must never run dry.
        feed(ctx, int(count * (window + 20 + reps * 3) / JOB_SECONDS * 1.5) + 10)
        _, _, proc, m = start_master(ctx, f"scale{count}", count, timeout=120)
        try:
            wait_for(lambda: busy(m) >= count, 30, 0.05, f"{count} busy workers")
            time.sleep(2.0)
            cpu0, wall0 = cpu_seconds(m), time.monotonic()
            time.sleep(window)
            wall = time.monotonic() - wall0
            cpu = (cpu_seconds(m) - cpu0) / wall * 100
            workers = [c for c in m.children() if _title(c).startswith("resque-")]
            pss = [tree_pss(w) for w in workers]
            rss = m.memory_info().rss
            per_worker = sum(pss) / len(pss) / 1e6
            res.add("scale_master_cpu", key, label, "%", cpu, {"window_s": wall, "workers": len(workers)})
            res.add("scale_master_rss", key, label, "MB", rss / 1e6)
            res.add("scale_pss_per_worker", key, label, "MB", per_worker,
                    {"max_mb": max(pss) / 1e6, "min_mb": min(pss) / 1e6})
            times = []
            for _ in range(reps):
                times.append(replace_one(m, count) * 1000)
                res.add("scale_replace_worker", key, label, "ms", times[-1])
                wait_for(lambda: live_workers(m) >= count, 10, 0.01, "the replacement")
                time.sleep(0.5)
            print(f"  {count:2d} workers: master CPU {cpu:.2f} %, master RSS {rss / 1e6:.1f} MB, "
                  f"PSS per worker {per_worker:.1f} MB (min {min(pss) / 1e6:.1f}, max {max(pss) / 1e6:.1f}), "
                  f"replace {', '.join(f'{t:.0f}' for t in times)} ms; load {os.getloadavg()[0]:.2f}", flush=True)
        finally:
            ctx.procs.stop(proc, grace=20)
