"""Turn the runs into figures (median, min–max), ratios, the floor fractions,
the issue's targets, one printed table, latest.json and chart.png."""

import json
import os
import statistics

HIGHER_IS_BETTER = {"jobs/s", "enq/s"}
SCENARIO_ORDER = ("drain1_fork", "drain1_nofork", "drain2", "drain1_io", "enqueue_single", "enqueue_bulk",
                  "latency_p50", "latency_p95", "latency_p99", "master_idle_rss", "master_idle_cpu",
                  "master_replace_worker", "master_reload", "master64_idle_cpu", "memory_check",
                  "master64_status", "drain1_metrics", "drain1_nofork_wait", "scrape64", "scale_master_cpu",
                  "scale_master_rss", "scale_pss_per_worker", "scale_replace_worker", "web_failed_page",
                  "web_slowest_page", "delayed_burst", "delayed_lateness_p99", "sidekiq_drain1", "sidekiq_drain2",
                  "sidekiq_pickup_p50", "floor")
CONTENDER_ORDER = ("resqued", "resqued_hook", "resqued_noop", "resqued_noforker", "resqued_nofork", "resqued_master", "resqued_metrics", "resqued_wait", "rq", "celery", "sidekiq", "fork_lean", "fork_with_imports", "redis_min_commands",
                   "w1", "w8", "w32", "w64")
RATIO_NOTE = ("ratios are resqued ÷ contender for throughput (jobs/s, enq/s) and contender ÷ resqued "
              "for latency, so that in both cases a ratio above 1 means resqued is better; "
              "'<scenario>:resqued_noforker' and 'drain2:resqued_nofork' hold the same ratios for resqued's "
              "other configurations (JOB_FORKER=false / job_forker: false; a master pool with fork: false)")


def summarize(raw: dict) -> dict:
    out = {}
    for scenario in sorted(raw, key=_order(SCENARIO_ORDER)):
        out[scenario] = {}
        for key in sorted(raw[scenario], key=_order(CONTENDER_ORDER)):
            slot = raw[scenario][key]
            runs = slot["runs"]
            entry = {"label": slot["label"], "unit": slot["unit"]}
            if runs:
                entry.update(figure=statistics.median(runs), min=min(runs), max=max(runs), runs=runs)
                extras = [e for e in slot["extras"] if e]
                if extras:
                    entry["per_run"] = extras
                observed = {not e["job_ran_in_worker_process"] for e in extras if "job_ran_in_worker_process" in e}
                if len(observed) == 1:
                    entry["fork_per_job_observed"] = observed.pop()
            else:
                entry.update(figure=None, min=None, max=None, runs=[],
                             na=slot["errors"][0] if slot["errors"] else "not run")
            if slot["errors"]:
                entry["errors"] = slot["errors"]
            notes = list(dict.fromkeys(e["note"] for e in slot["extras"] if e and e.get("note")))
            apis = list(dict.fromkeys(e["api"] for e in slot["extras"] if e and e.get("api")))
            if len(apis) > 1:
                notes.append("the runs used different APIs (resqued changed during the run): " + " / ".join(apis))
            if runs and len(runs) < 3:
                notes.append(f"median of {len(runs)} run(s), not 3")
            if notes:
                entry["note"] = "; ".join(notes)
            out[scenario][key] = entry
    return out


def _order(order):
    return lambda name: (order.index(name) if name in order else len(order), name)


def ratios(scenarios: dict) -> dict:
    out = {}
    for scenario, entries in scenarios.items():
        ours = entries.get("resqued", {}).get("figure")
        peers = {k: v for k, v in entries.items() if not k.startswith("resqued")}
        if scenario == "floor" or scenario.startswith("scale_") or not peers:
            continue
        out[scenario] = {}
        for key, entry in peers.items():
            theirs = entry.get("figure")
            if not ours or not theirs:
                out[scenario][key] = None
            elif entry["unit"] in HIGHER_IS_BETTER:
                out[scenario][key] = ours / theirs
            else:
                out[scenario][key] = theirs / ours
        # resqued's other configurations (job forker, fork: false pool) against the same peers.
        for extra, entry in entries.items():
            if extra.startswith("resqued_") and entry.get("figure"):
                higher = entry["unit"] in HIGHER_IS_BETTER
                out[f"{scenario}:{extra}"] = {
                    k: ((entry["figure"] / v["figure"] if higher else v["figure"] / entry["figure"])
                        if v.get("figure") else None) for k, v in peers.items()}
    return out


