"""The master's spawner (resqued/spawner/, started by master/spawnerlink.py):
the master holds no Redis client; a child of it that does, a fresh
interpreter, forks the workers and the recovery runs, which the master
adopts, reaps and replaces exactly as before."""

import json
import os
import pkgutil
import signal
import subprocess
import sys
import textwrap

import psutil

from conftest import JOBS_FILE, ROOT, log_text, wait_until
from helpers import failures, title, wait_log
from redis_server import RedisServer
from resqued import Resque
from masters import TWO_POOLS, Master, write_config


def spawners(master_pid):
    try:
        kids = psutil.Process(master_pid).children()
    except psutil.NoSuchProcess:
        return []
    return [k.pid for k in kids if title(k.pid).startswith("resqued-spawner[")]


def maps(pid) -> str:
    with open(f"/proc/{pid}/maps") as f:
        return f.read()


def test_the_master_holds_no_redis_client_its_spawner_forks_the_workers(master_factory, r):
    m = master_factory(TWO_POOLS)
    workers = m.wait_workers(3)
    [spawner] = wait_until(lambda: spawners(m.pid), message="the spawner")
    assert title(spawner) == "resqued-spawner[pool.yml]"
    # redis-py loads hiredis, a C extension, so it shows in a process's memory map.
    assert "hiredis" in maps(spawner) and all("hiredis" in maps(w) for w in workers)
    assert "hiredis" not in maps(m.pid)
    # Forked by the spawner, adopted by the master: its own children.
    assert all(psutil.Process(w).ppid() == m.pid for w in workers)
    status = m.status()
    assert status["master"]["pid"] == m.pid
    assert status["spawner"]["pid"] == spawner and status["spawner"]["state"] == "ready"
    assert status["spawner"]["rss"] > status["master"]["rss"] / 2
    text = m.ctl("status").stdout
    assert f"spawner {spawner} ready rss" in text.splitlines()[0]


def test_a_killed_spawner_is_replaced_and_the_workers_keep_running(master_factory, r, resque):
    m = master_factory(["queues: [default]\ncount: 2"])
    workers = m.wait_workers(2)
    [spawner] = wait_until(lambda: spawners(m.pid), message="the spawner")
    os.kill(spawner, signal.SIGKILL)
    [new] = wait_until(lambda: [p for p in spawners(m.pid) if p != spawner], message="a new spawner")
    assert "the worker spawner died (signal SIGKILL)" in log_text(m.proc)
    assert m.workers() == workers

    os.kill(workers[0], signal.SIGKILL)  # the new spawner replaces it
    after = wait_until(lambda: len(m.workers()) == 2 and workers[0] not in m.workers() and m.workers(),
                       message="the killed worker replaced")
    assert workers[1] in after and psutil.Process(new).ppid() == m.pid
    resque.enqueue_call("default", "add", 1, 2)
    wait_log(r, "add:3")
    assert "stopping worker" not in log_text(m.proc)  # no stray was found


def test_the_spawner_dies_with_the_master(master_factory, r):
    m = master_factory(["queues: [default]\ncount: 1"])
    m.wait_workers(1)
    [spawner] = wait_until(lambda: spawners(m.pid), message="the spawner")
    os.kill(m.pid, signal.SIGKILL)
    m.proc.wait(10)
    wait_until(lambda: not psutil.pid_exists(spawner) or psutil.Process(spawner).status() == psutil.STATUS_ZOMBIE,
               message="the spawner gone")


