"""A job's watch, decided and run without forking: its bounds' decisions
(jobbounds.py) are pure, and ChildWatch is given plain hooks, a pipe for
the child's report and a stand-in Standbys (the real children:
test_forking.py, test_worker.py, test_recycle.py)."""

import os

from resqued.process.signals import SignalQueue
from resqued.worker.execution.childwatch import ChildWatch, WorkerHooks
from resqued.jobs.timeouts import limit_for, timeout_problem
from resqued.worker.execution.jobbounds import MIN_WAIT, JobBounds, timed_out, wait_for

BOUNDS = JobBounds(term_timeout=5.0, max_memory_hard=100, parent_pid=os.getppid(), orphan_timeout=30.0)


def test_the_bounds_come_from_the_workers_spec():
    class Spec:
        term_timeout, max_memory_hard, parent_pid, orphan_timeout, job_timeout = 4.0, None, 1, 2.0, 9.0
    assert JobBounds.of(Spec) == JobBounds(4.0, None, 1, 2.0, 9.0)


def test_a_job_classs_own_timeout_beats_the_pools():
    class Own:
        timeout = 3
    class Plain:
        pass
    assert limit_for(30.0, Own) == 3.0 and limit_for(1.0, Own) == 3.0
    assert limit_for(30.0, Plain) == 30.0 and limit_for(None, Plain) is None


def test_timed_out_once_past_the_deadline_unless_already_killed():
    assert not timed_out(10.0, None, killing=False)
    assert not timed_out(10.0, 11.0, killing=False)
    assert timed_out(11.0, 11.0, killing=False)
    assert not timed_out(12.0, 11.0, killing=True)   # a stop's kill is under way: it decides


def test_a_class_timeout_must_be_positive_seconds():
    for good in (None, 1, 0.5):
        assert timeout_problem(type("Job", (), {"job_timeout": good})) is None
    for bad in (0, -1, "30", True, float("inf"), [1]):
        assert "greater than 0" in timeout_problem(type("Job", (), {"job_timeout": bad}))
        assert timeout_problem(type("Job", (), {"timeout": bad})) is None      # ignored, not refused


def test_over_the_hard_limit_only_when_there_is_one():
    assert BOUNDS.over_hard_limit(101) and not BOUNDS.over_hard_limit(100)
    assert not JobBounds(5.0).over_hard_limit(10 ** 12)


def test_an_orphaned_job_has_orphan_timeout_to_finish():
    other = os.getppid() + 1
    assert BOUNDS.orphan_step(os.getppid(), None, killing=False, now=0.0) is None   # its master is there
    assert BOUNDS.orphan_step(other, None, killing=False, now=0.0) == "gone"
    assert BOUNDS.orphan_step(other, 10.0, killing=False, now=39.0) is None
    assert BOUNDS.orphan_step(other, 10.0, killing=False, now=40.0) == "overdue"
    assert BOUNDS.orphan_step(other, 10.0, killing=True, now=99.0) is None      # being killed already
    assert JobBounds(5.0, parent_pid=1).orphan_step(other, None, killing=False, now=0.0) is None   # no limit


def test_the_wait_ends_at_the_first_thing_to_do():
    assert wait_for(100.0, 5.0) == 5.0
    assert abs(wait_for(100.0, 5.0, standby_at=100.25) - 0.25) < 1e-9
    assert wait_for(100.0, 5.0, memory_at=101.0) == 1.0
    # The orphan's deadline counts only while the job is not being killed.
    assert wait_for(100.0, 5.0, orphan_deadline=102.0) == 2.0
    assert wait_for(100.0, 5.0, kill_at=103.0, orphan_deadline=102.0) == 3.0
    assert wait_for(100.0, 5.0, kill_at=90.0) == MIN_WAIT
    assert wait_for(100.0, 5.0, orphan_deadline=102.0, job_deadline=101.5) == 1.5
    assert wait_for(100.0, 5.0, kill_at=103.0, job_deadline=101.0) == 3.0   # being killed: the KILL is next
    assert wait_for(100.0, 0.0) == MIN_WAIT


class Standbys:
    """Standbys' part in a watch: forking the next standby."""
    def __init__(self):
        self.prepared = []

    def prepare(self, idle):
        self.prepared.append(idle)

    def fileno(self):
        return None


class Worker:
    def __init__(self):
        self.signals = SignalQueue([])   # never installed: nothing arrives
        self.dispatched = self.beats = 0
        self.stopped = []

    def hooks(self, on_stop=None):
        def stop_job(reason):
            self.stopped.append(reason)
            if on_stop:
                on_stop()
        return WorkerHooks("host:1:default", self.signals, self.dispatch, lambda: 60.0, self.beat, stop_job)

    def dispatch(self):
        self.dispatched += 1

    def beat(self):
        self.beats += 1


def test_the_report_ends_the_wait_and_the_standby_is_forked_meanwhile():
    read_fd, write_fd = os.pipe()
    worker, standbys = Worker(), Standbys()
    os.write(write_fd, b'{"ok": true}\n')
    try:
        watch = ChildWatch(worker.hooks(), BOUNDS, standbys, 12345, read_fd, idle=False)
        assert watch.wait() == (None, b'{"ok": true}\n')
    finally:
        os.close(read_fd)
        os.close(write_fd)
    assert standbys.prepared == [False]   # not idle: at once
    assert watch.kill_at is None and worker.stopped == []


def test_a_job_outliving_its_master_by_orphan_timeout_is_stopped():
    read_fd, write_fd = os.pipe()
    worker, standbys = Worker(), Standbys()
    # Its master is not our parent: the watch sees it gone at once.
    bounds = JobBounds(term_timeout=5.0, parent_pid=os.getppid() + 1, orphan_timeout=0.0)
    try:
        hooks = worker.hooks(on_stop=lambda: os.write(write_fd, b"done\n"))
        watch = ChildWatch(hooks, bounds, standbys, 12345, read_fd, idle=True)
        assert watch.wait() == (None, b"done\n")
    finally:
        os.close(read_fd)
        os.close(write_fd)
    assert worker.stopped == ["the master died and the job was still running 0s later"]
    assert watch.orphaned_at is not None and worker.beats >= 1 and worker.dispatched >= 1