def floor_section(scenarios: dict) -> dict:
    floor = scenarios.get("floor", {})
    fig = {k: v.get("figure") for k, v in floor.items()}

    def frac(scenario, key, ours_key="resqued"):
        ours = scenarios.get(scenario, {}).get(ours_key, {}).get("figure")
        return ours / fig[key] if ours and fig.get(key) else None

    return {
        "figures": {k: {x: v.get(x) for x in ("label", "figure", "min", "max", "unit", "runs")}
                    for k, v in floor.items()},
        "resqued_fraction": {
            "drain1_fork_vs_fork_floor_with_imports": frac("drain1_fork", "fork_with_imports"),
            "drain1_fork_vs_lean_fork_floor": frac("drain1_fork", "fork_lean"),
            "drain1_nofork_vs_redis_floor": frac("drain1_nofork", "redis_min_commands"),
        },
    }


def targets(scenarios: dict, ratio: dict, floor: dict) -> list:
    def fig(scenario, key="resqued"):
        return scenarios.get(scenario, {}).get(key, {}).get("figure")

    def r(scenario, key):
        return ratio.get(scenario, {}).get(key)

    best_drain2 = None
    peers = [v.get("figure") for k, v in scenarios.get("drain2", {}).items()
             if not k.startswith("resqued") and v.get("figure")]
    if peers and fig("drain2"):
        best_drain2 = fig("drain2") / max(peers)
    fr = floor["resqued_fraction"]
    on, off = fig("drain1_metrics", "resqued_metrics"), fig("drain1_metrics", "resqued_master")
    metrics_share = on / off if on and off else None
    hooked, noop = fig("drain1_io", "resqued_hook"), fig("drain1_io", "resqued_noop")
    rows = [
        ("drain1_fork ≥ 5× RQ Worker", r("drain1_fork", "rq"), ">=", 5, "×"),
        ("drain1_fork ≥ 90 % of the fork floor with the worker's imports",
         fr["drain1_fork_vs_fork_floor_with_imports"], ">=", 0.9, "fraction"),
        ("drain1_nofork ≥ 3× Celery solo", r("drain1_nofork", "celery"), ">=", 3, "×"),
        ("drain1_nofork ≥ 60 % of the Redis floor", fr["drain1_nofork_vs_redis_floor"], ">=", 0.6, "fraction"),
        ("drain2 ≥ 2× the best peer", best_drain2, ">=", 2, "×"),
        ("single enqueue ≥ 4× RQ", r("enqueue_single", "rq"), ">=", 4, "×"),
        ("bulk enqueue ≥ 10× RQ's bulk API", r("enqueue_bulk", "rq"), ">=", 10, "×"),
        ("latency p50 ≤ half of Celery solo's", r("latency_p50", "celery"), ">=", 2, "× (Celery p50 ÷ resqued p50)"),
        ("latency p99 ≤ 10 ms (forking worker)", fig("latency_p99"), "<=", 10, "ms"),
        ("master idle RSS ≤ 25 MB (8 workers)", fig("master_idle_rss"), "<=", 25, "MB"),
        ("master idle CPU ≤ 0.5 %", fig("master_idle_cpu"), "<=", 0.5, "%"),
        ("killed worker replaced in ≤ 200 ms", fig("master_replace_worker"), "<=", 200, "ms"),
        ("reload applied in ≤ 1 s (resquectl reload wall time)", fig("master_reload"), "<=", 1000, "ms"),
        ("master idle CPU ≤ 0.5 % with 64 workers", fig("master64_idle_cpu"), "<=", 0.5, "%"),
        ("drain1_fork with metrics on ≥ 97 % of metrics off", metrics_share, ">=", 0.97, "fraction"),
        ("drain1_io, client connected by childReady, ≥ 80 % of resqued's no-op rate",
         hooked / noop if hooked and noop else None, ">=", 0.8, "fraction"),
        ("drain1_io, client connected by childReady, ≥ 5× RQ Worker", r("drain1_io:resqued_hook", "rq"), ">=", 5, "×"),
        ("a scrape with 64 workers and 100 queues < 50 ms", fig("scrape64"), "<=", 50, "ms"),
        ("the failed page with 100,000 failures < 200 ms", fig("web_failed_page"), "<=", 200, "ms"),
        ("delayed jobs moved ≥ 20,000/s when 100,000 fall due at once", fig("delayed_burst"), ">=", 20000, "jobs/s"),
        ("p99 lateness of due jobs under load ≤ 100 ms", fig("delayed_lateness_p99"), "<=", 100, "ms"),
    ]
    out = []
    for name, value, op, limit, unit in rows:
        holds = None if value is None else (value >= limit if op == ">=" else value <= limit)
        out.append({"target": name, "measured": value, "limit": limit, "op": op, "unit": unit, "holds": holds})
    return out


