"""Recurring jobs (pool.yml's schedule:) enqueued by real scheduler
processes: once per occurrence across several, through a SIGKILL, and a
HUP that brings a bad schedule."""

import calendar
import json
import re
import signal
import subprocess
import sys
import time
from collections import Counter

from conftest import ROOT, log_text, stop, wait_until
from resqued.exits import EX_CONFIG
from resqued.scheduler.command import command

LOCK = "resque:resque:resque_scheduler_master_lock"
POOLS = "pools:\n  - queues: [a]\n    count: 1\n"
EVERY_SECOND = POOLS + "schedule:\n  tick:\n    every: 1s\n    class: Tick\n    queue: ticks\n    args: [7]\n"
ENQUEUED = re.compile(r"enqueued (\S+) \(schedule (\S+), (\S+)\) on (\S+)")


def pool_yml(tmp_path, text, name="pool.yml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def scheduler(procs, redis_url, path, *args, name="scheduler"):
    return procs.spawn(command(redis_url, schedule=path, log_arguments=args), name=name)


def occurrences(*procs_) -> Counter:
    """Each occurrence (schedule, time) the schedulers logged enqueuing."""
    return Counter((m[1], m[2]) for p in procs_ for m in ENQUEUED.findall(log_text(p)))


def assert_each_once(counted: Counter, r, queue="ticks"):
    doubled = [o for o, n in counted.items() if n > 1]
    assert not doubled, f"enqueued twice: {doubled}"
    assert r.llen(f"resque:queue:{queue}") == len(counted)
    stamps = sorted(calendar.timegm(time.strptime(at, "%Y-%m-%dT%H:%M:%SZ")) for _, at in counted)
    gaps = [b - a for a, b in zip(stamps, stamps[1:]) if b - a != 1]
    assert not gaps, f"occurrences missing: {sorted(counted)}"


def test_two_schedulers_enqueue_each_occurrence_once(procs, redis_url, r, tmp_path):
    path = pool_yml(tmp_path, EVERY_SECOND)
    first = scheduler(procs, redis_url, path, name="first")
    second = scheduler(procs, redis_url, path, name="second")
    wait_until(lambda: sum(occurrences(first, second).values()) >= 5, timeout=15,
               message="five occurrences")
    assert stop(first, signal.SIGTERM) == 0 and stop(second, signal.SIGTERM) == 0
    counted = occurrences(first, second)
    assert_each_once(counted, r)
    job = json.loads(r.lindex("resque:queue:ticks", 0))
    assert (job["class"], job["args"]) == ("Tick", [7]) and len(job["id"]) == 32
    assert r.sismember("resque:queues", "ticks")
    last = max(at for _, at in counted)
    claimed = int(r.hget("resque:resqued:schedule_claims", "tick"))
    assert time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(claimed)) == last
    assert r.hexists("resque:delayed:last_enqueued_at", "tick")     # resque-web's Schedule tab


def test_a_killed_holder_neither_loses_nor_doubles_an_occurrence(procs, redis_url, r, tmp_path):
    path = pool_yml(tmp_path, EVERY_SECOND)
    first = scheduler(procs, redis_url, path, "--lock-timeout", "2", name="first")
    holder = wait_until(lambda: r.get(LOCK), message="a scheduler to take the lock").decode()
    assert f":{first.pid}:" in holder
    second = scheduler(procs, redis_url, path, "--lock-timeout", "2", name="second")
    wait_until(lambda: "standing by" in log_text(second), message="the second to stand by")
    wait_until(lambda: sum(occurrences(first).values()) >= 2, timeout=10, message="the first to enqueue")
    first.send_signal(signal.SIGKILL)       # just after an enqueue, between two occurrences
    first.wait(10)
    killed_at = time.time()
    # The lock lives up to 2 s more: the occurrences in between are enqueued
    # late, once, when the second takes over.
    wait_until(lambda: sum(occurrences(second).values()) >= 4, timeout=15,
               message="the second to take over and go on")
    assert stop(second, signal.SIGTERM) == 0
    counted = occurrences(first, second)
    assert_each_once(counted, r)
    late = [at for _, at in occurrences(second)
            if calendar.timegm(time.strptime(at, "%Y-%m-%dT%H:%M:%SZ")) < killed_at + 1]
    assert late, "no occurrence fell during the failover"


