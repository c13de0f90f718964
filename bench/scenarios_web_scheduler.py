"""The dashboard's and the scheduler's scenarios of `make bench`: the figures
of bench/web_pages.py and bench/delayed_moves.py (which still run alone),
here against the bench's redis-server, with every process started through
``ctx.procs`` so that the bench reaps it also after an error or Ctrl-C.
(Apart from scenarios.py, which sits at the house limit of ~450 lines.)"""

import os
import statistics
import sys
import time

import delayed_moves
import web_pages
from contenders import free_port
from procs import ROOT, wait_for
from scenarios import attempt


def _spawn(ctx):
    return lambda name, argv, env: ctx.procs.start(name, argv, env=env)


def _stop(ctx):
    return lambda proc: ctx.procs.stop(proc, grace=5)


# -- web_pages -----------------------------------------------------------------

def web(ctx, res, failures, queues, workers, requests):
    """One fill of Redis (``failures`` failure entries, ``queues`` queues,
    ``workers`` workers), one ``resqued web``, ``requests`` GETs of each page
    (3 of each search). Figures: the slowest of the /failed listing pages
    (its head, its middle, its tail), and the slowest page of all, each
    request one run."""
    size = f"{failures:,} failures, {queues:,} queues"
    label = f"resqued web ({size})"
    out = attempt(ctx, res, "web_failed_page", "resqued", label, "ms", 60 + failures / 2000,
                  lambda: _web_once(ctx, failures, queues, workers, requests))
    if out is None:
        return
    listing = {path: times for path, times in out.items() if path.startswith("/failed?") or path == "/failed"}
    slow_list = max(listing, key=lambda path: statistics.median(listing[path]))
    slowest = max(out, key=lambda path: statistics.median(out[path]))
    pages = {path: {"median_ms": round(statistics.median(t), 2), "max_ms": round(max(t), 2)} for path, t in out.items()}
    for n, ms in enumerate(listing[slow_list]):
        extra = {"page": slow_list, "failures": failures, "queues": queues}
        res.add("web_failed_page", "resqued", f"resqued web: GET {slow_list} ({size})", "ms", ms,
                dict(extra, pages=pages) if n == 0 else extra)  # every page's times once, not per request
    for ms in out[slowest]:
        res.add("web_slowest_page", "resqued", f"resqued web: GET {slowest} ({size})", "ms", ms, {"page": slowest})
    for path, p in pages.items():
        print(f"  {path:45} median {p['median_ms']:8.1f} ms, max {p['max_ms']:8.1f} ms", flush=True)


def _web_once(ctx, failures, queues, workers, requests):
    ctx.flush()
    started = time.perf_counter()
    web_pages.fill(ctx.url, failures, queues, workers)
    print(f"  filled: {failures:,} failures, {queues:,} queues, {workers} workers "
          f"in {time.perf_counter() - started:.1f}s", flush=True)
    port = free_port()
    proc = ctx.procs.start("web_pages", [sys.executable, "-m", "resqued", "web", "--listen", f"127.0.0.1:{port}",
                                         "--redis", ctx.url], env={"PYTHONPATH": ROOT})
    try:
        wait_for(lambda: proc.poll() is not None or _answers(port), 30, 0.05, "resqued web")
        if proc.poll() is not None:
            raise RuntimeError(f"resqued web exited {proc.returncode}; see bench/results/logs/web_pages.log")
        return dict(web_pages.measure("127.0.0.1", port, failures, queues, requests))
    finally:
        ctx.procs.stop(proc, grace=5)


def _answers(port) -> bool:
    try:
        web_pages.timed_get("127.0.0.1", port, "/stats")
        return True
    except (OSError, RuntimeError):
        return False


# -- delayed_moves -------------------------------------------------------------

def delayed(ctx, res, burst, seconds, rate, reps):
    """Per rep: ``burst`` delayed jobs made due at once (one MULTI) to a
    running ``python -m resqued.scheduler`` (figure: jobs moved per second),
    then ``rate`` jobs a second falling due for ``seconds`` seconds while
    another process enqueues as fast as it can (figure: p99 lateness)."""
    env = {"PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    spawn, stop = _spawn(ctx), _stop(ctx)
    for rep in range(reps):
        ctx.flush()
        label = f"resqued.scheduler ({burst:,} jobs due at once)"
        out = attempt(ctx, res, "delayed_burst", "resqued", label, "jobs/s", 20 + burst / 5000,
                      lambda: delayed_moves.burst(ctx.url, burst, env, spawn, stop))
        if out is not None:
            res.add("delayed_burst", "resqued", label, "jobs/s", out["moves_per_s"], out)
            print(f"  delayed-burst-{rep + 1}: {out['moves_per_s']:,} moves/s ({out['jobs']:,} jobs, the last "
                  f"moved {out['last_move_after_s']:.2f}s after they fell due)", flush=True)
        ctx.flush()
        label = f"resqued.scheduler ({rate}/s due for {seconds} s, under enqueue load)"
        out = attempt(ctx, res, "delayed_lateness_p99", "resqued", label, "ms", seconds + 40,
                      lambda: delayed_moves.lateness(ctx.url, seconds, rate, env, spawn, stop))
        if out is not None:
            if out["jobs"] < out["expected"]:
                out["note"] = f"only {out['jobs']} of {out['expected']} due jobs were moved"
            res.add("delayed_lateness_p99", "resqued", label, "ms", out["all_ms"]["p99"], out)
            print(f"  delayed-lateness-{rep + 1}: p50 {out['all_ms']['p50']} ms, p99 {out['all_ms']['p99']} ms, "
                  f"max {out['all_ms']['max']} ms ({out['jobs']:,} of {out['expected']:,} jobs)", flush=True)
