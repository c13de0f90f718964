"""`make bench`: resqued against RQ and Celery on this machine, in one run.

Starts a private redis-server (unix socket; never port 6379), runs every
scenario of issue 5 for every contender (median of 3 runs, round-robin), and
writes bench/results/latest.json, bench/results/chart.png and one table.
Bounded: a global time budget (default 840 s), a timeout on every run, and
every process it started is killed and reaped at the end, also on error or
Ctrl-C. See BENCHMARKS.md.

  bench/run.py [--idle 60] [--reps 3] [--budget 840] [--only drain1_fork,latency] [--quick]

nofork_vs_sidekiq runs only where Debian's ruby-sidekiq is installed (sidekiq.py).
"""

import argparse
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
from datetime import datetime, timezone

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
# ROOT too: tests/sentinels.py imports its neighbours as tests.<module>.
sys.path[:0] = [BENCH, os.path.join(ROOT, "tests"), ROOT]

import redis  # noqa: E402

import report  # noqa: E402
import scaling  # noqa: E402
import scenarios  # noqa: E402
import scenarios_replica  # noqa: E402
import scenarios_web_scheduler  # noqa: E402
import sidekiq  # noqa: E402
from procs import LOGS, RESULTS, Budget, BudgetExceeded, Procs  # noqa: E402
from redis_server import RedisServer, find_redis_server  # noqa: E402  (tests/redis_server.py)

ALL = ("floor", "enqueue", "latency", "master", "master64", "drain1_nofork", "drain1_fork", "drain2",
       "drain1_metrics", "drain1_nofork_wait", "scrape64", "scale", "web_pages", "delayed_moves",
       "nofork_vs_sidekiq", "drain1_io")


class Context:
    def __init__(self, url, server, procs, rundir, budget, errlog):
        self.url = url
        self.server = server
        self.redis = redis.Redis.from_url(url, decode_responses=True)
        self.procs = procs
        self.rundir = rundir
        self.budget = budget
        self.errlog = errlog
        self.durations = {}

    def flush(self):
        self.redis.flushall()
        self.redis.config_resetstat()

    def redis_counters(self):
        """(commands processed so far, redis-server CPU seconds, read events:
        the requests clients sent, a pipeline at once being one) in one INFO."""
        info = self.redis.info()
        return (info["total_commands_processed"], info["used_cpu_sys"] + info["used_cpu_user"],
                info["total_reads_processed"])

    def queued(self, system) -> int:
        key = {"resqued": "resque:queue:bench", "rq": "rq:queue:bench", "celery": "bench"}[system]
        return self.redis.llen(key) - 1  # less the warm-up job


