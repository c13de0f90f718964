"""A reload's check of the new config's job modules runs in a child of the
running spawner (master/reloadprobe.py), which forks the workers after it,
not in a fresh interpreter; the master's loop goes on meanwhile."""

import json
import os
import signal
import time

from conftest import JOBS_FILE, log_text, stop, wait_until
from masters import write_config

ONE_POOL = ["queues: [default]\ncount: 1"]

# Each import says who imported it, and whose child that process is.
RECORDING_JOBS = """
import os
with open({path!r}, "a") as f:
    f.write("%d %d\\n" % (os.getpid(), os.getppid()))
{extra}

class Recorded:
    @staticmethod
    def perform():
        pass
"""


def importers(path):
    if not path.exists():
        return []
    return [tuple(map(int, line.split())) for line in path.read_text().splitlines()]


def reload_with(m, jobs):
    write_config(m.config, m.redis_url, ONE_POOL, jobs=f"[{JOBS_FILE}, {jobs}]")
    return m.ctl("reload")


def test_a_reload_checks_the_new_job_modules_in_a_child_of_the_spawner(master_factory, tmp_path):
    m = master_factory(ONE_POOL)
    [worker] = m.wait_workers(1)
    spawner = m.status()["spawner"]["pid"]
    record = tmp_path / "imported-by"
    jobs = tmp_path / "recorded.py"
    jobs.write_text(RECORDING_JOBS.format(path=str(record), extra=""))

    result = reload_with(m, jobs)
    assert result.returncode == 0, result.stderr
    probes = [pid for pid, parent in importers(record) if parent == spawner]
    assert probes, f"no import by a child of the spawner {spawner}: {importers(record)} ({log_text(m.proc)[-2000:]})"
    # The spawner reaps its probe: no zombie left under it.
    wait_until(lambda: not os.path.exists(f"/proc/{probes[0]}"), message="the probe child reaped")
    assert stop(m.proc) == 0


def test_a_reload_whose_job_module_fails_to_import_is_refused_and_nothing_applied(master_factory, tmp_path):
    m = master_factory(ONE_POOL)
    [worker] = m.wait_workers(1)
    spawner = m.status()["spawner"]["pid"]
    record = tmp_path / "imported-by"
    jobs = tmp_path / "broken.py"
    jobs.write_text(RECORDING_JOBS.format(path=str(record), extra="raise RuntimeError('no such luck')"))
    before = json.loads(m.ctl("status", "--json").stdout)["master"]["config"]

    result = reload_with(m, jobs)
    assert result.returncode == 78, result.stderr
    assert "no such luck" in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert [parent for _, parent in importers(record)] == [spawner]   # checked once, by the spawner's child
    # Nothing applied: the same worker, and a HUP refuses it too.
    assert m.workers() == [worker] and m.status()["master"]["config"] == before
    os.kill(m.pid, signal.SIGHUP)
    wait_until(lambda: log_text(m.proc).count("reload refused") >= 2, message="the HUP's reload refused")
    assert m.workers() == [worker]
    assert stop(m.proc) == 0


SLOW_JOBS = """
import time
time.sleep(3)   # an import the reload's check waits for


class Slow:
    @staticmethod
    def perform():
        pass
"""


def test_the_master_answers_while_a_reload_checks_slow_job_modules(master_factory, tmp_path):
    m = master_factory(ONE_POOL)
    m.wait_workers(1)
    jobs = tmp_path / "slowimport.py"
    jobs.write_text(SLOW_JOBS)
    write_config(m.config, m.redis_url, ONE_POOL, jobs=f"[{JOBS_FILE}, {jobs}]")
    os.kill(m.pid, signal.SIGHUP)
    start = time.monotonic()
    assert m.ctl("status").returncode == 0
    assert time.monotonic() - start < 2.0, "status waited for the reload's check"
    wait_until(lambda: "reloaded " in log_text(m.proc), timeout=20, message="the reload applied")
    assert stop(m.proc) == 0


def test_a_check_that_never_answers_is_a_refusal_after_the_timeout_and_is_killed(tmp_path):
    import subprocess
    import sys

    from resqued.master.reloadprobe import PROBING, TIMEOUT, ReloadProbe

    class Config:   # what begin reads of a Config
        path, redis_url, namespace, jobs, aliases, pools = "pool.yml", "redis://x", "resque", (), {}, ()
        log_level, log_format = "info", "text"

    hung = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
    read_fd, write_fd = os.pipe()

    class HungSpawner:   # the spawner's answer: a probe child that never writes
        @staticmethod
        def probe_code(settings):
            return hung.pid, read_fd

    try:
        reloading = ReloadProbe()
        assert reloading.begin(lambda: Config(), HungSpawner(), resumed=False, hup=True) is PROBING
        assert reloading.finish(time.monotonic()) is None and reloading.deadline() is not None
        done = reloading.finish(time.monotonic() + TIMEOUT)
        assert done.outcome == f"pool.yml: jobs: the job modules did not import within {TIMEOUT:g}s"
        assert hung.wait(10) == -signal.SIGKILL
        assert not reloading.active and reloading.waitables() == []
    finally:
        os.close(write_fd)
        if hung.poll() is None:
            hung.kill()
            hung.wait()
