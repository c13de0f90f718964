"""master/helperprocess.py: the master's helpers behind one interface, and
what each answers the loop (pure: no process is started)."""

import time

from resqued.exits import EX_TEMPFAIL
from resqued.master.exporterlink import Exporter
from resqued.master.helperprocess import HelperProcess
from resqued.master.recoveryruns import RecoveryRuns
from resqued.master.restart import RollingRestart
from resqued.master.schedulerlink import SchedulerLink
from resqued.master.spawnerlink import Spawner


def test_every_helper_is_a_helper_process():
    for helper in (Spawner("pool.yml"), RollingRestart("pool.yml"), RecoveryRuns(), Exporter("pool.yml"),
                   SchedulerLink("pool.yml")):
        assert isinstance(helper, HelperProcess), type(helper).__name__


def test_a_spawner_that_is_down_wakes_the_loop_when_it_may_start_again():
    spawner = Spawner("pool.yml")
    assert spawner.waitables() == []
    spawner.backoff.failed()
    assert spawner.deadline() == spawner.backoff.until
    spawner.pid = 12345
    assert spawner.deadline() is None
    assert spawner.owns(12345) and not spawner.owns(12346)


def test_a_restart_without_a_new_spawner_owns_nothing():
    restart = RollingRestart("pool.yml")
    assert restart.waitables() == [] and restart.deadline() is None
    assert not restart.owns(12345)


def test_a_recovery_run_that_found_redis_away_is_retried():
    runs = RecoveryRuns()
    runs.add("host:1:pool", "died", {"redis": "x"})
    assert runs.waitables() == []
    assert runs.deadline() is not None          # pending, none running: wake to start one
    runs.running = (4242, list(runs.pending))
    runs.pending = []
    assert runs.owns(4242) and runs.deadline() is None
    runs.on_exit(4242, EX_TEMPFAIL, f"exit code {EX_TEMPFAIL}")
    assert not runs.owns(4242)
    assert runs.pending and runs.deadline() > time.monotonic()


def test_an_exporter_that_died_wakes_the_loop_when_it_may_start_again():
    exporter = Exporter("pool.yml")
    assert exporter.waitables() == [] and exporter.deadline() is None   # never started: nothing to wake for
    exporter.pid = 4242
    assert exporter.owns(4242) and not exporter.owns(4243)
    exporter.on_exit(4242, 69, "exit code 69")   # its address in use: tried again later
    assert exporter.pid is None and exporter.deadline() == exporter.backoff.until > time.monotonic()