def test_a_redis_option_redis_py_refuses_is_a_config_error(tmp_path):
    cfg = write_config(tmp_path / "pool.yml", "redis://127.0.0.1:1/0?socket_timeout=soon", TWO_POOLS)
    out = subprocess.run([sys.executable, "-m", "resqued", "--check", "-c", str(cfg)], capture_output=True,
                         text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert out.returncode == 78 and out.stderr.count("\n") == 1, out.stderr
    assert f"{cfg}: redis: redis URL" in out.stderr and "socket_timeout" in out.stderr


def _lose_a_busy_worker_while_redis_is_down(procs, tmp_path, server, **top):
    """A master whose one worker runs a job, then Redis stops and the worker
    is SIGKILLed: its recovery run finds Redis away. Returns (master, pid)."""
    m = Master(procs, tmp_path, server.url, ["queues: [default]\ncount: 1"], **top)
    [worker] = m.wait_workers(1)
    client = Resque(server.url)
    wait_until(lambda: client.redis.scard("resque:workers") == 1)
    marker = str(tmp_path / "job")
    client.enqueue("default", "FileSleep", {"path": marker, "seconds": 60})
    wait_until(lambda: os.path.exists(marker + ".started"), message="the job started")
    client.redis.close()
    server.stop()
    os.kill(worker, signal.SIGKILL)
    wait_until(lambda: "cannot recover the jobs of 1 dead workers yet" in log_text(m.proc),
               message="the recovery run found Redis away")
    return m, worker


def test_a_lost_job_waits_out_a_redis_outage_and_is_recovered_once(procs, tmp_path):
    server = RedisServer(str(tmp_path / "redis"), persistent=True).start()
    try:
        m, worker = _lose_a_busy_worker_while_redis_is_down(procs, tmp_path, server, on_lost="fail")
        # Its replacement starts, and waits for Redis.
        [new] = wait_until(lambda: [w for w in m.workers(starting=True) if w != worker],
                           message="the worker replaced")
        server.start()
        client = Resque(server.url)
        wait_until(lambda: len(failures(client.redis)) == 1, timeout=20, message="the lost job failed")
        [entry] = failures(client.redis)
        assert entry["exception"] == "resqued.LostJob" and f":{worker}:" in entry["error"]
        wait_until(lambda: "Redis is back: lost jobs recovered" in log_text(m.proc))
        text = log_text(m.proc)
        # Retried every second meanwhile, but said once; nothing crashed.
        assert text.count("cannot recover the jobs") == 1 and "recovery run" not in text
        assert m.workers(starting=True) == [new] and m.proc.poll() is None
        assert not client.redis.sismember("resque:workers", f"{os.uname().nodename}:{worker}:default")
    finally:
        server.stop()


# The packages whose every module the master process may load: a module added
# to one of them is checked without a change here. What the master starts as
# another interpreter (the spawner, the probe) lives in resqued/spawner/, so
# none of these is exempt; a __main__ is checked through the main() it runs.
MASTER_PACKAGES = ("resqued.master", "resqued.config", "resqued.process", "resqued.supervise", "resqued.envmode",
                   "resqued.protocols")


def master_modules() -> list[str]:
    """resqued's top-level modules, every module of MASTER_PACKAGES and
    resquectl's master commands, as they are on disk now (no __main__:
    importing one runs a program)."""
    def fail(name):
        raise  # an import error while walking: not a reason to check fewer modules

    found = ["resqued", "resqued.ctl.mastercommands"]
    for info in pkgutil.walk_packages([os.path.join(ROOT, "resqued")], "resqued.", onerror=fail):
        top_level = info.name.count(".") == 1 and not info.ispkg
        package = info.name if info.ispkg else info.name.rpartition(".")[0]
        if (top_level or package.startswith(MASTER_PACKAGES)) and not info.name.endswith(".__main__"):
            found.append(info.name)
    return found


def test_the_master_path_imports_no_redis_client():
    """Each module the master may load, imported in a fresh interpreter: none
    brings in redis-py (or hiredis), nor the worker's code or resqued's Redis
    plumbing, nor prometheus_client (the exporter's). The first that does is named."""
    modules = master_modules()
    assert {"resqued.cli", "resqued.master.arbiter", "resqued.config.loader", "resqued.process.daemon"} <= set(modules)
    code = textwrap.dedent("""
        import importlib, json, sys
        for name in sys.argv[1:]:
            importlib.import_module(name)
            loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('redis', 'hiredis', 'prometheus_client')
                            or m.startswith(('resqued.worker', 'resqued.redisio', 'resqued.exporter')))
            if loaded:
                print(json.dumps({name: loaded[:5]}))
                break
        else:
            print(json.dumps({}))
    """)
    out = subprocess.run([sys.executable, "-c", code, *modules], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": ROOT}, check=True)
    assert json.loads(out.stdout) == {}


def test_a_worker_whose_reports_nobody_reads_stops(procs, redis_url, r, tmp_path):
    """What a worker sees if the spawner that forked it died before telling
    the master: the master closed its end of the report pipe. It must not
    go on working unseen (nobody would replace, signal or recover it)."""
    script = tmp_path / "stray.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys
        from resqued.process import logs
        from resqued.resque.client import Resque
        from resqued.jobs.allowlist import JobRegistry
        from resqued.config.workerspec import WorkerSpec
        from resqued.worker.worker import Worker
        logs.setup("info")
        read_end, report_fd = os.pipe()
        os.close(read_end)
        worker = Worker(Resque({redis_url!r}), JobRegistry.build([{JOBS_FILE!r}]),
                        WorkerSpec(queues=("default",), interval=1, report_fd=report_fd))
        sys.exit(worker.work())
    """))
    proc = procs.spawn([sys.executable, str(script)], name="stray")
    assert proc.wait(15) == 0, log_text(proc)
    assert "the master does not read its reports: stopping" in log_text(proc)
    assert r.scard("resque:workers") == 0  # it unregistered


def test_a_hung_spawner_is_killed_and_replaced(master_factory, r):
    m = master_factory(["queues: [default]\ncount: 2"])
    workers = m.wait_workers(2)
    [spawner] = wait_until(lambda: spawners(m.pid), message="the spawner")
    os.kill(spawner, signal.SIGSTOP)
    os.kill(workers[0], signal.SIGKILL)  # the master asks the hung spawner for a replacement
    wait_until(lambda: "the worker spawner failed a request (no reply)" in log_text(m.proc), timeout=20)
    [new] = wait_until(lambda: [p for p in spawners(m.pid) if p != spawner], message="a new spawner")
    after = wait_until(lambda: len(m.workers()) == 2 and workers[0] not in m.workers() and m.workers(),
                       message="the killed worker replaced")
    assert workers[1] in after
    assert not psutil.pid_exists(spawner) or psutil.Process(spawner).status() == psutil.STATUS_ZOMBIE
    assert m.ctl("status").returncode == 0  # the master answers again


def test_a_worker_from_before_a_reload_to_another_redis_is_recovered_from_its_own(master_factory, r, resque,
                                                                                   tmp_path):
    other = RedisServer(str(tmp_path / "other-redis")).start()
    try:
        m = master_factory(["queues: [default]\ncount: 1"])
        [old] = m.wait_workers(1)
        resque.enqueue("default", "Slow", {"seconds": 60})
        wait_log(r, "started:")
        # The new config points at another Redis: the old worker finishes its job first.
        write_config(m.config, other.url, ["queues: [default]\ncount: 1"])
        m.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: len(m.workers()) == 2, message="the replacement beside the finishing worker")
        os.kill(old, signal.SIGKILL)
        # Its job goes back to the queue it came from, on the Redis it came from.
        wait_until(lambda: r.llen("resque:queue:default") == 1, message="the job requeued on the first Redis")
        assert json.loads(r.lindex("resque:queue:default", 0))["class"] == "Slow"
        assert not r.keys("resque:resqued:inflight:*")
        assert not Resque(other.url).redis.keys("resque:queue:*")
    finally:
        other.stop()


def test_workers_start_with_thousands_of_aliases(master_factory, r, resque):
    # Too many settings for one socket message (~200 KB): they travel in a memfd.
    aliases = "{" + ", ".join(f"'Php\\Jobs\\Job{i:05d}': add" for i in range(9000)) + "}"
    assert len(aliases) > 200_000
    m = master_factory(["queues: [default]\ncount: 1"], aliases=aliases)
    m.wait_workers(1)
    resque.enqueue_call("default", "Php\\Jobs\\Job08999", 2, 3)
    wait_log(r, "add:5")


def test_a_stop_does_not_wait_for_ever_on_a_recovery_redis_refuses(procs, tmp_path):
    server = RedisServer(str(tmp_path / "redis"), persistent=True).start()
    try:
        m, worker = _lose_a_busy_worker_while_redis_is_down(procs, tmp_path, server, shutdown_timeout=2)
        m.proc.send_signal(signal.SIGQUIT)
        assert m.proc.wait(20) == 0
        assert "giving up on recovering 1 dead workers' jobs" in log_text(m.proc)
        assert not spawners(m.pid)
        server.start()
        # Left where the next worker's prune finds it: in the dead worker's in-flight list.
        [key] = Resque(server.url).redis.keys("resque:resqued:inflight:*")
        assert f":{worker}:" in key.decode()
    finally:
        server.stop()
