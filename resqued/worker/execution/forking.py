"""Running each job in a fresh child (the default): the job goes to a standby
forked ahead (standbys.py, by the job forker, jobforker.py), and the worker
watches the child until it reports or dies (childwatch.py).

``ForkingExecution(worker)`` is owned by the worker (``worker.execution``),
as is InlineExecution (inline.py), its alternative behind the same methods.
It holds the standbys and the current job's watch; of the worker it reads
its id, signals, registry and spec (config/workerspec.py: its queues,
term_timeout and job_forker), hands each job's watch the worker as hooks
and the job's bounds (childwatch.py, jobbounds.py), and has it mark the job
running, set its title and report to the master.
"""

import logging
import os
import time

from resqued.jobs import events
from resqued.jobs.job import backtrace, exception_name
from resqued.jobs.timeouts import limit_for
from resqued.process.title import stamp
from resqued.resque.outcome import Failure
from resqued.worker import reports
from resqued.worker.execution.childwatch import ChildWatch, WorkerHooks
from resqued.jobs import ownclient
from resqued.worker.execution import childready, jobtimeout
from resqued.worker.execution.jobbounds import JobBounds
from resqued.worker.execution.jobchild import interpret
from resqued.worker.execution.standbys import Standbys

log = logging.getLogger("resqued.worker")


class ForkingExecution:
    def __init__(self, worker):
        self.worker = worker
        spec = worker.spec
        # job_forker: job children are forked by a process beside the worker
        # (jobforker.py), not by the worker.
        self.standbys = Standbys(worker.signals, worker.registry, worker.id, spec.name, spec.term_timeout,
                                 job_forker=spec.job_forker, ready_timeout=spec.child_ready_timeout)
        self.watch = None              # the running job's ChildWatch
        self._hooks, self._bounds = WorkerHooks.of(worker), JobBounds.of(spec)   # what each watch is given
        jobtimeout.use_pool_timeout(spec.job_timeout)  # before any fork: job children title themselves with it
        self.last_child = None         # the last job child's pid
        self.failures = childready.Failures(worker.id)   # of the childReady listeners
        ownclient.attach(worker.resque.url, worker.resque.keys.namespace)   # before any fork: children inherit it
        self._idle = True              # the next job comes to an idle worker (see prepare)

    @property
    def busy(self) -> bool:
        """A job child is running."""
        return self.watch is not None

    def prepare(self, idle: bool = False) -> bool:
        """Be ready for the next job: have a standby ready or on its way.
        ``idle``: the worker is about to wait for a job (not to run one
        taken with the last outcome): the standby rehearses the job path
        meanwhile, and the job's own wait forks the next one a little later
        (childwatch.py). False: no job may be taken now (childReady
        listeners failed, or the worker must act on a signal first)."""
        self._idle = idle
        if self.failures.wait_left():
            # The listeners failed: the next attempt waits, but a held job goes back first.
            if idle:
                self.worker.idle_wait(self.failures.wait_left())
            return False
        self.standbys.prepare(idle=idle)
        # (Only a hint: a standby from a forker that has listeners says so, and run waits for it.)
        return not childready.has_listeners() or self._standby_ready()

    def _standby_ready(self) -> bool:
        """Wait until the standby has said that its childReady listeners
        succeeded, acting on signals and beating meanwhile. False if they
        failed (its job waits in its queue rather than run without them:
        childready.py), or a signal must be acted on first."""
        if not self.standbys.using_standby:
            return True
        worker = self.worker
        while True:
            # (Redis refusing the heartbeat leaves it due: wait anyway, do not spin.)
            word = self.standbys.ready(timeout=worker.registration.heartbeat_due_in() or 1.0)
            if word is True:
                self.failures.succeeded()
                return True
            failed = f" (failed {self.failures.count} time(s))" if self.failures.count else ""
            if word is not None:
                self.failures.failed(f"job child {self.standbys.last_failed}", word)
                worker.show_title(f"Waiting: childReady listeners failed {self.failures.count} time(s)")
                return False
            worker.show_title(f"Waiting: childReady listeners of job child {self.standbys.standby.pid}{failed}")
            worker.dispatch_signals()
            worker.beat_if_due()
            if worker.shutdown or worker.paused:
                return False

    def run(self, job, target):
        """Run the job in a fresh child and wait for its report. Returns
        (failure, skipped), or None if it was not started: no job child is
        ready for it (childReady listeners fail), or a signal must be acted
        on first; the worker gives it back to its queue."""
        try:
            events.trigger("beforeFork", job)
        except Exception as exc:
            return Failure(exception_name(exc), f"beforeFork hook failed: {exc}", backtrace(exc)), False
        started = None
        for _ in range(2):   # (twice: the ready one may have died, and the next one not said yet)
            if started is None and self._standby_ready():
                started = self.standbys.start(job, target)
        if started is None:
            log.info("job %s %s on %s not started: no job child is ready for it; back to the head of its queue",
                     job.label, job.job_class, job.queue)
            return None
        pid, read_fd, output = started
        self.last_child = pid
        watch = self.watch = ChildWatch(self._hooks, self._bounds, self.standbys, pid, read_fd, idle=self._idle,
                                        limit=limit_for(self._bounds.job_timeout, target), output=output)
        # The master hears of the job first (a pipe write): a job that kills
        # its worker at once is then judged as the worker's death mid-job.
        # ``child``: for the master's status, which counts the job's memory apart from the worker's.
        self.worker.report(**reports.busy(job), child=pid)
        # Marked running once the child has the job, so the round trip
        # overlaps the job instead of delaying its start.
        marked = self.worker.mark_running(job)
        self.worker.show_title(f"Forked {pid} at {stamp()}")
        try:
            status, report = watch.wait()
        finally:
            os.close(read_fd)
            output.close()   # its last lines before the job's outcome is logged
            self.watch = None
            self.worker.read_marked(marked)
        self.standbys.reap()
        if watch.timed_out:
            # Failed, even if a stop came meanwhile: the job was past its time.
            return jobtimeout.timeout_failure(job, watch.limit, time.monotonic() - watch.started, report), False
        # A job the worker's stop killed is given back, not failed: no onFailure hooks for it.
        return interpret(job, pid, status, report, watch.kill_reason, failure_hooks=not self.worker.killed_by_stop)

    def kill(self, reason: str | None = None) -> None:
        """Kill the running job, if any (TERM, then KILL after term_timeout)."""
        if self.watch is not None:
            self.watch.kill(reason)

    def close(self) -> None:
        """Dismiss the standby, reap every child and stop the job forker."""
        self.standbys.close()
