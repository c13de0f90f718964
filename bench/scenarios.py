"""The scenarios of issue 5. Each run starts from an empty Redis (FLUSHALL),
starts the contender's workers, measures, and stops them; the runs of a
scenario go round-robin over the contenders (rep 1 of each, then rep 2 ...) so
that a burst of load from elsewhere on the machine hits them alike."""

import os
import sys
import time
import traceback

import psutil

from contenders import RQ, Celery, Resqued, free_port, scrape_ms, write_pool_yml
from procs import BIN, BudgetExceeded, run_json, tree_cpu, wait_for

POLL = 0.005  # how often the harness looks at the done counter (as Ruby's bench)


class Results:
    """scenario -> contender key -> {"label", "unit", "runs": [...], "extras": [...], "na"}"""

    def __init__(self):
        self.scenarios = {}
        self.notes = {}

    def entry(self, scenario, key, label, unit):
        slot = self.scenarios.setdefault(scenario, {}).setdefault(
            key, {"label": label, "unit": unit, "runs": [], "extras": [], "errors": []})
        return slot

    def add(self, scenario, key, label, unit, value, extra=None):
        slot = self.entry(scenario, key, label, unit)
        slot["label"] = label
        slot["runs"].append(value)
        slot["extras"].append(extra or {})

    def error(self, scenario, key, label, unit, reason):
        self.entry(scenario, key, label, unit)["errors"].append(reason)


def attempt(ctx, res, scenario, key, label, unit, estimate, action):
    """Run one measurement if the budget allows; record its error otherwise."""
    try:
        ctx.budget.check(estimate)
    except BudgetExceeded as exc:
        res.error(scenario, key, label, unit, f"skipped: time budget ({exc})")
        return None
    started = time.monotonic()
    try:
        return action()
    except (KeyboardInterrupt, BudgetExceeded):
        raise
    except Exception as exc:
        print(f"  ! {scenario} {label}: {exc}", file=sys.stderr)
        traceback.print_exc(file=ctx.errlog)
        res.error(scenario, key, label, unit, f"{type(exc).__name__}: {exc}")
        return None
    finally:
        ctx.durations[(scenario, key)] = time.monotonic() - started


def estimate(ctx, scenario, key, default):
    last = ctx.durations.get((scenario, key))
    return default if last is None else last * 1.2 + 3


# -- drain ---------------------------------------------------------------------

def drain(ctx, res, scenario, makers, n, reps, timeout):
    """makers: [(key, factory(ctx) -> Contender)]. Figure: jobs/s from the
    pipelined push of n no-op jobs to the last one done."""
    contenders = [(key, make(ctx)) for key, make in makers]
    for rep in range(reps):
        for key, c in contenders:
            tag = f"{scenario}-{key}-{rep + 1}"
            out = attempt(ctx, res, scenario, key, c.label, "jobs/s", estimate(ctx, scenario, key, 40),
                          lambda: drain_once(ctx, c, n, tag, timeout))
            if out is not None:
                value, extra = out
                res.add(scenario, key, c.label, "jobs/s", value, extra)
                print(f"  {tag}: {value:,.1f} jobs/s ({extra['seconds']:.2f}s, "
                      f"{extra['redis_cmds_per_job']:.1f} Redis commands/job, "
                      f"{extra['cpu_ms_per_job']:.2f} CPU ms/job)", flush=True)


