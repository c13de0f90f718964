"""php-resque's environment mode beyond one worker: COUNT, PIDFILE, flags,
and living through a Redis outage."""

import json
import os
import signal
import subprocess
import sys

import psutil
import pytest

from conftest import log_text, stop, wait_until
from helpers import failures, log_entries, pid_gone, title, wait_log, worker_of
from redis_server import RedisServer
from resqued import Resque


def worker_pids(proc):
    return sorted(c.pid for c in psutil.Process(proc.pid).children()
                  if "Waiting for" in title(c.pid) or "Forked" in title(c.pid))


def test_count_keeps_workers_alive_and_stops_them_all(procs, redis_url, r, resque):
    master = procs.resqued(redis_url, extra_env={"COUNT": "2"})
    pids = wait_until(lambda: len(worker_pids(master)) == 2 and worker_pids(master), message="2 workers")
    wait_until(lambda: r.scard("resque:workers") == 2, message="2 registrations")
    assert title(master.pid) == "resqued-master[env]: managing 2 workers"
    for n in range(4):
        resque.enqueue_call("default", "add", n, 10)
    wait_log(r, "add:", 4)

    os.kill(pids[0], signal.SIGKILL)
    replaced = wait_until(lambda: (len(worker_pids(master)) == 2 and pids[0] not in worker_pids(master)
                                   and worker_pids(master)), message="a replacement worker")
    assert pids[1] in replaced
    assert stop(master, signal.SIGQUIT) == 0
    for pid in replaced:
        assert pid_gone(pid)
    # The killed worker's registration is pruned by its replacement or left
    # for a later prune; the live ones unregistered themselves.
    assert not any(str(pid).encode() in w for w in r.smembers("resque:workers") for pid in replaced)


def test_workers_stop_when_their_master_dies(procs, redis_url, r, resque):
    master = procs.resqued(redis_url, extra_env={"COUNT": "2"})
    pids = wait_until(lambda: len(worker_pids(master)) == 2 and worker_pids(master))
    resque.enqueue("default", "Slow", {"seconds": 30})
    wait_log(r, "started:")
    master.kill()
    master.wait(10)
    # The idle worker leaves at once; the busy one after its job.
    idle = [p for p in pids if "Forked" not in title(p)]
    wait_until(lambda: all(pid_gone(p) for p in idle), message="idle worker to stop")
    r.rpush("test:release", 1)
    wait_until(lambda: all(pid_gone(p) for p in pids), message="busy worker to finish and stop")
    assert any(e.startswith("finished:") for e in log_entries(r))
    assert r.scard("resque:workers") == 0


def test_term_stops_count_workers_killing_running_jobs(procs, redis_url, r, resque):
    master = procs.resqued(redis_url, extra_env={"COUNT": "2"})
    wait_until(lambda: len(worker_pids(master)) == 2)
    job_id = resque.enqueue("default", "Slow", {"seconds": 60})
    wait_log(r, "started:")
    assert stop(master, signal.SIGTERM) == 0
    assert failures(r) == []   # a job a stop kills is requeued, not failed
    assert json.loads(r.lindex("resque:queue:default", 0))["id"] == job_id


def test_pidfile_written_refused_when_live_and_removed(procs, redis_url, r, tmp_path):
    pidfile = tmp_path / "run" / "resqued.pid"
    first = procs.resqued(redis_url, extra_env={"PIDFILE": str(pidfile)})
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip() == str(first.pid))
    assert oct(pidfile.stat().st_mode & 0o777) == "0o600"
    second = procs.resqued(redis_url, extra_env={"PIDFILE": str(pidfile)})
    assert second.wait(15) == 1
    assert f"names process {first.pid}, which is still running" in log_text(second)
    assert stop(first) == 0
    assert not pidfile.exists()


def test_stale_pidfile_is_replaced(procs, redis_url, r, tmp_path):
    pidfile = tmp_path / "resqued.pid"
    dead = psutil.Popen(["true"])
    dead.wait()
    pidfile.write_text(f"{dead.pid}\n")
    proc = procs.resqued(redis_url, extra_env={"PIDFILE": str(pidfile)})
    wait_until(lambda: pidfile.read_text().strip() == str(proc.pid), message="pidfile replaced")
    stop(proc)