def test_a_holder_paused_past_its_lock_enqueues_nothing_twice_when_it_wakes(procs, redis_url, r, tmp_path):
    path = pool_yml(tmp_path, EVERY_SECOND)
    first = scheduler(procs, redis_url, path, "--lock-timeout", "2", name="first")
    wait_until(lambda: sum(occurrences(first).values()) >= 1, timeout=10, message="the first to enqueue")
    second = scheduler(procs, redis_url, path, "--lock-timeout", "2", name="second")
    first.send_signal(signal.SIGSTOP)
    try:
        wait_until(lambda: sum(occurrences(second).values()) >= 2, timeout=15, message="the second to take over")
    finally:
        first.send_signal(signal.SIGCONT)
    wait_until(lambda: "standing by" in log_text(first), message="the first to find the lock gone")
    done = sum(occurrences(first, second).values())
    wait_until(lambda: sum(occurrences(first, second).values()) >= done + 2, message="more occurrences")
    assert stop(first, signal.SIGTERM) == 0 and stop(second, signal.SIGTERM) == 0
    assert_each_once(occurrences(first, second), r)


def test_hup_reloads_and_a_bad_schedule_keeps_the_old_one(procs, redis_url, r, tmp_path):
    path = pool_yml(tmp_path, EVERY_SECOND)
    proc = scheduler(procs, redis_url, path)
    wait_until(lambda: r.llen("resque:queue:ticks") >= 1, message="a first tick")
    (tmp_path / "pool.yml").write_text(POOLS + 'schedule:\n  tick:\n    cron: "99 * * * *"\n    queue: ticks\n')
    proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "schedule not reloaded" in log_text(proc), message="the refusal")
    refusal = [line for line in log_text(proc).splitlines() if "schedule not reloaded" in line]
    assert f"{path}:6: schedule.tick.cron: '99 * * * *' is not a valid cron expression" in refusal[0]
    ticks = r.llen("resque:queue:ticks")
    wait_until(lambda: r.llen("resque:queue:ticks") >= ticks + 2, message="the old schedule to go on")
    (tmp_path / "pool.yml").write_text(POOLS + "schedule:\n  tock:\n    every: 1s\n    queue: tocks\n")
    proc.send_signal(signal.SIGHUP)
    wait_until(lambda: r.llen("resque:queue:tocks") >= 1, message="the new schedule")
    ticks = r.llen("resque:queue:ticks")
    wait_until(lambda: r.llen("resque:queue:tocks") >= 3, message="more tocks")
    assert r.llen("resque:queue:ticks") == ticks, "the removed schedule still enqueues"
    assert proc.poll() is None and stop(proc, signal.SIGTERM) == 0