def drain_once(ctx, c, n, tag, timeout):
    ctx.flush()
    handle = c.start(tag)
    try:
        warm = c.warmup(handle)
        push = c.prepare_push(n)
        base = c.progress_base()
        cmds0, redis_cpu0 = ctx.redis_counters()
        cpu0 = tree_cpu(handle.root_pid)
        load0 = os.getloadavg()
        t0 = time.perf_counter()
        pushed = push()
        polls, done, first_done_at = 0, 0, None
        while True:
            done = c.progress(base)
            polls += 1
            now = time.perf_counter()
            if done >= n:
                if not c.confirm_done:
                    t1 = now
                    break
                if first_done_at is not None:
                    t1 = first_done_at
                    break
                first_done_at = now
            else:
                first_done_at = None
            if now - t0 > timeout:
                break
            if handle.proc.poll() is not None:
                raise RuntimeError(f"{c.label} exited {handle.proc.returncode} mid-run")
            time.sleep(POLL)
        cmds1, redis_cpu1 = ctx.redis_counters()
        cpu1 = tree_cpu(handle.root_pid)
        timed_out = done < n
        if timed_out:
            t1 = time.perf_counter()
        seconds = t1 - t0
        finished = min(done, n)
        harness_cmds = pushed + polls * c.poll_commands + 1
        extra = {
            "seconds": seconds, "jobs": n, "finished": finished, "timed_out": timed_out,
            "job_ran_in_worker_process": warm["job_ran_in_worker_process"],
            "redis_cmds_per_job": (cmds1 - cmds0 - harness_cmds) / max(finished, 1),
            "redis_cpu_ms_per_job": (redis_cpu1 - redis_cpu0) * 1000 / max(finished, 1),
            "cpu_ms_per_job": (cpu1 - cpu0) * 1000 / max(finished, 1),
            "worker_rss_mb": c.rss(handle) / 1e6,
            "failures": c.failures(),
            "loadavg_before": load0,
        }
        if c.system == "resqued" and not c.forks_per_job and not warm["job_ran_in_worker_process"]:
            extra["note"] = "FORK_PER_JOB=false was not honoured: the job ran in a new (forked) process"
        if timed_out:
            extra["note"] = f"timed out after {timeout:g}s: {finished} of {n} done; figure is the partial rate"
        return finished / seconds, extra
    finally:
        c.stop(handle)


# -- latency -------------------------------------------------------------------

def percentile(values, p):
    """Linear interpolation between closest ranks (numpy's default)."""
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def latency(ctx, res, makers, jobs, gap, reps):
    contenders = [(key, make(ctx)) for key, make in makers]
    for rep in range(reps):
        for key, c in contenders:
            tag = f"latency-{key}-{rep + 1}"
            out = attempt(ctx, res, "latency_p50", key, c.label, "ms", estimate(ctx, "latency_p50", key, 20),
                          lambda: latency_once(ctx, c, jobs, gap, tag))
            if out is None:
                continue
            for p in (50, 95, 99):
                res.add(f"latency_p{p}", key, c.label, "ms", out[p], out["extra"] if p == 50 else None)
            print(f"  {tag}: p50 {out[50]:.2f} ms, p95 {out[95]:.2f} ms, p99 {out[99]:.2f} ms", flush=True)


def latency_once(ctx, c, jobs, gap, tag):
    ctx.flush()
    handle = c.start(tag)
    try:
        c.warmup(handle)
        time.sleep(0.5)  # idle: the worker is back in its wait
        next_at = time.perf_counter()
        for _ in range(jobs):
            next_at += gap
            c.enqueue_latency(time.time())
            time.sleep(max(0.0, next_at - time.perf_counter()))
        wait_for(lambda: ctx.redis.llen("bench:latency") >= jobs, 30, 0.01, "the latency jobs")
        samples = []
        for item in ctx.redis.lrange("bench:latency", 0, -1):
            enqueued, started = map(float, item.split())
            samples.append((started - enqueued) * 1000)
        out = {p: percentile(samples, p) for p in (50, 95, 99)}
        out["extra"] = {"samples_ms": [round(s, 3) for s in samples], "max_ms": max(samples)}
        return out
    finally:
        c.stop(handle)


# -- enqueue -------------------------------------------------------------------

def enqueue(ctx, res, n, reps):
    systems = ("resqued", "rq", "celery")
    for rep in range(reps):
        for mode in ("single", "bulk"):
            scenario = f"enqueue_{mode}"
            for system in systems:
                def once():
                    ctx.flush()
                    out = run_json([sys.executable, "enqueue_client.py", system, mode, str(n), ctx.url],
                                   timeout=120, name=f"{scenario}-{system}-{rep + 1}")
                    queued = ctx.queued(system)
                    if queued < n:
                        raise RuntimeError(f"only {queued} of {n} jobs are in Redis")
                    return out
                out = attempt(ctx, res, scenario, system, system, "enq/s", estimate(ctx, scenario, system, 20), once)
                if out is not None:
                    res.add(scenario, system, f"{system}: {out['api']}", "enq/s", out["per_s"],
                            {"seconds": out["seconds"], "jobs": n, "api": out["api"]})
                    print(f"  {scenario}-{system}-{rep + 1}: {out['per_s']:,.0f} enq/s ({out['api']})", flush=True)


