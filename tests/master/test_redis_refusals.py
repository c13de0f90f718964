"""Redis that answers but refuses: OOM under noeviction, READONLY, MISCONF,
and an ACL user without a command resqued needs. Refusals are an outage to
ride out (the job and its outcome kept, said once), not a crash loop; a
missing permission is a pool that FAILED with its reason."""

import json
import os
import re
import signal

import pytest
import redis

from conftest import log_text, stop, wait_until
from masters import Master
from redis_server import RedisServer
from resqued.resque.client import Resque


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(str(tmp_path / "refusing-redis")).start()
    yield server
    server.stop()


def worker_deaths(master) -> int:
    return len(re.findall(r"died|boot", log_text(master.proc)))


def states(master) -> list:
    return [w["state"] for w in master.status()["workers"]]


@pytest.mark.parametrize("refusal", ["oom", "readonly"])
def test_refusals_are_an_outage_not_a_crash_loop(procs, tmp_path, own_redis, refusal):
    admin = redis.Redis(unix_socket_path=own_redis.socket)
    master = Master(procs, tmp_path, own_redis.url, ["queues: [default]\ncount: 2"],
                    heartbeat_interval=1)
    before = master.wait_workers(2)
    mark = tmp_path / "job"
    Resque(own_redis.url).enqueue("default", "FileSleep", {"path": str(mark), "seconds": 2})
    wait_until(lambda: (tmp_path / "job.started").exists(), message="the job to start")

    if refusal == "oom":
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", 1)         # every write refused: OOM command not allowed
    else:
        # What a replica says to writes (a failover demoted the server); the
        # unix socket stays ours, no master to replicate from is needed.
        admin.config_set("replica-read-only", "yes")
        admin.execute_command("REPLICAOF", "127.0.0.1", "1")

    wait_until(lambda: (tmp_path / "job.done").exists(), timeout=15, message="the job to end")
    # The outcome cannot be written: the worker says Redis refuses and waits.
    wait_until(lambda: "redis-down" in states(master), timeout=20, message="a worker in redis-down")
    assert master.workers() == before, log_text(master.proc)[-3000:]
    assert worker_deaths(master) == 0, log_text(master.proc)[-3000:]
    assert log_text(master.proc).count("Redis unavailable") <= 2   # said once per worker

    if refusal == "oom":
        admin.config_set("maxmemory", 0)
    else:
        admin.execute_command("REPLICAOF", "NO", "ONE")
    wait_until(lambda: int(admin.get("resque:stat:processed") or 0) == 1, timeout=20,
               message="the outcome recorded once Redis accepts writes")
    wait_until(lambda: set(states(master)) == {"idle"}, timeout=20, message="both workers idle")
    assert master.workers() == before
    assert admin.llen("resque:queue:default") == 0
    assert not (tmp_path / "job.started").exists() or (tmp_path / "job.done").exists()
    assert admin.llen("resque:failed") == 0
    assert admin.keys("resque:resqued:inflight:*") == []
    stop(master.proc)
    assert "ran twice" not in log_text(master.proc)


def test_misconf_is_ridden_out(procs, tmp_path, own_redis):
    """MISCONF (a failed background save with stop-writes-on-bgsave-error) is
    what a full disk looks like to a client."""
    admin = redis.Redis(unix_socket_path=own_redis.socket)
    master = Master(procs, tmp_path, own_redis.url, ["queues: [default]\ncount: 1"])
    before = master.wait_workers(1)
    # The snapshot's file name taken by a directory: the save's rename
    # fails, even for root, and writes are refused.
    blocker = tmp_path / "refusing-redis" / "blocked.rdb"
    blocker.mkdir()
    (blocker / "keep").touch()
    admin.config_set("dbfilename", "blocked.rdb")
    admin.config_set("stop-writes-on-bgsave-error", "yes")
    admin.config_set("save", "3600 1")   # refusals need a save schedule (tests run without)
    admin.bgsave()
    wait_until(lambda: admin.info("persistence")["rdb_last_bgsave_status"] == "err", message="BGSAVE to fail")
    wait_until(lambda: "redis-down" in states(master), timeout=20, message="the worker in redis-down")
    assert master.workers() == before
    admin.config_set("stop-writes-on-bgsave-error", "no")
    wait_until(lambda: states(master) == ["idle"], timeout=20, message="the worker idle again")
    assert master.workers() == before
    # Without a save schedule the server's SIGTERM at teardown skips the
    # snapshot that would fail: refused, it would wait out stop()'s 10 s.
    admin.config_set("save", "")