def machine_info(ctx) -> dict:
    info = ctx.redis.info("server")
    cpu_model = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu_model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    versions = {}
    for name in ("rq", "celery", "kombu", "redis", "psutil", "resqued"):
        try:
            from importlib.metadata import version
            versions[name] = version(name)
        except Exception:
            versions[name] = None
    try:
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "resqued"],
                                    capture_output=True, text=True).stdout.strip())
    except OSError:
        commit, dirty = None, None
    import psutil
    return {
        "cpu_count": os.cpu_count(), "cpu_model": cpu_model,
        "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
        "platform": platform.platform(), "python": platform.python_version(),
        "redis_server": info.get("redis_version"), "redis_server_binary": find_redis_server(),
        "redis_connection": "unix socket", "versions": versions,
        "resqued_commit": commit, "resqued_worktree_dirty": dirty,
        "loadavg_start": os.getloadavg(),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--idle", type=float, default=60.0, help="master idle window in seconds (default 60)")
    p.add_argument("--reps", type=int, default=3, help="runs per figure (default 3)")
    p.add_argument("--budget", type=float, default=840.0, help="global time budget in seconds (default 840)")
    p.add_argument("--only", help=f"comma-separated subset of {','.join(ALL)}")
    p.add_argument("--quick", action="store_true", help="a smoke run: 1/10 of the jobs, 1 rep, 6 s idle")
    p.add_argument("--contenders", help="comma-separated subset of the contenders (e.g. resqued,celery); "
                   "for quick comparisons while working, not for the published figures")
    p.add_argument("--out", help="default bench/results/latest.json (quick.json with --quick)")
    args = p.parse_args(argv)
    scale = 10 if args.quick else 1
    if args.quick:
        args.reps, args.idle = 1, min(args.idle, 6.0)
    out_given = args.out is not None
    args.out = args.out or os.path.join(RESULTS, "quick.json" if args.quick else "latest.json")
    chosen = [s.strip() for s in args.only.split(",")] if args.only else list(ALL)
    unknown = set(chosen) - set(ALL)
    if unknown:
        p.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")

    if args.contenders:
        wanted = {c.strip() for c in args.contenders.split(",")}
        for name, makers in scenarios.MAKERS.items():
            scenarios.MAKERS[name] = [(k, m) for k, m in makers if k in wanted or k.split("_")[0] in wanted]
        if not out_given:
            args.out = os.path.join(RESULTS, "partial.json")
    os.makedirs(LOGS, exist_ok=True)
    for name in os.listdir(LOGS):
        if name.endswith(".log"):
            os.unlink(os.path.join(LOGS, name))
    budget = Budget(args.budget)
    started_at = datetime.now(timezone.utc)

    def on_signal(signum, _):
        raise KeyboardInterrupt(f"signal {signum}")

    def on_alarm(signum, _):
        raise BudgetExceeded("hard deadline: the budget plus 60 s")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(args.budget) + 60)

    rundir = tempfile.mkdtemp(prefix="rqd-bench-")  # short: unix socket paths hold 107 bytes
    procs = Procs()
    server = RedisServer(os.path.join(rundir, "redis"))
    res = scenarios.Results()
    status, machine = "complete", {}
    errlog = open(os.path.join(LOGS, "harness-errors.log"), "w")
    try:
        server.start()
        url = server.url
        os.environ["BENCH_REDIS_URL"] = url  # benchapp (Celery) reads it at import
        ctx = Context(url, server, procs, rundir, budget, errlog)
        machine = machine_info(ctx)
        print(f"bench: {machine['cpu_count']} CPUs ({machine['cpu_model']}), Python {machine['python']}, "
              f"redis-server {machine['redis_server']} on {url}; load {machine['loadavg_start']}", flush=True)
        reps = args.reps
        for name in chosen:
            print(f"== {name} (t={budget.elapsed():.0f}s)", flush=True)
            try:
                if name == "floor":
                    scenarios.floor(ctx, res, 2000 // scale, reps)
                elif name == "enqueue":
                    scenarios.enqueue(ctx, res, 10000 // scale, reps)
                elif name == "latency":
                    scenarios.latency(ctx, res, scenarios.MAKERS["latency"], 50, 0.020, reps)
                elif name == "master":
                    scenarios.master(ctx, res, args.idle, reps)
                elif name == "master64":
                    scenarios.master64(ctx, res, args.idle / 3)
                elif name == "scrape64":
                    scenarios.scrape64(ctx, res, reps)
                elif name == "scale":
                    scaling.scale(ctx, res, args.idle / 3, reps)
                elif name in ("drain1_fork", "drain1_nofork", "drain1_metrics"):
                    scenarios.drain(ctx, res, name, scenarios.MAKERS[name], 2000 // scale, reps, timeout=120)
                elif name == scenarios_replica.SCENARIO:
                    scenarios_replica.drain_wait(ctx, res, 2000 // scale, reps)
                elif name == "web_pages":
                    scenarios_web_scheduler.web(ctx, res, 100_000 // scale, 1000 // scale, 200 // scale, 20)
                elif name == "delayed_moves":
                    scenarios_web_scheduler.delayed(ctx, res, 100_000 // scale, 10 if scale == 1 else 3, 500, reps)
                elif name == "nofork_vs_sidekiq":
                    # 20,000 jobs: ~5 s a drain; at 4,000 (under a second) the
                    # machine's noise made one run 0.5x and the next 1.1x.
                    sidekiq.nofork_vs_sidekiq(ctx, res, 20_000 // scale, reps)
                elif name == "drain1_io":   # last, and half as many jobs: RQ's run of them takes ~15 s
                    scenarios.drain(ctx, res, name, scenarios.MAKERS[name], 1000 // scale, reps, timeout=120)
                elif name == "drain2":
                    scenarios.drain(ctx, res, name, scenarios.MAKERS[name], 4000 // scale, reps, timeout=120)
            except BudgetExceeded as exc:
                print(f"  ! {name}: {exc}", file=sys.stderr)
                res.notes[name] = f"stopped: {exc}"
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # one broken scenario must not stop the others
                import traceback
                traceback.print_exc()
                res.notes[name] = f"{type(exc).__name__}: {exc}"
    except KeyboardInterrupt as exc:
        status = f"interrupted ({str(exc) or 'Ctrl-C'})"
        print(f"bench: {status}; writing what was measured", file=sys.stderr)
    except BudgetExceeded as exc:
        status = f"stopped: {exc}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # let the cleanup finish
        procs.stop_all()
        server.stop()
        shutil.rmtree(rundir, ignore_errors=True)
        errlog.close()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    machine["loadavg_end"] = os.getloadavg()
    summary = report.summarize(res.scenarios)
    ratio = report.ratios(summary)
    floor = report.floor_section(summary)
    targets = report.targets(summary, ratio, floor)
    data = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "duration_s": round(budget.elapsed(), 1),
        "status": status,
        "options": {"reps": args.reps, "idle_s": args.idle, "budget_s": args.budget,
                    "quick": args.quick, "scenarios": chosen},
        "machine": machine,
        "scenarios": summary,
        "ratios": ratio,
        "ratio_note": report.RATIO_NOTE,
        "floor": floor,
        "targets": targets,
        "notes": res.notes,
    }
    report.write_json(args.out, data)
    rows = report.table_rows(summary, ratio, floor)
    print()
    print(report.render_table(rows))
    print()
    print("Issue 5 targets in this run:")
    print(report.render_targets(targets))
    if any(s in summary for s in ("drain1_fork", "drain1_nofork", "drain2", "enqueue_single", "enqueue_bulk")):
        stem = os.path.splitext(os.path.basename(args.out))[0]
        chart_path = os.path.join(os.path.dirname(args.out), "chart.png" if stem == "latest" else f"{stem}-chart.png")
        report.chart(summary, floor, chart_path, args.reps)
        print(f"\nwrote {os.path.relpath(args.out, ROOT)} and {os.path.relpath(chart_path, ROOT)} "
              f"in {budget.elapsed():.0f}s ({status})")
    return 0 if status == "complete" else 130 if status.startswith("interrupted") else 1


if __name__ == "__main__":
    sys.exit(main())