# -- floor ---------------------------------------------------------------------

FLOORS = (
    ("fork_lean", "fork+_exit+waitpid loop, lean interpreter", "fork-lean"),
    ("fork_with_imports", "fork loop after importing resqued.cli/worker/master/config", "fork-imports"),
    ("redis_min_commands", "minimum Redis commands per job (one MULTI: outcome + next LMOVE)", "redis"),
)


def floor(ctx, res, n, reps):
    for rep in range(reps):
        for key, label, mode in FLOORS:
            def once():
                ctx.flush()
                argv = [sys.executable, "floor.py", mode, str(n)] + ([ctx.url] if mode == "redis" else [])
                return run_json(argv, timeout=120, name=f"floor-{key}-{rep + 1}")
            out = attempt(ctx, res, "floor", key, label, "jobs/s", estimate(ctx, "floor", key, 15), once)
            if out is not None:
                res.add("floor", key, label, "jobs/s", out["per_s"],
                        {"seconds": out["seconds"], "n": n, "interpreter_rss_mb": out["rss_kb"] / 1000})
                print(f"  floor-{key}-{rep + 1}: {out['per_s']:,.0f}/s (interpreter RSS "
                      f"{out['rss_kb'] / 1000:.1f} MB)", flush=True)


# -- master --------------------------------------------------------------------

def start_master(ctx, name, count, timeout):
    """A master with ``count`` workers, all registered: (rundir, pool.yml, Popen, psutil.Process)."""
    rundir = os.path.join(ctx.rundir, name)
    os.makedirs(rundir, exist_ok=True)
    path = write_pool_yml(rundir, ctx.url, count)
    env = {"BENCH_REDIS_URL": ctx.url, "REDIS_BACKEND": ctx.url}
    proc = ctx.procs.start(name, [os.path.join(BIN, "resqued"), "-c", path], env=env)
    try:
        m = psutil.Process(proc.pid)
        wait_for(lambda: proc.poll() is not None or live_workers(m) >= count, timeout, 0.02, f"{count} workers")
        if proc.poll() is not None:
            raise RuntimeError(f"the master exited {proc.returncode}; see bench/results/logs/{name}.log")
        wait_for(lambda: ctx.redis.scard("resque:workers") >= count, timeout, 0.02, "registrations")
    except BaseException:
        ctx.procs.stop(proc, grace=10)
        raise
    return rundir, path, proc, m


def master(ctx, res, idle, reps, count=8):
    """One master with ``count`` workers: idle RSS/CPU over ``idle`` seconds
    (three equal windows), then ``reps`` SIGKILLed workers, then ``reps``
    reloads (each adds one worker to the pool)."""
    label = f"resqued -c pool.yml (count {count})"
    ctx.budget.check(idle + 30)
    ctx.flush()
    rundir, path, proc, m = start_master(ctx, "master", count, timeout=30)
    try:
        time.sleep(1.0)
        window = idle / 3
        for i in range(3):
            cpu0, wall0, tree0 = _cpu(m), time.monotonic(), tree_cpu(proc.pid)
            time.sleep(window)
            cpu1, wall1, tree1 = _cpu(m), time.monotonic(), tree_cpu(proc.pid)
            full = m.memory_full_info()
            wall = wall1 - wall0
            res.add("master_idle_rss", "resqued", label, "MB", full.rss / 1e6,
                    {"uss_mb": full.uss / 1e6, "window_s": wall, "workers": live_workers(m)})
            res.add("master_idle_cpu", "resqued", label, "%", (cpu1 - cpu0) / wall * 100,
                    {"window_s": wall, "master_and_workers_cpu_pct": (tree1 - tree0) / wall * 100})
            print(f"  master idle window {i + 1}: RSS {full.rss / 1e6:.1f} MB, "
                  f"CPU {(cpu1 - cpu0) / wall * 100:.3f} % (with its workers "
                  f"{(tree1 - tree0) / wall * 100:.3f} %)", flush=True)
        for i in range(reps):
            seconds = replace_one(m, count)
            res.add("master_replace_worker", "resqued", label, "ms", seconds * 1000)
            print(f"  master replace {i + 1}: {seconds * 1000:.1f} ms", flush=True)
            wait_for(lambda: ctx.redis.scard("resque:workers") >= count, 10, 0.01, "re-registration")
            time.sleep(0.3)
        startup = _timed([os.path.join(BIN, "resquectl"), "--version"])
        for i in range(reps):
            count += 1
            write_pool_yml(rundir, ctx.url, count)
            seconds = _timed([os.path.join(BIN, "resquectl"), "-c", path, "reload"], check=True)
            live = live_workers(m)
            res.add("master_reload", "resqued", label, "ms", seconds * 1000,
                    {"count_after": count, "live_workers_when_returned": live,
                     "resquectl_startup_ms": startup * 1000})
            print(f"  master reload {i + 1} (count -> {count}): {seconds * 1000:.0f} ms "
                  f"({live} live workers when it returned; resquectl --version alone takes "
                  f"{startup * 1000:.0f} ms)", flush=True)
            wait_for(lambda: live_workers(m) >= count, 10, 0.01, "the new workers")
    finally:
        ctx.procs.stop(proc, grace=10)


