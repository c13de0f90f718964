"""Command pools (docs/command-pools.md) at the edges of a worker's life:
a pidfile that cannot be written, a pause while a worker boots, a wrapper
that crashes at boot, a clean stop that leaves its process group alone."""

import os
import signal
import sys

import psutil

from conftest import log_text, stop, wait_until
from test_command_pools import STAND_IN, command_pool, enqueue


def command_workers(m):
    """The master's command workers, titled or still booting."""
    try:
        return sorted(k.pid for k in psutil.Process(m.pid).children() if STAND_IN in " ".join(k.cmdline()))
    except psutil.NoSuchProcess:
        return []


def test_a_pidfile_that_cannot_be_written_ends_the_worker_and_fails_the_pool(master_factory, tmp_path):
    m = master_factory([command_pool(extra="\nstart_retries: 1")])
    [worker] = m.wait_workers(1)
    pid_dir = tmp_path / "var/run/workers"
    for name in os.listdir(pid_dir):
        os.unlink(pid_dir / name)
    os.rmdir(pid_dir)
    pid_dir.write_text("not a directory")   # the next pidfile cannot be written
    os.kill(worker, signal.SIGKILL)
    [pool] = wait_until(lambda: (s := m.status()) and s["pools"][0]["failed"] and s["pools"], timeout=10,
                        message="the pool to fail")
    assert pool["last_error"].startswith("cannot write its pidfile:")
    assert m.proc.poll() is None and command_workers(m) == []   # none runs unrecorded
    assert stop(m.proc) == 0


def test_a_pause_while_a_worker_boots_waits_for_its_handlers_and_a_resume_cancels_it(master_factory, r):
    m = master_factory([command_pool(extra="\nenv: {BOOT_DELAY: '1.5'}")])
    [worker] = wait_until(lambda: command_workers(m), message="a worker booting")
    assert m.ctl("pause").returncode == 0   # USR2 now would kill it: it has no handler yet
    assert m.ctl("resume").returncode == 0   # so the pause it missed must not reach it later either
    wait_until(lambda: m.workers() == [worker], message="the worker up, the same one")
    enqueue(r, "default", "Sleep", 0)
    wait_until(lambda: r.get("resque:stat:processed") == b"1", message="the job run: not paused")
    assert m.ctl("pause").returncode == 0
    wait_until(lambda: [(w["state"], w["paused"]) for w in m.status()["workers"]] == [("paused", True)],
               message="paused once it listens")
    assert "died" not in log_text(m.proc)
    assert stop(m.proc) == 0


def test_a_wrapper_with_a_child_that_crashes_at_boot_backs_off_and_fails(master_factory):
    # sh runs sleep as its child: a child alone does not make the worker started.
    m = master_factory(["queues: [crash]\ncount: 1\nstart_retries: 1\ncommand: [sh, -c, 'sleep 0.4; exit 3']"])
    wait_until(lambda: m.ctl("status").returncode == 0 or m.proc.poll() is not None, message="the master up")
    [pool] = wait_until(lambda: (s := m.status()) and s["pools"][0]["failed"] and s["pools"], timeout=10,
                        message="the pool to fail")
    assert pool["reason"] == "its workers died at boot 2 times in a row (last: exit code 3)"
    assert stop(m.proc) == 0


def test_a_clean_exit_after_quit_leaves_its_process_group_alone(master_factory, r):
    # What the worker left running in its group (here a sleep its wrapper
    # started) is not killed after an exit it was asked for: no job was lost.
    wrapper = f"[sh, -c, 'sleep 30 & exec {sys.executable} {STAND_IN}']"
    m = master_factory([f"queues: [default]\ncount: 1\ninterval: 0.1\nmax_jobs: 1\ncommand: {wrapper}"])
    [worker] = m.wait_workers(1)
    [left] = wait_until(lambda: psutil.Process(worker).children(), message="the wrapper's sleep")
    enqueue(r, "default", "Sleep", 0)
    wait_until(lambda: worker not in m.workers() and len(m.workers()) == 1, message="recycled after its job")
    wait_until(lambda: f"worker {worker} (default) stopped (exit code 0)" in log_text(m.proc),
               message="its exit reaped")
    try:
        assert left.is_running() and left.status() != psutil.STATUS_ZOMBIE
        assert "running a job" not in log_text(m.proc)
    finally:
        left.kill()
    assert stop(m.proc) == 0


def test_an_untitled_worker_is_not_taken_as_listening_after_the_startup_grace():
    # A Rails app may boot for tens of seconds before Resque's handlers are
    # in place: 5 s of life (the startup grace) does not make USR2 safe.
    from resqued.master.commandworkers import UNTITLED_LISTENS, CommandChild
    child = CommandChild(pid=os.getpid(), pool=None, settings=(), report_fd=-1)
    child.started -= 10
    assert not child.listening
    child.title = "resque-1.2: Waiting for default"
    assert child.listening
    child.title, child.started = "", child.started - UNTITLED_LISTENS
    assert child.listening
