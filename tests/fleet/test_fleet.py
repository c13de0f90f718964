"""The fleet: masters on several hosts sharing one Redis (two masters on
this machine, each with a host identity of its own through
RESQUED_HOSTNAME), as ``resquectl fleet`` shows them. Real masters,
workers and Redis."""

import json
import os
import signal
import sys
import time

import psutil

from conftest import stop, wait_until
from helpers import log_entries, wait_log
from masters import Master

# The dashboard's test client, from its tests' directory (not on the path when only these run).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "web"))
from webclient import Client, start_web, text_of  # noqa: E402

PAUSED = "resque:resqued:paused_queues"
POOLS = ["queues: [default]\ncount: 2", "queues: [mail]\ncount: 1"]


def on_host(procs, tmp_path, redis_url, host, pools=POOLS, **kw):
    """A master that stands for the host ``host``, in a directory of its own (its pidfile, socket)."""
    where = tmp_path / host
    where.mkdir()
    return Master(procs, where, redis_url, pools, env={"RESQUED_HOSTNAME": host}, **kw)


def fleet(master) -> dict:
    result = master.ctl("fleet", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def hosts_listed(master, expected: set, alive: dict):
    """The fleet once exactly ``expected`` hosts are listed, those of
    ``alive`` (host -> n) with that many workers alive."""
    def listed():
        data = fleet(master)
        found = {m["host"]: m for m in data["masters"]}
        return data if set(found) == expected and all(
            sum(p["alive"] for p in found[host]["pools"]) == n for host, n in alive.items()) else None
    return wait_until(listed, timeout=20, interval=0.2, message=f"the fleet to list {sorted(expected)}")


def test_the_fleet_lists_both_hosts_their_pools_versions_and_foreign_workers(procs, tmp_path, redis_url, r):
    a = on_host(procs, tmp_path, redis_url, "host-a")
    b = on_host(procs, tmp_path, redis_url, "host-b")
    a.wait_workers(3)
    b.wait_workers(3)
    # A php-resque worker on a third host, and a master left on an older version.
    r.sadd("resque:workers", "php-box:4242:mail,default")
    old = {"host": "old-box", "pid": 7, "version": "0.0.1", "config": "/etc/pool.yml", "digest": "x",
           "started": time.time(), "seen": time.time(), "state": "running", "workers": 0, "pools": []}
    r.set("resque:resqued:fleet:master:old-box:7", json.dumps(old), ex=30)
    r.zadd("resque:resqued:fleet:masters", {"old-box:7": time.time()})

    data = hosts_listed(a, {"host-a", "host-b", "old-box"}, {"host-a": 3, "host-b": 3})
    found = {m["host"]: m for m in data["masters"]}
    assert found["host-a"]["pid"] == a.pid and found["host-b"]["pid"] == b.pid
    assert found["host-a"]["digest"] and found["host-a"]["state"] == "running"
    assert [p["name"] for p in found["host-b"]["pools"]] == ["default", "mail"]
    assert found["host-b"]["pools"][0]["count"] == 2 and sum(found["host-b"]["pools"][0]["states"].values()) == 2
    assert found["old-box"]["outdated"] and not found["host-a"]["outdated"] and not found["host-b"]["outdated"]
    # Each master's workers go by its host's name in Redis too.
    ids = {w.decode() for w in r.smembers("resque:workers")}
    assert len([i for i in ids if i.startswith("host-a:")]) == 3 and len([i for i in ids if i.startswith("host-b:")]) == 3
    assert data["foreign_workers"] == {"php-box": [{"id": "php-box:4242:mail,default", "pid": 4242,
                                                    "queues": ["mail", "default"]}]}
    text = a.ctl("fleet").stdout
    assert "host-a" in text and "host-b" in text and "old-box" in text and "OLDER VERSION" in text, text
    assert "php-box" in text, text

    # A master that stops removes its record at once.
    assert stop(b.proc) == 0
    assert not r.exists(f"resque:resqued:fleet:master:host-b:{b.pid}")
    assert {m["host"] for m in fleet(a)["masters"]} == {"host-a", "old-box"}
    assert stop(a.proc) == 0


def test_pause_and_resume_of_one_queue_fleet_wide_through_resquectl(procs, tmp_path, redis_url, r, resque):
    a = on_host(procs, tmp_path, redis_url, "host-a")
    a.wait_workers(3)
    for args, problem in ((["pause", "--queue", "mail"], "--queue mail needs --fleet"),
                          (["resume", "--fleet"], "--fleet needs --queue QUEUE"),
                          (["pause", "--queue", "a,b", "--fleet"], "invalid queue name 'a,b'")):
        result = a.ctl(*args)
        assert result.returncode == 2 and problem in result.stderr and len(result.stderr.splitlines()) == 1, \
            (args, result.stderr)
    assert not r.exists(PAUSED)

    result = a.ctl("pause", "--queue", "mail", "--fleet")
    assert result.returncode == 0 and "queue mail paused on every host" in result.stdout, result.stderr
    assert r.smembers(PAUSED) == {b"mail"}
    resque.enqueue("mail", "PhpJob", {"tag": "held"})
    resque.enqueue("default", "PhpJob", {"tag": "goes-on"})
    wait_log(r, "perform:goes-on")
    assert "queues paused fleet-wide (resquectl resume --queue Q --fleet): mail" in a.ctl("status").stdout
    assert a.status()["paused_queues"] == ["mail"]
    assert fleet(a)["paused_queues"] == ["mail"] and "queues paused fleet-wide: mail" in a.ctl("fleet").stdout
    assert r.llen("resque:queue:mail") == 1

    result = a.ctl("resume", "--queue", "mail", "--fleet", "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["paused_queues"] == [], result.stderr
    wait_log(r, "perform:held")
    assert stop(a.proc) == 0


def test_a_queue_paused_fleet_wide_holds_on_both_hosts_while_other_queues_run(procs, tmp_path, redis_url, r, resque):
    a = on_host(procs, tmp_path, redis_url, "host-a")
    b = on_host(procs, tmp_path, redis_url, "host-b")
    hosts_listed(a, {"host-a", "host-b"}, {"host-a": 3, "host-b": 3})
    assert a.ctl("pause", "--queue", "mail", "--fleet").returncode == 0
    for n in range(6):
        resque.enqueue("mail", "PhpJob", {"tag": f"mail-{n}"})
        resque.enqueue("default", "PhpJob", {"tag": f"default-{n}"})
    wait_log(r, "perform:default-", count=6)
    # Both hosts' mail workers were waiting on mail: none took one.
    assert not [e for e in log_entries(r) if e.startswith("perform:mail-")]
    assert r.llen("resque:queue:mail") == 6 and not r.keys("resque:resqued:inflight:*mail")
    _, base = start_web(procs, redis_url)
    assert "Queues paused fleet-wide (no resqued worker on any host takes their jobs): mail" in \
        text_of(Client(base).page("/"))

    assert b.ctl("resume", "--queue", "mail", "--fleet").returncode == 0
    wait_log(r, "perform:mail-", count=6)
    assert stop(a.proc) == 0 and stop(b.proc) == 0


def test_a_host_killed_whole_has_its_jobs_settled_by_the_other_and_drops_out_of_the_fleet(procs, tmp_path,
                                                                                          redis_url, r, resque):
    # A short heartbeat: a worker silent for five beats (5 s) is dead to every pruner.
    a = on_host(procs, tmp_path, redis_url, "host-a", pools=["queues: [default]\ncount: 1"], heartbeat_interval=1)
    b = on_host(procs, tmp_path, redis_url, "host-b", pools=["queues: [only-b]\ncount: 1"], heartbeat_interval=1)
    hosts_listed(a, {"host-a", "host-b"}, {"host-a": 1, "host-b": 1})
    resque.enqueue("only-b", "Slow", {"seconds": 60})
    wait_log(r, "started:")
    assert r.llen("resque:queue:only-b") == 0 and r.keys("resque:resqued:inflight:host-b:*")

    # The whole of host-b at once, as a power cut would: master, spawner, advertiser, workers, job children.
    tree = [b.pid] + [p.pid for p in psutil.Process(b.pid).children(recursive=True)]
    for pid in tree:
        os.kill(pid, signal.SIGKILL)
    b.proc.wait(10)

    # host-a's worker prunes host-b's dead worker and puts its job back at the head of its queue.
    wait_until(lambda: r.llen("resque:queue:only-b") == 1 and not r.keys("resque:resqued:inflight:host-b:*"),
               timeout=30, interval=0.2, message="host-b's in-flight job settled by host-a")
    job = json.loads(r.lindex("resque:queue:only-b", 0))
    assert job["class"] == "Slow" and job["resqued_lost"] == 1
    wait_until(lambda: not [w for w in r.smembers("resque:workers") if w.startswith(b"host-b:")],
               timeout=30, interval=0.2, message="host-b's worker unregistered")
    # Its fleet record expires: the fleet shows host-a only.
    hosts_listed(a, {"host-a"}, {"host-a": 1})
    assert stop(a.proc) == 0
