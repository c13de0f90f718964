"""Running each job inside the worker (``fork: false``, FORK_PER_JOB=false):
for trusted short jobs. No fork cost, but a job that crashes takes the
worker with it (its job is then recovered like any dead worker's), and the
worker acts on signals only between jobs.

``InlineExecution(worker)`` is owned by the worker (``worker.execution``),
as is ForkingExecution (forking.py), behind the same methods. It has no
state of its own; it has the worker mark the job running, set its title and
report to the master.
"""

import logging

from resqued.jobs import events, ownclient
from resqued.jobs.job import backtrace, exception_lineage, exception_name, perform, warm
from resqued.process.title import stamp
from resqued.resque.outcome import Failure
from resqued.worker import reports
from resqued.worker.execution import childready
from resqued.worker.execution.jobtimeout import warn_unenforced
from resqued.worker.execution.jobcapture import InlineCapture

log = logging.getLogger("resqued.worker")


class InlineExecution:
    # Signals wait for the running job to end: when the worker acts on one,
    # no job is running, and none can be killed.
    busy = False
    last_child = None   # no job child: a job's memory stays the worker's (recycle.py)

    def __init__(self, worker):
        self.worker = worker
        self.capture = InlineCapture()   # the job's output, as log lines
        for target in worker.registry.targets():
            warm(target)  # as a forking worker does, once (standbys.py)
        warn_unenforced(worker.registry.targets(), worker.id)
        ownclient.attach(worker.resque.url, worker.resque.keys.namespace)
        self.failures = childready.Failures(worker.id)
        self._warmed = False           # the childReady listeners have run here (once)

    def prepare(self, idle: bool = False) -> bool:
        """Before the first job: the childReady listeners, here, once. False
        while they fail: no job is taken (as a forking worker's, childready.py)."""
        if self._warmed:
            return True
        try:
            childready.run()
        except Exception as exc:
            delay = self.failures.failed("the worker", childready.describe_failure(exc))
            self.worker.show_title(f"Waiting: childReady listeners failed {self.failures.count} time(s)")
            self.worker.idle_wait(delay)
            return False
        self.failures.succeeded()
        self._warmed = True
        return True

    def run(self, job, target):
        """Run the job in this process. Returns (failure, skipped)."""
        marked = self.worker.mark_running(job)
        self.worker.show_title(f"Processing {job.queue} since {stamp()} [{job.job_class}]")
        # Said before the job runs: if the job ends the process (os._exit), the
        # master knows it died mid-job and recovers the job at once.
        self.worker.report(**reports.busy(job))
        self.capture.begin(job)
        try:
            outcome = None, not perform(job, target)
        except BaseException as exc:
            try:
                events.trigger("onFailure", exc, job)
            except Exception:
                log.exception("onFailure listener raised")
            failure = Failure(exception_name(exc), str(exc), backtrace(exc))
            failure.lineage = exception_lineage(exc)
            outcome = failure, False
        finally:
            self.capture.end()
        self.worker.read_marked(marked)
        return outcome

    def kill(self, reason: str | None = None) -> None:
        """Nothing runs while the worker acts on a signal (see ``busy``)."""

    def close(self) -> None:
        """Nothing to stop."""