# -- text ----------------------------------------------------------------------

def fmt(value, unit=""):
    if value is None:
        return "n/a"
    if unit == "%":
        return f"{value:.3f}"
    if unit in ("jobs/s", "enq/s") or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def table_rows(scenarios, ratio, floor):
    rows = []
    fr = floor["resqued_fraction"]
    floor_notes = {"fork_with_imports": ("drain1_fork", fr["drain1_fork_vs_fork_floor_with_imports"]),
                   "fork_lean": ("drain1_fork", fr["drain1_fork_vs_lean_fork_floor"]),
                   "redis_min_commands": ("drain1_nofork", fr["drain1_nofork_vs_redis_floor"])}
    for scenario, entries in scenarios.items():
        for key, e in entries.items():
            if e.get("figure") is None:
                figure = "n/a"
            else:
                figure = f"{fmt(e['figure'], e['unit'])} ({fmt(e['min'], e['unit'])}–{fmt(e['max'], e['unit'])})"
            if scenario == "floor":
                src, f = floor_notes.get(key, (None, None))
                vs = f"resqued {src} = {f:.0%} of it" if f is not None else "—"
            elif key.startswith("resqued_"):
                vs = ", ".join(f"{v:.2f}× {k}" for k, v in ratio.get(f"{scenario}:{key}", {}).items() if v)
            elif key == "resqued":
                vs = "—"
            else:
                v = ratio.get(scenario, {}).get(key)
                vs = f"{v:.2f}×" if v is not None else "n/a"
            note = e.get("na") or e.get("note") or ""
            if "fork_per_job_observed" in e:
                seen = "forks per job" if e["fork_per_job_observed"] else "no fork per job"
                note = f"{seen}; {note}" if note else seen
            rows.append((scenario, e["label"], figure, e["unit"], vs, note))
    return rows


def render_table(rows, markdown=False) -> str:
    head = ("scenario", "contender", "figure: median (min–max)", "unit", "resqued vs this", "note")
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    widths[-1] = min(widths[-1], 70)
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def render_targets(rows, markdown=False) -> str:
    lines = []
    if markdown:
        lines = ["| target | measured | holds? |", "|---|---|---|"]
    for t in rows:
        measured = "n/a" if t["measured"] is None else (
            f"{t['measured']:.0%}" if t["unit"] == "fraction" else f"{fmt(t['measured'])} {t['unit']}")
        verdict = {True: "holds", False: "MISSED", None: "not measured"}[t["holds"]]
        lines.append(f"| {t['target']} | {measured} | {verdict} |" if markdown
                     else f"  {verdict:13} {t['target']}: {measured}")
    return "\n".join(lines)


# -- chart ---------------------------------------------------------------------

COLORS = {"resqued": "#c0392b", "resqued_noforker": "#e6b0aa", "resqued_nofork": "#f1948a", "rq": "#2e86c1",
          "celery": "#27ae60"}
LEGEND = {"resqued": "resqued", "resqued_noforker": "resqued, no job forker", "resqued_nofork": "resqued, fork: false pool",
          "rq": "rq", "celery": "celery"}