def test_an_acl_user_without_a_needed_command_fails_the_pool(procs, tmp_path, own_redis):
    admin = redis.Redis(unix_socket_path=own_redis.socket)
    admin.execute_command("ACL", "SETUSER", "narrow", "on", ">secret-pw", "~*", "&*", "+@all", "-blmove")
    url = f"unix://narrow:secret-pw@{own_redis.socket}"
    master = Master(procs, tmp_path, url, ["queues: [default]\ncount: 2\nstart_retries: 1"])
    def failed():
        result = master.ctl("status", "--json")   # fails until the master's socket is open
        return result.returncode == 0 and json.loads(result.stdout)["pools"][0]["failed"]

    wait_until(failed, timeout=60, message="the pool to turn FAILED")
    pool = master.status()["pools"][0]
    assert "blmove" in (pool["last_error"] or "").lower(), pool
    text = log_text(master.proc)
    assert text.count("started worker") <= 12, text[-3000:]
    assert "secret-pw" not in text
    stop(master.proc)


def test_check_names_the_commands_the_user_lacks(procs, tmp_path, own_redis):
    import subprocess
    import sys
    from conftest import ROOT
    from masters import write_config
    admin = redis.Redis(unix_socket_path=own_redis.socket)
    admin.execute_command("ACL", "SETUSER", "narrow", "on", ">secret-pw", "~*", "&*", "+@all",
                          "-blmove", "-client")
    config = write_config(tmp_path / "pool.yml", f"unix://narrow:secret-pw@{own_redis.socket}",
                          ["queues: [default]\ncount: 1"])
    bystander = redis.Redis(unix_socket_path=own_redis.socket, single_connection_client=True)
    before = bystander.client_id()
    result = subprocess.run([sys.executable, "-m", "resqued", "--check", "-c", str(config)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    out = result.stdout + result.stderr
    # The check's probes touch no other client (CLIENT KILL ID 0 would end them all).
    assert bystander.client_id() == before
    assert result.returncode == 0, out
    line = next(line for line in out.splitlines() if "may not run" in line)
    lacking = line.split("need: ")[1].split(";")[0].split(", ")
    assert lacking == ["client|setname", "client|id", "client|list", "client|unblock", "client|kill", "blmove"], line
    assert "secret-pw" not in out
    # A user with everything: no such warning.
    admin.execute_command("ACL", "SETUSER", "narrow", "+@all")
    result = subprocess.run([sys.executable, "-m", "resqued", "--check", "-c", str(config)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert "may not run" not in result.stdout + result.stderr


def test_a_dead_workers_job_is_recovered_once_redis_accepts_writes(procs, tmp_path, own_redis):
    admin = redis.Redis(unix_socket_path=own_redis.socket)
    master = Master(procs, tmp_path, own_redis.url, ["queues: [default]\ncount: 1"])
    [worker] = master.wait_workers(1)
    Resque(own_redis.url).enqueue("default", "FileSleep", {"path": str(tmp_path / "job"), "seconds": 3})
    wait_until(lambda: (tmp_path / "job.started").exists(), message="the job to start")
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", 1)
    os.kill(worker, signal.SIGKILL)
    # Settling is one Lua call; whether Redis lets it write now or a retry
    # does once memory is freed, the job goes back exactly once.
    wait_until(lambda: "requeued" in log_text(master.proc) or "cannot recover the jobs" in log_text(master.proc),
               timeout=20, message="the recovery run")
    admin.config_set("maxmemory", 0)
    wait_until(lambda: int(admin.get("resque:stat:processed") or 0) == 1, timeout=30,
               message="the job recovered and run again")
    text = log_text(master.proc)
    assert "crashed" not in text and "Traceback" not in text, text[-3000:]
    assert text.count("cannot recover the jobs") <= 1
    assert text.count("requeued") == 1


def test_a_job_whose_outcome_is_refused_for_good_is_lost_not_reclaimed(procs, tmp_path, own_redis):
    """Its outcome refused (here: no RPUSH, so no failed-list entry), the job
    ran but stays in flight. Reclaimed as if never run, it would run again
    and again; recovered as lost, max_lost bounds it."""
    admin = redis.Redis(unix_socket_path=own_redis.socket)
    admin.execute_command("ACL", "SETUSER", "norpush", "on", ">pw", "~*", "&*", "+@all", "-rpush")
    url = f"unix://norpush:pw@{own_redis.socket}"
    master = Master(procs, tmp_path, url, ["queues: [default]\ncount: 1"], max_lost=1)
    ledger = tmp_path / "ledger"
    Resque(own_redis.url).enqueue("default", "CountsAndFails", {"path": str(ledger)})

    # Lost twice is over max_lost: the recovery would fail it, which takes
    # the refused RPUSH, so it stays in flight (and the run is retried).
    wait_until(lambda: "recovery run" in log_text(master.proc) and
               admin.keys("resque:resqued:inflight:*"), timeout=60, message="a recovery that cannot fail it")
    runs = ledger.read_text().splitlines()
    assert len(runs) <= 2, runs   # max_lost 1: run, lost once, run again, then failed
    stop(master.proc)


def test_the_permission_probe_covers_every_command_resqued_sends():
    """Each command named in resqued's Lua scripts and raw command tuples is
    among --check's probes (a new one added to the code must be added there)."""
    import pathlib
    from conftest import ROOT
    from resqued.redisio.permissions import NOT_NEEDED, _probes
    probed = {name.split("|")[0] for name, _ in _probes("k")} | set(NOT_NEEDED)
    sent = set()
    for path in pathlib.Path(ROOT, "resqued").rglob("*.py"):
        text = path.read_text()
        sent |= {m.lower() for m in re.findall(r"redis\.p?call\(['\"]([A-Za-z]+)['\"]", text)}
        sent |= {m.lower() for m in re.findall(r"\(\"([A-Z]{3,12})\",", text)}
    # tuples of other things: settings, env variables, signal names
    not_commands = {"prefix", "logging", "verbose", "vverbose", "utc", "name", "count", "sigpipe"}
    assert sent - not_commands - probed == set()


def test_a_busy_worker_keeps_showing_its_job_while_redis_is_away(procs, tmp_path, own_redis):
    """redis-down must not hide the running job: status shows it, and the
    master would judge a death meanwhile as one mid-job."""
    master = Master(procs, tmp_path, own_redis.url, ["queues: [default]\ncount: 1"], heartbeat_interval=1)
    master.wait_workers(1)
    Resque(own_redis.url).enqueue("default", "FileSleep", {"path": str(tmp_path / "job"), "seconds": 4})
    wait_until(lambda: (tmp_path / "job.started").exists(), message="the job to start")
    own_redis.stop()
    [worker] = wait_until(lambda: [w for w in master.status()["workers"] if w["state"] == "redis-down"],
                          timeout=20, message="the worker in redis-down")
    assert worker["job"] and worker["job"]["class"] == "FileSleep", worker
    own_redis.start()
    wait_until(lambda: (tmp_path / "job.done").exists(), timeout=20, message="the job to end")