def test_flags_beat_environment(procs, redis_url, r):
    proc = procs.resqued(redis_url, queue="ignored", extra_env={"PREFIX": "nope"},
                         args=("--queue", "flagged", "--prefix", "myapp"))
    wait_until(lambda: r.scard("myapp:workers") == 1, message="registration under myapp:")
    assert r.smembers("myapp:workers").pop().decode().endswith(":flagged")
    Resque(redis_url, "myapp").enqueue_call("flagged", "add", 7, 7)
    wait_log(r, "add:14")
    stop(proc)


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(str(tmp_path / "own-redis"), persistent=True).start()
    yield server
    server.stop()


def test_redis_restart_is_survived(procs, own_redis, tmp_path):
    client = Resque(own_redis.url)
    proc = procs.resqued(own_redis.url)
    wait_until(lambda: client.redis.scard("resque:workers") == 1)
    client.enqueue_call("default", "add", 1, 1)
    wait_until(lambda: client.redis.llen("test:log") == 1)
    client.redis.close()

    own_redis.stop()
    wait_until(lambda: "Redis unavailable" in log_text(proc), message="the outage logged")
    own_redis.start()
    wait_until(lambda: "Redis is back" in log_text(proc), message="the recovery logged")
    client = Resque(own_redis.url)
    client.enqueue_call("default", "add", 2, 2)
    wait_until(lambda: client.redis.lrange("test:log", 0, -1)[-1:] == [b"add:4"], message="work resumed")
    assert client.redis.scard("resque:workers") == 1  # registered again
    assert log_text(proc).count("Redis unavailable") == 1  # logged once, not per retry
    assert proc.poll() is None
    stop(proc)


def test_count_requeues_a_killed_workers_job_at_once(procs, redis_url, r, resque):
    # As with -c: the job goes back to the head of its queue when the master
    # reaps its dead worker, not a prune interval later.
    master = procs.resqued(redis_url, extra_env={"COUNT": "2"})
    wait_until(lambda: len(worker_pids(master)) == 2, message="2 workers")
    resque.enqueue("default", "Slow", {"seconds": 60})
    child = int(wait_log(r, "started:")[0].split(":")[1])
    busy = worker_of(child)
    os.kill(busy, signal.SIGKILL)
    wait_until(lambda: pid_gone(child), message="the job child to die with its worker")
    wait_log(r, "started:", 2, timeout=10)
    assert "requeued at the head of its queue" in log_text(master)
    r.rpush("test:release", 1)
    wait_log(r, "finished:")
    assert failures(r) == []
    assert stop(master, signal.SIGQUIT) == 0


