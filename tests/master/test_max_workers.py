"""The bound on workers: a count above it is refused (pool.yml, COUNT, a
reload), TTIN stops at it, --check warns when a config comes close. Derived
from the master's descriptor limit and memory unless max_workers says."""

import os
import resource
import signal
import subprocess
import sys

from conftest import ROOT, log_text, wait_until
from masters import TWO_POOLS, write_config


def resqued(*args, env=None, nofile=None, timeout=60):
    def limit_descriptors():
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    return subprocess.run([sys.executable, "-m", "resqued", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT, **(env or {})}, timeout=timeout,
                          preexec_fn=limit_descriptors if nofile else None)


def test_a_count_above_the_derived_bound_is_refused(tmp_path, redis_url):
    cfg = write_config(tmp_path / "pool.yml", redis_url, ["queues: [default]\ncount: 100000"])
    for args in (["--check"], []):     # --check, and a master that would start (it does not)
        out = resqued(*args, "-c", str(cfg))
        assert out.returncode == 78, out.stderr
        assert out.stderr.count("\n") == 1 and "pools: 100000 workers in all is more than" in out.stderr
        assert "max_workers, derived from" in out.stderr and "set max_workers to change the bound" in out.stderr
    # Under a low descriptor limit (LimitNOFILE=300), that limit is the bound:
    # one descriptor a worker, 128 kept for the master's own.
    cfg = write_config(tmp_path / "pool.yml", redis_url, ["queues: [default]\ncount: 200"])
    out = resqued("--check", "-c", str(cfg), nofile=300)
    assert out.returncode == 78
    assert "200 workers in all is more than 172 (max_workers, derived from the descriptor limit of 300" in out.stderr


def test_max_workers_raises_or_lowers_the_bound_and_check_warns_near_it(tmp_path, redis_url):
    cfg = write_config(tmp_path / "pool.yml", redis_url, ["queues: [default]\ncount: 210"], max_workers=250)
    out = resqued("--check", "-c", str(cfg), nofile=300)
    assert out.returncode == 0, out.stderr
    # 210 of 250 is close; 250 is more than 300 descriptors carry.
    assert "warning: 210 workers in all is close to the most allowed, 250 (max_workers)" in out.stderr
    assert "max_workers 250 is more than the descriptor limit of 300 (ulimit -n) allows (172 workers)" in out.stderr
    cfg = write_config(tmp_path / "pool.yml", redis_url, TWO_POOLS, max_workers=2)
    out = resqued("--check", "-c", str(cfg))
    assert out.returncode == 78 and "pools: 3 workers in all is more than 2 (max_workers)" in out.stderr


def test_env_count_above_the_bound_is_refused(procs, redis_url):
    proc = procs.resqued(redis_url, extra_env={"COUNT": "3", "RESQUED_MAX_WORKERS": "2"})
    wait_until(lambda: proc.poll() is not None, timeout=20, message="resqued to refuse COUNT")
    assert proc.returncode == 78
    assert log_text(proc).strip() == ("resqued: COUNT: 3 workers in all is more than 2 (max_workers); "
                                      "set RESQUED_MAX_WORKERS to change the bound")


def test_ttin_stops_at_the_bound_and_a_reload_above_it_is_refused(master_factory):
    m = master_factory(TWO_POOLS, max_workers=4)
    m.wait_workers(3)
    m.proc.send_signal(signal.SIGTTIN)      # two pools: 5 would pass 4
    wait_until(lambda: "TTIN ignored" in log_text(m.proc), message="TTIN to be refused")
    assert "TTIN ignored: one more worker in every pool would pass 4 (max_workers)" in log_text(m.proc)
    assert [p["count"] for p in m.status()["pools"]] == [2, 1]
    m.proc.send_signal(signal.SIGTTOU)      # 1 + 0, then TTIN: 2 + 1 again
    m.wait_workers(1)
    m.proc.send_signal(signal.SIGTTIN)
    m.wait_workers(3)
    m.config.write_text(m.config.read_text().replace("count: 2", "count: 4"))
    out = m.ctl("reload")
    assert out.returncode == 78 and "pools: 5 workers in all is more than 4 (max_workers)" in out.stderr
    assert len(m.wait_workers(3)) == 3