def chart(scenarios: dict, floor: dict, path: str, reps: int = 3) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("Draining no-op jobs", "jobs/s", ("drain1_fork", "drain1_nofork", "drain2"), False),
        ("Enqueueing 10,000 jobs from one process", "jobs enqueued/s (log scale)",
         ("enqueue_single", "enqueue_bulk"), True),
    ]
    fig, axes = plt.subplots(1, 2, figsize=(14, 6.2), gridspec_kw={"width_ratios": [3, 2]})
    floors = floor["figures"]
    for ax, (title, ylabel, names, log) in zip(axes, panels):
        width = 0.21
        for g, scenario in enumerate(names):
            entries = scenarios.get(scenario, {})
            keys = [k for k in ("resqued", "resqued_noforker", "resqued_nofork", "rq", "celery") if k in entries]
            for i, key in enumerate(keys):
                e = entries[key]
                x = g + (i - (len(keys) - 1) / 2) * width
                if e.get("figure") is None:
                    ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=8, rotation=90)
                    continue
                err = [[e["figure"] - e["min"]], [e["max"] - e["figure"]]]
                ax.bar(x, e["figure"], width * 0.92, color=COLORS[key], yerr=err, capsize=3,
                       label=LEGEND[key])
                ax.annotate(fmt(e["figure"], "jobs/s"), (x, e["max"]), ha="center", va="bottom",
                            fontsize=8, xytext=(0, 2), textcoords="offset points")
            if scenario == "drain1_fork":
                for fkey, style, text in (("fork_with_imports", "--", "fork floor, resqued's imports"),
                                          ("fork_lean", ":", "fork floor, lean")):
                    v = floors.get(fkey, {}).get("figure")
                    if v:
                        ax.hlines(v, g - 0.45, g + 0.45, colors="black", linestyles=style, linewidth=1)
                        ax.annotate(f"{text}: {v:,.0f}", (g - 0.45, v), fontsize=7, xytext=(0, 2),
                                    textcoords="offset points")
            if scenario == "drain1_nofork":
                v = floors.get("redis_min_commands", {}).get("figure")
                if v:
                    ax.hlines(v, g - 0.45, g + 0.45, colors="black", linestyles="--", linewidth=1)
                    ax.annotate(f"Redis floor: {v:,.0f}", (g - 0.45, v), fontsize=7, xytext=(0, 2),
                                textcoords="offset points")
        labels = {"drain1_fork": "1 worker,\nfork per job\n(2,000 jobs)", "drain1_nofork": "1 worker,\nno fork\n(2,000 jobs)",
                  "drain2": "2 workers\n(4,000 jobs)", "enqueue_single": "one job\nper call",
                  "enqueue_bulk": "bulk /\npipelined API"}
        ax.set_xticks(range(len(names)), [labels[n] for n in names])
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        if log:
            from matplotlib.ticker import FuncFormatter, NullFormatter
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.grid(axis="y", alpha=0.3)
        handles, lbls = ax.get_legend_handles_labels()
        seen = {}
        for h, lab in zip(handles, lbls):
            seen.setdefault(lab, h)
        order = [lab for lab in LEGEND.values() if lab in seen]
        ax.legend([seen[lab] for lab in order], order, loc="upper left")
    runs = f"median of {reps} runs, whiskers min–max" if reps > 1 else "1 run"
    fig.suptitle(f"resqued vs RQ vs Celery — {runs} (same machine, same run)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_json(path: str, data: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(data, f, indent=1, default=str)
        f.write("\n")
    os.replace(path + ".tmp", path)


def cost_rows(scenarios: dict) -> list:
    """Per-job costs of the drain runs (medians over the runs): Redis
    commands, redis-server CPU, worker CPU, cores busy, worker RSS."""
    import statistics
    rows = []
    for scenario in ("drain1_fork", "drain1_nofork", "drain2"):
        for key in CONTENDER_ORDER:
            e = scenarios.get(scenario, {}).get(key)
            runs = [r for r in (e or {}).get("per_run", []) if r.get("cpu_ms_per_job") is not None]
            if not runs:
                continue
            med = {k: statistics.median(r[k] for r in runs)
                   for k in ("redis_cmds_per_job", "redis_cpu_ms_per_job", "cpu_ms_per_job", "worker_rss_mb")}
            cores = e["figure"] * med["cpu_ms_per_job"] / 1000
            rows.append((scenario, e["label"], f"{med['redis_cmds_per_job']:.1f}", f"{med['redis_cpu_ms_per_job']:.2f}",
                         f"{med['cpu_ms_per_job']:.2f}", f"{cores:.2f}", f"{med['worker_rss_mb']:.1f} MB"))
    return rows


def render_costs(rows) -> str:
    lines = ["| scenario | contender | Redis commands/job | redis-server CPU ms/job | worker CPU ms/job "
             "| cores busy (rate × CPU/job) | worker RSS |", "|---|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    # Print the markdown tables of a results file (for BENCHMARKS.md):
    #   python bench/report.py [bench/results/latest.json]
    import sys
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "results", "latest.json")
    with open(path) as f:
        data = json.load(f)
    print(render_table(table_rows(data["scenarios"], data["ratios"], data["floor"]), markdown=True))
    print()
    print(render_costs(cost_rows(data["scenarios"])))
    print()
    print(render_targets(data["targets"], markdown=True))