def test_a_bad_schedule_at_start_exits_78_in_one_line(redis_url, tmp_path):
    path = pool_yml(tmp_path, POOLS + "schedule:\n  tick:\n    every: soon\n    queue: ticks\n")
    done = subprocess.run(command(redis_url, schedule=path), cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == EX_CONFIG
    assert f"{path}:6: schedule.tick.every: expected a duration" in done.stderr


def test_occurrences_missed_while_no_scheduler_ran_are_skipped(procs, redis_url, r, tmp_path):
    path = pool_yml(tmp_path, EVERY_SECOND)
    # The last enqueued occurrence was an hour ago: none of the 3600 since is
    # enqueued but those of the catch-up window (lock timeout + 2 s) before now.
    r.hset("resque:resqued:schedule_claims", "tick", int(time.time()) - 3600)
    started = time.time()
    proc = scheduler(procs, redis_url, path, "--lock-timeout", "2")
    wait_until(lambda: sum(occurrences(proc).values()) >= 6, timeout=15, message="ticks")
    assert stop(proc, signal.SIGTERM) == 0
    counted = occurrences(proc)
    assert_each_once(counted, r)
    first = min(calendar.timegm(time.strptime(at, "%Y-%m-%dT%H:%M:%SZ")) for _, at in counted)
    assert first >= int(started) - 2 - 2 - 1


def resquectl(redis_url, *args):
    return subprocess.run([sys.executable, "-m", "resqued.ctl", "--redis", redis_url, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_resquectl_schedule_lists_next_runs_and_the_last_enqueued(procs, redis_url, r, tmp_path):
    path = pool_yml(tmp_path, EVERY_SECOND + '  nightly:\n    cron: "0 3 * * * Europe/Stockholm"\n'
                                            "    queue: reports\n    description: the nightly report\n")
    proc = scheduler(procs, redis_url, path)
    wait_until(lambda: r.hget("resque:resqued:schedule_claims", "tick"), message="a tick")
    assert stop(proc, signal.SIGTERM) == 0
    done = resquectl(redis_url, "schedule", "-c", path, "--json")
    assert done.returncode == 0, done.stderr
    tick, nightly = json.loads(done.stdout)["schedule"]
    assert (tick["name"], tick["every"], tick["class"], tick["queue"], tick["args"]) == \
        ("tick", "1s", "Tick", "ticks", [7])
    assert tick["last_enqueued_timestamp"] == int(r.hget("resque:resqued:schedule_claims", "tick"))
    assert tick["next_timestamp"] > time.time() - 1
    assert (nightly["cron"], nightly["last_enqueued"], nightly["description"]) == \
        ("0 3 * * * Europe/Stockholm", None, "the nightly report")
    assert nightly["next"].endswith(("01:00:00Z", "02:00:00Z"))
    human = resquectl(redis_url, "schedule", "-c", path)
    assert human.returncode == 0 and "every 1s" in human.stdout and "never" in human.stdout
    assert resquectl(redis_url, "schedule").returncode == 2
    (tmp_path / "pool.yml").write_text(POOLS + "schedule:\n  x:\n    every: 1s\n")
    bad = resquectl(redis_url, "schedule", "-c", path)
    assert bad.returncode == EX_CONFIG and "schedule.x: missing 'queue'" in bad.stderr


def test_an_entry_with_no_next_occurrence_is_skipped_and_the_others_go_on(r, caplog):
    # Validation refuses such a cron; this one got past it (built here): the
    # scheduler must not die on it, nor stop enqueuing the others.
    import logging
    from resqued.config.schedule import ScheduleEntry
    from resqued.resque.keys import Keys
    from resqued.scheduler.lock import MasterLock
    from resqued.scheduler.recurring import Recurring
    keys = Keys("resque")
    lock = MasterLock(r, keys, 60, value="host:1")
    assert lock.take()
    never = ScheduleEntry("leap", "Leap", "q", [], cron="0 0 31 2 *")
    often = ScheduleEntry("often", "Often", "q", [], every=1, every_text="1s")
    recurring = Recurring(r, keys, [never, often], catch_up=10)
    recurring.loaded_at = time.time() - 5
    with caplog.at_level(logging.ERROR, logger="resqued.scheduler"):
        assert recurring.enqueue_due(time.time(), "host:1") >= 4
        recurring.due_at = 0
        recurring.enqueue_due(time.time() + 2, "host:1")
    assert {json.loads(raw)["class"] for raw in r.lrange("resque:queue:q", 0, -1)} == {"Often"}
    assert caplog.text.count("schedule leap (cron 0 0 31 2 *) has no next occurrence") == 1
    assert recurring.due_at < time.time() + 5