def master64(ctx, res, idle, count=64):
    """A master with ``count`` workers: its idle CPU over ``idle`` seconds, the
    cost of one memory check (process/memory.tree_memory: the PSS of a worker
    and its forker, standby and job child, as the recycler and resquectl
    status read it), and one ``resquectl status``, which reads all of them."""
    from resqued.process.memory import tree_memory

    label = f"resqued -c pool.yml (count {count})"
    ctx.budget.check(idle + 120)
    ctx.flush()
    _, path, proc, m = start_master(ctx, "master64", count, timeout=120)
    try:
        time.sleep(2.0)
        cpu0, wall0 = _cpu(m), time.monotonic()
        time.sleep(idle)
        wall = time.monotonic() - wall0
        cpu = (_cpu(m) - cpu0) / wall * 100
        res.add("master64_idle_cpu", "resqued", label, "%", cpu, {"window_s": wall, "workers": live_workers(m)})
        workers = [c.pid for c in m.children() if _title(c).startswith("resque-")]
        rounds = 5
        t0 = time.perf_counter()
        for _ in range(rounds):
            for pid in workers:
                tree_memory(pid)
        check_ms = (time.perf_counter() - t0) / (rounds * len(workers)) * 1000
        res.add("memory_check", "resqued", label, "ms", check_ms, {"workers": len(workers)})
        status_s = _timed([os.path.join(BIN, "resquectl"), "-c", path, "status", "--json"], check=True)
        res.add("master64_status", "resqued", label, "ms", status_s * 1000)
        print(f"  {len(workers)} workers: master idle CPU {cpu:.3f} %, one memory check {check_ms:.2f} ms, "
              f"resquectl status {status_s * 1000:.0f} ms", flush=True)
    finally:
        ctx.procs.stop(proc, grace=20)


def scrape64(ctx, res, reps, count=64, queues=100):
    """A master with ``count`` workers and metrics on, Redis holding
    ``queues`` queues (10 jobs each, none served): the wall time of a scrape
    of /metrics (the master's part over its control socket, Redis's in two
    round trips, each worker's memory)."""
    label = f"resqued -c pool.yml (count {count}, {queues} queues, metrics: on)"
    ctx.budget.check(150)
    ctx.flush()
    from resqued.resque import wire
    pipe = ctx.redis.pipeline(transaction=False)
    for q in range(queues):
        pipe.sadd("resque:queues", f"q{q:03d}")
        pipe.rpush(f"resque:queue:q{q:03d}", *(wire.dumps(wire.payload("NoopJob", [], wire.new_job_id()))
                                               for _ in range(10)))
    pipe.execute()
    rundir = os.path.join(ctx.rundir, "scrape64")
    os.makedirs(rundir, exist_ok=True)
    address = f"127.0.0.1:{free_port()}"
    path = write_pool_yml(rundir, ctx.url, count, metrics=address)
    proc = ctx.procs.start("scrape64", [os.path.join(BIN, "resqued"), "-c", path],
                           env={"BENCH_REDIS_URL": ctx.url, "REDIS_BACKEND": ctx.url})
    try:
        m = psutil.Process(proc.pid)
        wait_for(lambda: proc.poll() is not None or live_workers(m) >= count, 120, 0.05, f"{count} workers")
        wait_for(lambda: scrape_ms(address) is not None, 30, 0.05, "the metrics exporter")
        time.sleep(1.0)
        for i in range(max(reps, 5)):
            ms = scrape_ms(address)
            res.add("scrape64", "resqued", label, "ms", ms, {"workers": live_workers(m), "queues": queues})
            print(f"  scrape {i + 1}: {ms:.1f} ms", flush=True)
    finally:
        ctx.procs.stop(proc, grace=20)


