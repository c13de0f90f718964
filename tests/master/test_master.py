"""The master, run for real: `resqued -c pool.yml` with real workers, signals,
its control socket and resquectl."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
from datetime import datetime

import psutil
import pytest

from conftest import JOBS_FILE, ROOT, log_text, stop, wait_until
from helpers import failures, log_entries, pid_gone, title, wait_log
from masters import TWO_POOLS, write_config

ISO_UTC = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def test_keeps_counts_titles_pidfiles_and_replaces_killed_workers(master_factory, r, tmp_path):
    m = master_factory(TWO_POOLS)
    pids = m.wait_workers(3)
    wait_until(lambda: r.scard("resque:workers") == 3, message="3 registrations")
    assert title(m.pid) == "resqued-master[pool.yml]: managing 3 workers"
    assert (tmp_path / "var/run/resqued.pid").read_text().strip() == str(m.pid)
    assert oct((tmp_path / "var/run/resqued.sock").stat().st_mode & 0o777) == "0o600"
    worker_pidfiles = sorted(p.name for p in (tmp_path / "var/run/workers").iterdir())
    assert worker_pidfiles == sorted(f"{'default' if 'default' in title(p) else 'mail'}.{p}.pid" for p in pids)

    os.kill(pids[0], signal.SIGKILL)
    wait_until(lambda: len(m.workers()) == 3 and pids[0] not in m.workers(), message="the killed worker replaced")
    # From the master, not by title: the killed worker's job forker, adopted
    # by the master until it notices, has a worker's title for a moment.
    after = [w["pid"] for w in m.status()["workers"]]
    assert len(after) == 3 and set(pids[1:]) <= set(after)
    assert not (tmp_path / f"var/run/workers/default.{pids[0]}.pid").exists()
    assert "died (signal SIGKILL)" in log_text(m.proc)

    result = m.ctl("stop", "--json")
    assert result.returncode == 0, result.stderr
    assert m.proc.wait(10) == 0
    stopped = json.loads(result.stdout)   # the shape of every master command's answer
    assert stopped["ok"] is True and stopped["message"] == f"master {m.pid} stopped"
    assert stopped["master"]["pid"] == m.pid and stopped["master"]["state"] == "stopping"
    assert {w["pid"] for w in stopped["workers"]} == set(after)
    assert all(pid_gone(p) for p in after)
    assert not (tmp_path / "var/run/resqued.pid").exists()
    assert not (tmp_path / "var/run/resqued.sock").exists()
    assert r.scard("resque:workers") <= 1  # only the SIGKILLed one may await its prune


def test_status_lists_master_pools_and_workers(master_factory, r, resque):
    m = master_factory(TWO_POOLS)
    m.wait_workers(3)
    resque.enqueue("mail", "Slow", track_status=True)
    wait_log(r, "started:")
    status = wait_until(lambda: (s := m.status()) and any(w["state"] == "busy" for w in s["workers"]) and s)
    assert status["master"]["pid"] == m.pid and status["master"]["state"] == "running"
    assert [(p["queues"], p["count"], p["alive"]) for p in status["pools"]] == [(["default"], 2, 2), (["mail"], 1, 1)]
    busy = [w for w in status["workers"] if w["state"] == "busy"][0]
    assert busy["job"]["class"] == "Slow" and busy["queues"] == ["mail"] and busy["memory"] > 0
    # One shape for every master command, times as UTC ISO 8601 strings.
    assert status["ok"] is True and status["message"] == f"master {m.pid} running: 3 workers"
    assert re.fullmatch(ISO_UTC, busy["since"]) and all(re.fullmatch(ISO_UTC, w["started"]) for w in status["workers"])
    # Redis's view names the states as the master's does.
    seen = {w["pid"]: w for w in json.loads(m.ctl("workers", "--json").stdout)}
    assert {pid: w["state"] for pid, w in seen.items()} == {w["pid"]: w["state"] for w in status["workers"]}
    since = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (seen[busy["pid"]]["since"], busy["since"])]
    assert abs((since[0] - since[1]).total_seconds()) <= 1   # two clocks read apart: run_at, the report
    # The job it holds, in its in-flight list, with a live worker.
    [held] = json.loads(m.ctl("inflight", "--json").stdout)
    assert (held["class"], held["queue"], held["alive"]) == ("Slow", "mail", True)
    assert held["id"] == busy["job"]["id"] and held["worker"].split(":")[1] == str(busy["pid"])
    human = m.ctl("status")
    assert human.returncode == 0 and "Slow" in human.stdout and "mail" in human.stdout
    r.rpush("test:release", 1)
    wait_until(lambda: m.status()["workers"][0]["jobs_done"] + m.status()["workers"][1]["jobs_done"]
               + m.status()["workers"][2]["jobs_done"] == 1, message="jobs_done counted")


def test_reload_applies_changes_and_refuses_bad_config(master_factory, r):
    m = master_factory(TWO_POOLS)
    before = m.wait_workers(3)
    mail_pid = [p for p in before if "mail" in title(p)][0]
    # Bad reload: the old pools stay as they are.
    m.config.write_text(m.config.read_text().replace("count: 2", "count: -1"))
    bad = m.ctl("reload")
    assert bad.returncode == 78 and "count" in bad.stderr and bad.stderr.count("\n") == 1
    assert m.workers() == before
    # Good reload: only the changed pool is touched, and the command returns applied.
    write_config(m.config, m.redis_url, ["queues: [default]\ncount: 1", "queues: [mail]\ncount: 1",
                                         "queues: [high]\ncount: 1"])
    good = m.ctl("reload")
    assert good.returncode == 0, good.stderr
    assert "default=1" in good.stdout and "high=1" in good.stdout
    now = m.wait_workers(3)
    assert mail_pid in now
    assert any("high" in title(p) for p in now)


def test_hup_reloads_and_changed_settings_replace_workers_gracefully(master_factory, r, resque):
    m = master_factory(["queues: [default]\ncount: 1"])
    [old] = m.wait_workers(1)
    resque.enqueue("default", "Slow", track_status=True)
    wait_log(r, "started:")
    write_config(m.config, m.redis_url, ["queues: [default]\ncount: 1\nmax_jobs: 50"])
    m.proc.send_signal(signal.SIGHUP)
    # The replacement starts at once while the old worker finishes its job.
    wait_until(lambda: len(m.workers()) == 2, message="replacement beside the finishing worker")
    assert old in m.workers()
    r.rpush("test:release", 1)
    wait_until(lambda: old not in m.workers(), message="the old worker to finish and leave")
    assert any(e.startswith("finished:") for e in log_entries(r))
    assert r.llen("resque:failed") == 0  # no job was killed by the reload


def test_pause_and_resume_through_resquectl(master_factory, r, resque):
    m = master_factory(TWO_POOLS)
    pids = m.wait_workers(3)
    paused = m.ctl("pause", "--json")
    assert paused.returncode == 0, paused.stderr
    answer = json.loads(paused.stdout)
    assert answer["ok"] is True and answer["message"] == "3 workers paused"
    assert answer["master"]["state"] == "paused"
    assert [(w["state"], w["paused"]) for w in answer["workers"]] == [("paused", True)] * 3
    # Redis's view says paused too, not idle.
    wait_until(lambda: [w["state"] for w in json.loads(m.ctl("workers", "--json").stdout)] == ["paused"] * 3,
               message="workers shown paused")
    assert all(title(p).endswith(": Paused") for p in pids)
    assert title(m.pid) == "resqued-master[pool.yml]: paused"
    resque.enqueue_call("default", "add", 1, 1)
    # A worker started while paused starts paused.
    os.kill(pids[0], signal.SIGKILL)
    wait_until(lambda: len(m.workers()) == 3 and pids[0] not in m.workers())
    wait_until(lambda: all(title(p).endswith(": Paused") for p in m.workers()), message="new worker paused")
    assert r.llen("resque:queue:default") == 1
    resumed = m.ctl("resume")
    assert resumed.returncode == 0 and resumed.stdout == "3 workers resumed\n"
    wait_log(r, "add:2")
    wait_until(lambda: {w["state"] for w in json.loads(m.ctl("workers", "--json").stdout)} == {"idle"},
               message="workers shown idle again")


def requeued_by_the_stop(r, job_id, queue="default"):
    """The job a stop killed is back at the head of its queue, counted as
    lost once, and nothing is in the failed list."""
    head = json.loads(r.lindex(f"resque:queue:{queue}", 0))
    return head["id"] == job_id and head["resqued_lost"] == 1 and failures(r) == []


def test_stop_now_kills_running_jobs_and_requeues_them(master_factory, r, resque):
    m = master_factory(["queues: [default]\ncount: 1"])
    m.wait_workers(1)
    job_id = resque.enqueue("default", "Slow", {"seconds": 60}, track_status=True)
    resque.enqueue("default", "Slow", {"seconds": 60})     # waits behind it
    child = int(wait_log(r, "started:")[0].split(":")[1])
    result = m.ctl("stop", "--now")
    assert result.returncode == 0, result.stderr
    assert pid_gone(child)
    assert requeued_by_the_stop(r, job_id) and r.llen("resque:queue:default") == 2
    assert resque.status(job_id)["code"] == 1      # waiting again
    assert "killed after" in log_text(m.proc) and "by the stop: back to the head of its queue" in log_text(m.proc)


def test_term_waits_for_jobs_up_to_shutdown_timeout(master_factory, r, resque):
    m = master_factory(["queues: [default]\ncount: 1"], shutdown_timeout=1)
    m.wait_workers(1)
    job_id = resque.enqueue("default", "Slow", {"seconds": 60})
    wait_log(r, "started:")
    assert stop(m.proc, signal.SIGTERM, timeout=20) == 0
    assert "shutdown_timeout of 1s passed" in log_text(m.proc)
    assert requeued_by_the_stop(r, job_id)


def test_quit_lets_running_jobs_finish(master_factory, r, resque):
    m = master_factory(["queues: [default]\ncount: 1"])
    m.wait_workers(1)
    resque.enqueue("default", "Slow")
    wait_log(r, "started:")
    m.proc.send_signal(signal.SIGQUIT)
    wait_until(lambda: title(m.pid).endswith(": stopping"), message="stopping title")
    r.rpush("test:release", 1)
    assert m.proc.wait(20) == 0
    assert any(e.startswith("finished:") for e in log_entries(r)) and r.llen("resque:failed") == 0


def test_recycles_after_max_jobs(master_factory, r, resque):
    m = master_factory(["queues: [default]\ncount: 1\nmax_jobs: 3\nmax_jobs_jitter: 0"])
    [first] = m.wait_workers(1)
    for n in range(4):
        resque.enqueue_call("default", "add", n, 0)
    wait_log(r, "add:", 4)
    wait_until(lambda: (ws := m.workers()) and ws[0] != first, message="recycled worker")
    assert "recycled after max_jobs" in log_text(m.proc)
    assert m.status()["pools"][0]["recycles"] >= 1


def test_kills_a_job_over_the_hard_limit_and_keeps_its_worker(master_factory, r, resque):
    m = master_factory(["queues: [default]\ncount: 1\nmax_memory: 60MB\nmax_memory_hard: 400MB"])
    [worker] = m.wait_workers(1)
    resque.enqueue("default", "Hog", {"mb": 500, "seconds": 60})
    wait_until(lambda: r.llen("resque:failed") == 1, timeout=30, message="job killed over the hard limit")
    [entry] = failures(r)
    assert re.search(r"the job uses [\d.]+MB, over the hard memory limit of 400\.0MB", entry["error"]), entry
    # Its memory died with its child: the worker, under max_memory, goes on.
    resque.enqueue_call("default", "add", 1, 2)
    wait_log(r, "add:")
    assert m.workers() == [worker]
    assert "recycled over max_memory" not in log_text(m.proc)


def test_second_master_refused_and_stale_pidfile_replaced(master_factory, procs, tmp_path, redis_url):
    m = master_factory(TWO_POOLS)
    m.wait_workers(3)
    again = procs.spawn([sys.executable, "-m", "resqued", "-c", str(m.config)], name="again")
    assert again.wait(15) == 1
    assert f"names process {m.pid}, which is still running" in log_text(again)
    m.proc.kill()  # leaves a stale pidfile and socket behind
    m.proc.wait(10)
    third = procs.spawn([sys.executable, "-m", "resqued", "-c", str(m.config)], name="third")
    wait_until(lambda: (tmp_path / "var/run/resqued.pid").read_text().strip() == str(third.pid),
               message="stale pidfile replaced")
    stop(third)


def test_workers_stop_when_master_is_killed(master_factory, r, resque):
    m = master_factory(["queues: [default]\ncount: 2"])
    pids = m.wait_workers(2)
    m.proc.kill()
    m.proc.wait(10)
    wait_until(lambda: all(pid_gone(p) for p in pids), message="orphaned workers to stop")
    assert r.scard("resque:workers") == 0


def test_orphaned_job_is_bounded_by_shutdown_timeout(master_factory, r, resque):
    # What a supervisor's final SIGKILL of the master leaves: a worker and its job.
    m = master_factory(["queues: [default]\ncount: 1"], shutdown_timeout=1)
    [worker] = m.wait_workers(1)
    job_id = resque.enqueue("default", "Slow", {"seconds": 60})
    child = int(wait_log(r, "started:")[0].split(":")[1])
    m.proc.kill()
    m.proc.wait(10)
    wait_until(lambda: pid_gone(worker) and pid_gone(child), timeout=20, message="orphaned worker and job to end")
    # Killed because its worker is going away, not for anything it did: requeued.
    assert requeued_by_the_stop(r, job_id)
    assert "the master died and the job was still running 1s later" in log_text(m.proc)
    assert r.scard("resque:workers") == 0


def test_ttin_ttou_usr1(master_factory, r, resque):
    m = master_factory(["queues: [default]\ncount: 1"])
    m.wait_workers(1)
    m.proc.send_signal(signal.SIGTTIN)
    m.wait_workers(2, "one more worker after TTIN")
    m.proc.send_signal(signal.SIGTTOU)
    m.wait_workers(1, "one fewer after TTOU")
    resque.enqueue("default", "Slow", {"seconds": 60})
    wait_log(r, "started:")
    m.proc.send_signal(signal.SIGUSR1)
    wait_until(lambda: r.llen("resque:failed") == 1, message="USR1 killed the running job")
    assert len(m.workers()) == 1


def test_check_and_bad_config(procs, tmp_path, redis_url):
    good = write_config(tmp_path / "good.yml", "redis://:secret@127.0.0.1:1/0", TWO_POOLS)
    out = subprocess.run([sys.executable, "-m", "resqued", "--check", "-c", str(good)], capture_output=True,
                         text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert out.returncode == 0 and "default" in out.stdout and "mail" in out.stdout
    assert "secret" not in out.stdout + out.stderr
    # Redis down is a warning (the master would wait for it), not a failure.
    assert out.stderr.startswith("resqued: warning: cannot reach Redis at redis://:***@127.0.0.1:1/0")
    bad = tmp_path / "bad.yml"
    bad.write_text(good.read_text().replace("count: 2", "cuont: 2"))
    out = subprocess.run([sys.executable, "-m", "resqued", "-c", str(bad)], capture_output=True,
                         text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert out.returncode == 78 and "cuont" in out.stderr and out.stderr.count("\n") == 1
    broken_jobs = tmp_path / "brokenjobs.py"
    broken_jobs.write_text("raise ImportError('no such dependency')\n")
    cfg = tmp_path / "jobs.yml"
    cfg.write_text(good.read_text().replace(JOBS_FILE, str(broken_jobs)))
    out = subprocess.run([sys.executable, "-m", "resqued", "-c", str(cfg)], capture_output=True,
                         text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert out.returncode == 78 and "no such dependency" in out.stderr


def test_resquectl_without_master(tmp_path):
    cfg = write_config(tmp_path / "pool.yml", "redis://127.0.0.1:1/0", TWO_POOLS)
    for command in ("status", "pause", "resume", "reload", "stop"):
        out = subprocess.run([sys.executable, "-m", "resqued.ctl", "-c", str(cfg), command],
                             capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
        assert out.returncode == 1 and "no master is running" in out.stderr, (command, out.stderr)
    # With --json, the error is a JSON object on stdout too.
    out = subprocess.run([sys.executable, "-m", "resqued.ctl", "-c", str(cfg), "stop", "--json"],
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    error = json.loads(out.stdout)
    assert out.returncode == 1 and error == {"ok": False, "error": error["error"], "exit": 1}
    assert error["error"].startswith("no master is running (nothing answers on ")


def test_systemd_notify_messages(master_factory, tmp_path, r):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(20)
    try:
        m = master_factory(["queues: [default]\ncount: 2"], env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})

        def until(predicate):
            seen = []
            while True:
                message = sock.recv(4096).decode()
                seen.append(message)
                if predicate(message):
                    return seen

        seen = until(lambda msg: "READY=1" in msg)
        assert len(m.workers()) == 2  # ready means the pools are up
        assert any("STATUS=" in s for s in seen)
        until(lambda msg: msg == "WATCHDOG=1")
        m.proc.send_signal(signal.SIGHUP)
        seen = until(lambda msg: "READY=1" in msg)
        assert any("RELOADING=1" in s and "MONOTONIC_USEC=" in s for s in seen)
        m.proc.send_signal(signal.SIGTERM)
        until(lambda msg: "STOPPING=1" in msg)
        assert m.proc.wait(15) == 0
        # Workers never inherit the notify socket.
    finally:
        sock.close()


def test_daemonize(procs, tmp_path, redis_url, r):
    cfg = write_config(tmp_path / "pool.yml", redis_url, ["queues: [default]\ncount: 1"])
    launcher = subprocess.run([sys.executable, "-m", "resqued", "-c", str(cfg), "--daemonize"],
                              capture_output=True, text=True, cwd=ROOT, timeout=30,
                              env={**os.environ, "PYTHONPATH": ROOT, "REDIS_BACKEND": redis_url})
    assert launcher.returncode == 0, launcher.stderr
    pidfile = tmp_path / "var/run/resqued.pid"
    pid = int(wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), message="daemon pidfile"))
    try:
        # It said where it went: the pid the pidfile holds, and the log.
        assert launcher.stdout == f"resqued: daemon pid {pid}, log {tmp_path / 'var/run/resqued.log'}\n"
        # Detached: a session of its own, no controlling terminal, stdio closed.
        assert os.getsid(pid) != os.getsid(0)
        assert psutil.Process(pid).terminal() is None
        wait_until(lambda: r.scard("resque:workers") == 1, message="daemon's worker")
        assert (tmp_path / "var/run/resqued.log").exists()
        again = subprocess.run([sys.executable, "-m", "resqued", "-c", str(cfg), "--daemonize"],
                               capture_output=True, text=True, cwd=ROOT, timeout=30,
                               env={**os.environ, "PYTHONPATH": ROOT})
        assert again.returncode == 1 and "still running" in again.stderr
    finally:
        out = subprocess.run([sys.executable, "-m", "resqued.ctl", "-c", str(cfg), "stop"], capture_output=True,
                             text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, timeout=60)
        if out.returncode != 0 and psutil.pid_exists(pid):
            os.kill(pid, signal.SIGKILL)
    assert out.returncode == 0, out.stderr


def test_resquectl_reaches_the_master_when_pool_yml_no_longer_validates(master_factory, r, tmp_path):
    m = master_factory(["queues: [default]\ncount: 1"])
    m.wait_workers(1)
    m.config.write_text(m.config.read_text() + "max_mem: 1GB\n")      # a typo, after the start
    result = m.ctl("status", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["master"]["pid"] == m.pid
    [warning] = result.stderr.splitlines()
    assert "max_mem: unknown key" in warning and ": using the running master at " in warning
    assert m.ctl("reload").returncode == 78       # the master refuses it, and says why
    result = m.ctl("stop")
    assert result.returncode == 0, result.stderr
    assert m.proc.wait(15) == 0
    # No master there, and the file does not validate: the error says how else to reach one.
    result = m.ctl("status")
    assert result.returncode == 78 and "give --pidfile PATH or --socket PATH" in result.stderr


@pytest.mark.parametrize("key, value", [("pid_dir", "afile/workers"), ("pidfile", "afile/resqued.pid")])
def test_check_refuses_a_path_the_master_could_not_write(tmp_path, redis_url, key, value):
    (tmp_path / "afile").write_text("not a directory\n")
    cfg = write_config(tmp_path / "pool.yml", redis_url, TWO_POOLS, **{key: value})
    line = cfg.read_text().splitlines().index(f"{key}: {value}") + 1
    for args in (["--check"], []):
        out = subprocess.run([sys.executable, "-m", "resqued", *args, "-c", str(cfg)], capture_output=True,
                             text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, timeout=30)
        assert out.returncode == 78, out.stderr
        problem = (f"{tmp_path / 'afile'} exists and is not a directory" if key == "pidfile" else
                   f"{tmp_path / 'afile'} is not a directory, so {tmp_path / value} cannot be created")
        assert out.stderr == f"resqued: {cfg}:{line}: {key}: {problem}\n"


def test_check_warns_of_a_max_memory_below_an_idle_worker(tmp_path, redis_url):
    cfg = write_config(tmp_path / "pool.yml", redis_url, ["queues: [default]\ncount: 1\nmax_memory: 5MB",
                                                          "queues: [mail]\ncount: 1\nmax_memory: 500MB"])
    out = subprocess.run([sys.executable, "-m", "resqued", "--check", "-c", str(cfg)], capture_output=True,
                         text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, timeout=60)
    assert out.returncode == 0, out.stderr
    [warning] = out.stderr.splitlines()       # Redis answers; only the 5MB pool is warned of
    assert warning.startswith("resqued: warning: pools[0].max_memory (5MB) is below what an idle worker")
    assert "recycled after every job" in warning
