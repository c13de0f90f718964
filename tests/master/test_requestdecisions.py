"""What the master does with resquectl's requests, decided without a
process: a MasterState is plain values (the real-process side is
test_master.py, test_restart.py, test_control.py)."""

from resqued.master.requestdecisions import (REQUEST_TIMEOUT, RESTART_TIMEOUT, MasterState, Pause, PoolView, Reload,
                                             ReplyStatus, Restart, Resume, StopMaster, Wait, WorkerView, after_reload,
                                             after_restart, applied, decide, holds, ready_due, settle)
from resqued.protocols.controlsocket import Command, Refusal, Request

MAIL = PoolView("mail", 2)
RUNNING = MasterState(workers=(WorkerView(1, "mail"), WorkerView(2, "mail")), pools=(MAIL,))


def state(*workers, **flags):
    return MasterState(workers=tuple(workers), pools=(MAIL,), **flags)


def test_status_is_answered_at_once_even_while_stopping():
    assert decide(Request(Command.STATUS), state(stopping=True)) == ReplyStatus()


def test_a_stopping_master_refuses_all_but_stop():
    for command in (Command.PAUSE, Command.RESUME, Command.RELOAD, Command.RESTART):
        assert decide(Request(command), state(stopping=True)) == Refusal("the master is stopping")
    assert decide(Request(Command.STOP, now=True), state(stopping=True)) == StopMaster("immediate")


def test_pause_waits_for_paused_or_with_wait_for_finished_jobs():
    assert decide(Request(Command.PAUSE), RUNNING) == Pause(Wait("paused", REQUEST_TIMEOUT))
    assert decide(Request(Command.PAUSE, wait=5), RUNNING) == Pause(Wait("finished", 5))
    assert decide(Request(Command.RESUME), RUNNING) == Resume(Wait("resumed", REQUEST_TIMEOUT))


def test_stop_answers_with_the_pid_once_stopping():
    action = decide(Request(Command.STOP), RUNNING)
    assert action == StopMaster("graceful")
    assert action.then == ReplyStatus("stopping", with_pid=True)


def test_env_mode_refuses_reload_unless_winched():
    refused = decide(Request(Command.RELOAD), state(env_mode=True))
    assert isinstance(refused, Refusal) and refused.unsupported and "environment mode" in refused.error
    assert decide(Request(Command.RELOAD), state(env_mode=True, winched=True)) == Reload()
    assert decide(Request(Command.RELOAD), RUNNING) == Reload()


def test_what_follows_a_reload_and_a_restart():
    assert after_reload("bad yaml", "reload") == Refusal("bad yaml", config_error=True)
    assert after_reload(None, "restart") == Restart(None)
    assert after_reload(None, "reload") == Wait("applied", REQUEST_TIMEOUT)
    assert decide(Request(Command.RESTART, pools=("mail",)), RUNNING) == Restart(("mail",))
    assert decide(Request(Command.RESTART), RUNNING) == Restart(None)
    assert after_restart(None) == Wait("restarted", RESTART_TIMEOUT)
    assert after_restart("restart refused: x") == Refusal("restart refused: x", config_error=True)
    assert after_restart("already restarting") == Refusal("already restarting", config_error=False)


def test_conditions_ignore_stopping_workers():
    busy = WorkerView(3, "mail", stopping=True, busy=True)
    paused = state(WorkerView(1, "mail", paused=True), busy)
    assert holds("paused", paused) and holds("finished", paused)
    assert not holds("resumed", paused)
    assert not holds("finished", state(WorkerView(1, "mail", paused=True, busy=True)))
    assert holds("resumed", RUNNING)
    assert not holds("resumed", state(WorkerView(1, "mail", ready=False)))
    assert holds("restarted", RUNNING) and not holds("restarted", state(restart_active=True))


def test_applied_needs_the_count_of_ready_current_workers_of_each_healthy_pool():
    assert applied(RUNNING)
    assert not applied(state(WorkerView(1, "mail"), WorkerView(2, "mail", current=False)))
    assert not applied(state(WorkerView(1, "mail"), WorkerView(2, "mail", ready=False)))
    assert not applied(state(WorkerView(1, "mail"), WorkerView(2, "mail", stopping=True)))
    assert applied(MasterState(pools=(PoolView("mail", 2, failed=True),)))
    assert applied(state(winched=True))


def test_settle_answers_refuses_late_or_waits():
    waiting = state(WorkerView(1, "mail", paused=True, busy=True))
    assert settle(Wait("finished", 5), 100.0, waiting, now=50.0) is None
    late = settle(Wait("finished", 5), 100.0, waiting, now=101.0)
    assert late == Refusal("paused, but 1 worker still running a job (see resquectl status); they take no new job")
    assert settle(Wait("paused", 5), 100.0, waiting, now=50.0) == ReplyStatus("paused")
    assert settle(Wait("resumed", 5), 100.0, waiting, now=101.0) == Refusal(
        "not resumed in time; see resquectl status")
    done = settle(Wait("finished", 5), 100.0, state(WorkerView(1, "mail", paused=True)), now=50.0)
    assert done == ReplyStatus("paused")


def test_a_restart_that_ended_in_error_is_refused():
    assert settle(Wait("restarted", 1), 10.0, state(restart_error="new code fails"), now=0.0) == Refusal(
        "new code fails")
    assert settle(Wait("restarted", 1), 10.0, RUNNING, now=0.0) == ReplyStatus("restarted")
    assert settle(Wait("restarted", 1), 10.0, state(restart_active=True, restart_error="x"), now=0.0) is None


def test_ready_is_due_once_per_applied_config_and_never_while_stopping():
    assert ready_due(RUNNING, ready_sent=False)
    assert not ready_due(RUNNING, ready_sent=True)
    assert not ready_due(state(WorkerView(1, "mail")), ready_sent=False)
    assert not ready_due(MasterState(workers=RUNNING.workers, pools=(MAIL,), stopping=True), ready_sent=False)


def test_a_reload_request_waits_for_its_code_check_then_for_what_follows():
    wait = Wait("probed", REQUEST_TIMEOUT)
    assert settle(wait, 100.0, state(reload_probing=True), 1.0) is None
    assert settle(wait, 100.0, state(), 1.0) == Wait("applied", REQUEST_TIMEOUT)
    assert settle(wait, 100.0, state(on_hup="restart"), 1.0) == Restart(None)
    assert settle(wait, 100.0, state(reload_error="x.yml: jobs: boom"), 1.0) == \
        Refusal("x.yml: jobs: boom", config_error=True)
    assert settle(wait, 100.0, state(stopping=True, reload_error="stopped first"), 1.0) == Refusal("stopped first")
    assert isinstance(settle(wait, 100.0, state(reload_probing=True), 101.0), Refusal)   # too long