def _cpu(p):
    t = p.cpu_times()
    return t.user + t.system


def _timed(argv, check=False):
    import subprocess
    t0 = time.perf_counter()
    out = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    seconds = time.perf_counter() - t0
    if check and out.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {out.returncode}: {out.stderr.decode().strip()}")
    return seconds


def _title(p) -> str:
    try:
        return " ".join(p.cmdline())
    except psutil.Error:
        return ""


def live_workers(m) -> int:
    return sum(1 for c in m.children() if _title(c).startswith("resque-"))


def replace_one(m, count) -> float:
    """SIGKILL one worker; seconds until the master has a new worker child
    waiting for jobs: its title starts with "resque-", and no longer says
    "Starting" (polled every 2 ms)."""
    workers = [c for c in m.children() if _title(c).startswith("resque-")]
    before = {c.pid for c in m.children()}
    victim = workers[0]
    t0 = time.perf_counter()
    victim.kill()
    deadline = t0 + 10
    while time.perf_counter() < deadline:
        for c in m.children():
            if c.pid not in before and _title(c).startswith("resque-") and "Starting" not in _title(c):
                return time.perf_counter() - t0
        time.sleep(0.002)
    raise TimeoutError("no replacement worker within 10 s")


MAKERS = {
    "drain1_fork": [("resqued", lambda ctx: Resqued(ctx, fork=True)),
                    ("resqued_noforker", lambda ctx: Resqued(ctx, fork=True, job_forker=False)),
                    ("rq", lambda ctx: RQ(ctx, "Worker"))],
    "drain1_nofork": [("resqued", lambda ctx: Resqued(ctx, fork=False)),
                      ("rq", lambda ctx: RQ(ctx, "SimpleWorker")),
                      ("celery", lambda ctx: Celery(ctx, "solo", 1))],
    "drain2": [("resqued", lambda ctx: Resqued(ctx, fork=True, count=2, master=True)),
               ("resqued_noforker", lambda ctx: Resqued(ctx, fork=True, count=2, master=True, job_forker=False)),
               ("resqued_nofork", lambda ctx: Resqued(ctx, fork=False, count=2, master=True)),
               ("rq", lambda ctx: RQ(ctx, "Worker", pool=2)),
               ("celery", lambda ctx: Celery(ctx, "prefork", 2))],
    # drain1_fork's jobs with metrics on and off: a master of one worker either way (env mode with
    # METRICS runs one), its exporter scraped every second while the jobs drain.
    "drain1_metrics": [("resqued_master", lambda ctx: Resqued(ctx, fork=True, master=True)),
                       ("resqued_metrics", lambda ctx: Resqued(ctx, fork=True, master=True, metrics=True))],
    # Jobs that do what real jobs do first: build a redis-py client and write one key (issue 23);
    # resqued's no-op rate beside them, from the same run.
    "drain1_io": [("resqued_noop", lambda ctx: Resqued(ctx, fork=True)),
                  ("resqued", lambda ctx: Resqued(ctx, fork=True, job="io")),
                  ("resqued_hook", lambda ctx: Resqued(ctx, fork=True, job="io_warm")),
                  ("rq", lambda ctx: RQ(ctx, "Worker", job="io")),
                  ("celery", lambda ctx: Celery(ctx, "solo", 1, job="io"))],
    "latency": [("resqued", lambda ctx: Resqued(ctx, fork=True)),
                ("resqued_noforker", lambda ctx: Resqued(ctx, fork=True, job_forker=False)),
                ("rq", lambda ctx: RQ(ctx, "Worker")),
                ("celery", lambda ctx: Celery(ctx, "solo", 1))],
}
