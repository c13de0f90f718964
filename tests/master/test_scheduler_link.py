"""The scheduler the master keeps (master/schedulerlink.py): started with
``scheduler: true`` (env mode: SCHEDULER=1), restarted after a SIGKILL,
replaced or stopped by a reload, stopped with the master. Real masters,
workers, schedulers and Redis."""

import os
import signal

import psutil
import redis

from conftest import log_text, stop, wait_until
from helpers import title, wait_log
from masters import Master
from redis_server import RedisServer

JOBS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scheduler", "timedjobs.py")
LOCK = "resque:resque:resque_scheduler_master_lock"


def schedulers(master_pid) -> list[int]:
    """The master's scheduler processes, by title."""
    try:
        kids = psutil.Process(master_pid).children()
    except psutil.NoSuchProcess:
        return []
    return [k.pid for k in kids if title(k.pid).startswith("resqued-scheduler[")]


def active_scheduler(master_pid, name, other_than=None) -> int:
    """The pid of the master's scheduler once it holds the lock (its title says so)."""
    def active():
        found = [pid for pid in schedulers(master_pid) if pid != other_than
                 and title(pid) == f"resqued-scheduler[{name}]: active"]
        return found[0] if found else None
    return wait_until(active, timeout=20, message="the master's scheduler active")


def gone(pid) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def runs_later(r, resque, tag):
    resque.enqueue_in(0.5, "default", "Stamp", {"tag": tag})
    wait_log(r, f"ran:{tag}:", timeout=15)


def test_the_master_starts_the_scheduler_restarts_it_after_a_kill_and_stops_it(master_factory, r, resque):
    master = master_factory(["queues: [default]\ncount: 1"], jobs=f"[{JOBS}]", scheduler="true")
    first = active_scheduler(master.pid, "pool.yml")
    status = master.status()
    assert status["scheduler"]["pid"] == first and status["scheduler"]["state"] == "running", status
    assert f"scheduler {first} running" in master.ctl("status").stdout
    runs_later(r, resque, "first")

    os.kill(first, signal.SIGKILL)
    # The master's next scheduler takes the lock its dead one held, without waiting for its TTL.
    second = active_scheduler(master.pid, "pool.yml", other_than=first)
    runs_later(r, resque, "second")
    assert log_text(master.proc).count("the scheduler died (signal SIGKILL)") == 1

    assert stop(master.proc) == 0
    assert gone(second) and not schedulers(master.pid)
    assert not r.exists(LOCK)    # it was TERMed, and released the lock as it left
    assert not r.llen("resque:failed")


def test_a_reload_replaces_the_scheduler_when_its_command_changes_and_stops_it_when_disabled(master_factory, r):
    master = master_factory(["queues: [default]\ncount: 1"], jobs=f"[{JOBS}]", scheduler="true")
    first = active_scheduler(master.pid, "pool.yml")
    text = master.config.read_text()
    master.config.write_text(text + "namespace: other\n")
    assert master.ctl("reload").returncode == 0, log_text(master.proc)[-2000:]
    second = active_scheduler(master.pid, "pool.yml", other_than=first)
    wait_until(lambda: gone(first), message="the old scheduler gone")
    assert r.exists("other:other:resque_scheduler_master_lock") and not r.exists(LOCK)

    master.config.write_text(text.replace("scheduler: true", "scheduler: false"))
    assert master.ctl("reload").returncode == 0, log_text(master.proc)[-2000:]
    wait_until(lambda: gone(second) and not schedulers(master.pid), message="the scheduler stopped")
    wait_until(lambda: master.status()["scheduler"]["state"] == "off", message="status: off")
    assert "scheduler" not in master.ctl("status").stdout.splitlines()[1]
    assert "the scheduler died" not in log_text(master.proc)
    assert stop(master.proc) == 0


def test_env_mode_scheduler_runs_a_master_with_a_scheduler(procs, redis_url, r, resque):
    master = procs.resqued(redis_url, extra_env={"APP_INCLUDE": JOBS, "SCHEDULER": "1"})
    scheduler = active_scheduler(master.pid, "env")
    runs_later(r, resque, "envmode")
    assert stop(master, signal.SIGQUIT) == 0
    assert gone(scheduler)