def resquectl_status(pidfile):
    result = subprocess.run([sys.executable, "-m", "resqued.ctl", "--pidfile", str(pidfile), "status", "--json"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_count_runs_on_the_masters_arbiter_with_status_and_recycling(procs, redis_url, r, resque, tmp_path):
    """COUNT > 1 is the master's supervision: resquectl reaches it through the
    control socket beside PIDFILE, and MAX_JOBS recycles a worker."""
    pidfile = tmp_path / "run" / "resqued.pid"
    master = procs.resqued(redis_url, extra_env={"COUNT": "2", "PIDFILE": str(pidfile), "MAX_JOBS": "3"})
    wait_until(lambda: len(worker_pids(master)) == 2, message="2 workers")
    status = wait_until(lambda: (s := resquectl_status(pidfile)) and len(s["workers"]) == 2 and s)
    assert status["master"]["pid"] == master.pid and status["master"]["config"] == "env"
    assert [(p["queues"], p["count"], p["alive"]) for p in status["pools"]] == [(["default"], 2, 2)]
    assert oct((tmp_path / "run" / "resqued.sock").stat().st_mode & 0o777) == "0o600"
    before = set(worker_pids(master))
    for n in range(8):
        resque.enqueue_call("default", "add", n, 1)
    wait_log(r, "add:", 8)
    # 8 jobs on 2 workers of 3 jobs each: at least one was recycled, and replaced.
    wait_until(lambda: len(worker_pids(master)) == 2 and set(worker_pids(master)) - before,
               message="a recycled worker's replacement")
    assert "recycled after max_jobs; replacing it" in log_text(master)
    assert stop(master, signal.SIGQUIT) == 0
    assert not pidfile.exists() and not (tmp_path / "run" / "resqued.sock").exists()


def test_max_memory_in_env_mode_is_checked(procs, redis_url):
    proc = procs.resqued(redis_url, extra_env={"COUNT": "2", "MAX_MEMORY": "lots"})
    assert proc.wait(15) == 78
    # The very message a bad max_memory: in pool.yml gets (one check for both).
    assert log_text(proc) == ("resqued: MAX_MEMORY: invalid size 'lots': expected a size such as 300MB, "
                              "1.5GiB, 512M or a number of bytes\n")


def resquectl(*args):
    return subprocess.run([sys.executable, "-m", "resqued.ctl", *args], capture_output=True, text=True, timeout=60)


def test_one_worker_with_pidfile_answers_resquectl_and_php_resques_signals(procs, redis_url, r, resque, tmp_path):
    """COUNT=1 with PIDFILE (php-resque's usual way) runs under the master's
    arbiter: resquectl --pidfile reaches it, and the signals php-resque's
    worker takes, sent to the pid in PIDFILE, do what they do there."""
    pidfile = tmp_path / "one.pid"
    proc = procs.resqued(redis_url, extra_env={"PIDFILE": str(pidfile)})
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip() == str(proc.pid), message="pidfile")
    status = wait_until(lambda: (s := resquectl_status(pidfile)) and len(s["workers"]) == 1
                        and s["workers"][0]["state"] == "idle" and s, message="one idle worker")
    assert status["master"]["pid"] == proc.pid and status["master"]["config"] == "env"
    resque.enqueue_call("default", "add", 2, 3)
    wait_log(r, "add:5")

    def worker_state():
        return resquectl_status(pidfile)["workers"][0]["state"]
    paused = resquectl("--pidfile", str(pidfile), "pause")
    assert paused.returncode == 0 and paused.stdout == "1 worker paused\n", paused.stderr
    assert worker_state() == "paused"
    assert resquectl("--pidfile", str(pidfile), "resume").returncode == 0
    assert worker_state() == "idle"
    os.kill(int(pidfile.read_text()), signal.SIGUSR2)       # php-resque: pause
    wait_until(lambda: worker_state() == "paused", message="paused by USR2")
    os.kill(int(pidfile.read_text()), signal.SIGCONT)       # php-resque: resume
    wait_until(lambda: worker_state() == "idle", message="resumed by CONT")

    stopped = resquectl("--pidfile", str(pidfile), "stop")
    assert stopped.returncode == 0 and stopped.stdout == f"master {proc.pid} stopped\n", stopped.stderr
    assert proc.wait(15) == 0
    assert not pidfile.exists()


def test_reload_is_refused_in_env_mode(procs, redis_url, tmp_path):
    """Nothing to re-read: reload says so (exit 2) instead of "reloaded"."""
    pidfile = tmp_path / "env.pid"
    proc = procs.resqued(redis_url, extra_env={"PIDFILE": str(pidfile), "COUNT": "2"})
    wait_until(lambda: len(worker_pids(proc)) == 2, message="2 workers")
    reload = resquectl("--pidfile", str(pidfile), "reload")
    assert reload.returncode == 2 and reload.stdout == ""
    assert reload.stderr == ("resquectl: reload failed: environment mode has no pool.yml to re-read: its settings "
                             "are the variables it started with (start resqued again to change them; restart "
                             "loads new code)\n")
    assert stop(proc) == 0


def test_a_pidfile_of_a_process_that_is_no_master_is_said_so(tmp_path):
    """A live process without a control socket beside its pidfile (php-resque's
    worker, say) is not reported as "no master is running"."""
    other = psutil.Popen(["sleep", "60"])
    try:
        pidfile = tmp_path / "php.pid"
        pidfile.write_text(f"{other.pid}\n")
        result = resquectl("--pidfile", str(pidfile), "status")
        assert result.returncode == 1 and result.stdout == ""
        assert result.stderr == (f"resquectl: process {other.pid} of {pidfile} is running, but has no control "
                                 f"socket beside it ({tmp_path / 'php.sock'}): it is not a resqued master; signal "
                                 "it instead (QUIT: stop after the job, USR2: pause, CONT: resume)\n")
    finally:
        other.kill()
        other.wait()
