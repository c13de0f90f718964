"""What a rolling restart does at each turn, decided without a process: a
RestartView is plain values, the new spawner a Spawner that was never
started (the real-process side is test_restart.py)."""

import logging

from resqued.master.restart import PoolStep, RestartPool, RestartStep, RestartView, RestartWorker, RollingRestart
from resqued.master.spawnerlink import Spawner

OLD = (RestartWorker(11, "mail", started=1.0), RestartWorker(12, "mail", started=2.0),
       RestartWorker(21, "web", started=1.5))
POOLS = (RestartPool("mail"), RestartPool("web"))


def begun(*chosen, ready=True) -> RollingRestart:
    """A restart of ``chosen`` whose new spawner (pid 4242) has, or has not, said R."""
    restart = RollingRestart("pool.yml")
    restart.chosen = set(chosen)
    restart.spawner = Spawner("pool.yml")
    restart.spawner.pid, restart.spawner.ready = 4242, ready
    return restart


def fresh(pid, pool="mail", ready=True, started=9.0):
    return RestartWorker(pid, pool, started=started, ready=ready, generation=1)


def test_nothing_happens_until_the_new_spawner_is_ready():
    restart = begun("mail", ready=False)
    assert restart.step(RestartView(OLD, POOLS)) == RestartStep()
    assert restart.active and restart.generation == 0 and not restart.old


def test_a_ready_spawner_replaces_the_old_one_and_the_chosen_pools_workers_become_old():
    restart = begun("mail")
    new = restart.spawner
    step = restart.step(RestartView(OLD + (RestartWorker(13, "mail", 0.5, stopping=True),), POOLS))
    assert step.switch_to is new and restart.spawner is None
    assert restart.generation == 1
    assert restart.old == {"mail": {11, 12}}      # not web's, nor a stopping one
    assert step.pools == (PoolStep("mail"),) and step.retire == ()
    assert restart.surge("mail") == 1 and restart.surge("web") == 0


def test_one_old_worker_retires_for_each_new_one_that_reported_oldest_first():
    restart = begun("mail")
    restart.step(RestartView(OLD, POOLS))
    booting = RestartView(OLD + (fresh(31, ready=False),), POOLS)
    assert restart.step(booting).retire == ()
    first = RestartView(OLD + (fresh(31),), POOLS)
    assert restart.step(first).retire == (11,)
    assert restart.step(first).retire == ()      # once per new worker, not per turn
    assert restart.old == {"mail": {12}}
    # 11 is told QUIT (stopping), a second new one reports: the last old one goes.
    second = RestartView((RestartWorker(11, "mail", 1.0, stopping=True), OLD[1], OLD[2], fresh(31), fresh(32)), POOLS)
    assert restart.step(second).pools == (PoolStep("mail", (12,), done=True),)
    assert not restart.active and restart.surge("mail") == 0


def test_old_workers_that_died_meanwhile_need_no_retiring():
    restart = begun("mail")
    restart.step(RestartView(OLD, POOLS))
    assert restart.step(RestartView((OLD[2],), POOLS)).pools == (PoolStep("mail", done=True),)
    assert not restart.active and restart.error is None


def test_a_pool_that_failed_ends_its_restart_and_keeps_its_old_workers():
    restart = begun("mail", "web")
    restart.step(RestartView(OLD, POOLS))
    failed = (RestartPool("mail", failed=True, reason="its workers died at boot 5 times in a row"), POOLS[1])
    step = restart.step(RestartView(OLD + (fresh(31),), failed))
    why = "restart stopped: pool mail FAILED: its workers died at boot 5 times in a row"
    assert step.pools == (PoolStep("mail", failed=why), PoolStep("web"))
    assert restart.error == why and set(restart.old) == {"web"}


def test_a_pool_removed_by_a_reload_leaves_the_restart_quietly():
    restart = begun("mail")
    restart.step(RestartView(OLD, POOLS))
    assert restart.step(RestartView(OLD, POOLS[1:])) == RestartStep(None, (PoolStep("mail"),))
    assert not restart.active and restart.error is None


def test_a_new_spawner_that_died_leaves_the_old_one():
    restart = begun("mail", ready=False)
    restart.on_exit(4242, 1, "exit code 1")
    assert not restart.active and restart.step(RestartView(OLD, POOLS)) == RestartStep()
    assert restart.error == ("restart failed: the new spawner (the new code) died before it was ready"
                             " (exit code 1)")


def test_what_is_said_once_a_pools_part_is_applied(caplog):
    caplog.set_level(logging.INFO, logger="resqued.master")
    RollingRestart.announce(PoolStep("mail", (12,), done=True))
    RollingRestart.announce(PoolStep("web", failed="restart stopped: pool web FAILED: x"))
    RollingRestart.announce(PoolStep("gone"))
    assert [r.getMessage() for r in caplog.records] == [
        "pool mail restarted: its old workers finish their jobs, new ones run the new code",
        "restart stopped: pool web FAILED: x; its old workers keep running"]


def test_the_view_is_read_from_the_masters_records():
    class Child:   # what RestartView.of reads of a workerprocess.Child
        pid, started, ready, stopping, generation = 7, 3.0, True, False, 2
        pool = RestartPool("mail")

    class Supervision:   # what it reads of a supervise.states.PoolSupervision
        failed, reason = True, "why"

    view = RestartView.of([Child()], {"mail": Supervision()})
    assert view == RestartView((RestartWorker(7, "mail", 3.0, True, False, 2),), (RestartPool("mail", True, "why"),))