def test_a_master_killed_outright_leaves_no_scheduler_behind(master_factory, r):
    master = master_factory(["queues: [default]\ncount: 1"], jobs=f"[{JOBS}]", scheduler="true")
    scheduler = active_scheduler(master.pid, "pool.yml")
    master.proc.kill()
    master.proc.wait(10)
    # TERMed by Linux as its parent died (PR_SET_PDEATHSIG): it leaves as on a stop, lock released.
    wait_until(lambda: gone(scheduler) and not r.exists(LOCK), message="the orphaned scheduler gone, its lock released")


def test_a_schedule_section_enables_the_scheduler_and_a_reload_that_changes_it_replaces_it(master_factory, r):
    tick = "\n  tick:\n    every: 1s\n    class: Stamp\n    queue: default\n    args: [{tag: %s}]"
    master = master_factory(["queues: [default]\ncount: 1"], jobs=f"[{JOBS}]", schedule=tick % "tick")
    first = active_scheduler(master.pid, "pool.yml")
    assert f"schedule {master.config}: 1 recurring job" in log_text(master.proc)   # given --schedule pool.yml
    wait_log(r, "ran:tick:")
    master.config.write_text(master.config.read_text().replace("{tag: tick}", "{tag: tock}"))
    assert master.ctl("reload").returncode == 0, log_text(master.proc)[-2000:]
    active_scheduler(master.pid, "pool.yml", other_than=first)
    wait_log(r, "ran:tock:")
    assert stop(master.proc) == 0


PASSWORD = "sch3dul3r-pa55"


def test_the_scheduler_gets_its_redis_url_off_its_command_line(procs, tmp_path):
    """A Redis URL with a password: the master's scheduler works with it, and
    its /proc/<pid>/cmdline (what ps shows anyone) does not hold the password."""
    server = RedisServer(str(tmp_path / "acl-redis")).start()
    try:
        admin = redis.Redis(unix_socket_path=server.socket)
        admin.execute_command("ACL", "SETUSER", "resqued", "on", f">{PASSWORD}", "~*", "&*", "+@all")
        admin.execute_command("ACL", "SETUSER", "default", "off")
        admin.close()
        url = f"unix://resqued:{PASSWORD}@{server.socket}"
        master = Master(procs, tmp_path, url, ["queues: [default]\ncount: 1"], jobs=f"[{JOBS}]", scheduler="true")
        # Its title overwrites its command line once it runs: what ps shows
        # before that (the interpreter starting, importing) is looked at here.
        seen = set()

        def command_lines_until_active():
            try:
                kids = [k.pid for k in psutil.Process(master.pid).children()]
            except psutil.NoSuchProcess:
                kids = []
            for pid in kids:
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        seen.add(f.read().replace(b"\0", b" ").decode(errors="replace").strip())
                except OSError:
                    pass
            return any(line == "resqued-scheduler[pool.yml]: active" for line in seen)
        wait_until(command_lines_until_active, timeout=20, interval=0.001, message="the scheduler active")
        before_title = [line for line in seen if "resqued.scheduler" in line]
        assert before_title, seen
        assert not [line for line in seen if PASSWORD in line], seen
        assert stop(master.proc) == 0
    finally:
        server.stop()


def test_the_lock_value_carries_a_token_made_once_per_master(master_factory, r):
    # hostname:pid alone collides between containers sharing a hostname, each master pid 1.
    import re
    import socket
    master = master_factory(["queues: [default]\ncount: 1"], jobs=f"[{JOBS}]", scheduler="true")
    first = active_scheduler(master.pid, "pool.yml")
    value = r.get(LOCK).decode()
    assert re.fullmatch(rf"{re.escape(socket.gethostname())}:{master.pid}:[0-9a-f]{{12}}", value), value
    os.kill(first, signal.SIGKILL)
    active_scheduler(master.pid, "pool.yml", other_than=first)
    assert r.get(LOCK).decode() == value       # the same master's next scheduler: the same value
    assert stop(master.proc) == 0
