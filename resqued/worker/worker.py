"""The worker: reserve a job, fork a child to run it, record the outcome.

One process, one loop (``work``). Signal handlers only record; the loop dispatches them
between steps, and every wait (BLPOP, waiting for the job child, backing off while Redis is
away) ends as soon as a signal arrives.

The job runs as ``execution`` says (execution/: in a fresh child that reports through a pipe,
or inline); the worker records the outcome in one Redis transaction. A child that dies without
reporting (SIGKILL, OOM, ``os._exit``) is a dirty exit, recorded as a failure — never counted
as done. Redis outages are ridden out by ``outage`` (outage.py). Both are objects the worker
owns; they hold it and read its state explicitly.

Signals (Resque's meanings):
  QUIT        finish the current job, then exit
  TERM, INT   kill the current job (TERM, then KILL after term_timeout), then exit
  USR1        kill the current job, keep working
  USR2, CONT  pause (take no new jobs) / resume
"""

import logging
import os
import signal
import time

import redis

from resqued.redisio import direct, refusals
from resqued.jobs import events
from resqued.resque import wire
from resqued.redisio.deferred import Deferred
from resqued.config.workerspec import WorkerSpec
from resqued.worker.execution import Execution
from resqued.worker.execution.forking import ForkingExecution
from resqued.worker.execution.inline import InlineExecution
from resqued.jobs.job import Job
from resqued.resque.outcome import (INVALID_PAYLOAD, JOB_TIMEOUT, UNKNOWN_JOB, Failure, add_outcome,
                                    check_outcome_replies)
from resqued.process import logfile
from resqued.process.pidfile import Pidfile
from resqued.process.title import set_title
from resqued.resque.recovery import Recovery, client_name, inflight_queues
from resqued.exits import EXIT_BOOT_ERROR, EXIT_FAILURE, EXIT_OK, EXIT_REASONS, EXIT_RECYCLE_JOBS
from resqued.process.logs import counted, event, job_event
from resqued.process.memory import tree_memory
from resqued.worker.recycle import RecyclePolicy
from resqued.resque.presence import Registration
from resqued.jobs.allowlist import UnknownJob
from resqued.worker import retrying
from resqued.worker.outage import RedisOutage
from resqued.worker.reports import MasterReports, job_outcome
from resqued.protocols.reportpipe import JobOutcome, WorkerState
from resqued.worker.pausekey import PauseKey
from resqued.worker.reserve import Reserver, UnsupportedServer, check_server
from resqued.process.signals import SignalQueue, describe, wait_readable
from resqued.process.hostname import hostname

log = logging.getLogger("resqued.worker")

HANDLED_SIGNALS = (signal.SIGQUIT, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1,
                   signal.SIGUSR2, signal.SIGCONT, signal.SIGCHLD)
QUEUES_REREAD = 1.0   # how stale a busy "*" worker's list of queues may get
SIGNAL_EVENTS = {signal.SIGUSR2: "worker_paused", signal.SIGCONT: "worker_resumed"}   # the log's event names


class Worker:
    def __init__(self, resque, registry, spec: WorkerSpec):
        """``spec``: what the worker runs with (config/workerspec.py); kept
        as ``self.spec``, which its helpers read too."""
        self.resque = resque
        self.keys = resque.keys
        self.redis = resque.redis
        # Kept, not taken from the pool per job (direct.Held): the outcome's
        # transaction, and the "running" records whose replies are read later.
        self._outcome_conn, self._deferred_conn = direct.Held(self.redis), direct.Held(self.redis)
        self.registry = registry
        self.spec = spec
        self.hostname = hostname()
        self.pid = os.getpid()
        self.id = f"{self.hostname}:{self.pid}:{spec.name}"
        # Every connection carries our id, so that whoever recovers our jobs
        # after our death can first end what we left in flight (recovery.py).
        self.redis.connection_pool.connection_kwargs["client_name"] = client_name(self.id)
        self.redis.connection_pool.disconnect()
        self.signals = SignalQueue(HANDLED_SIGNALS)
        self.recovery = Recovery(self.redis, self.keys, spec.on_lost, spec.max_lost)
        self.registration = Registration(self.redis, self.keys, self.id, self.hostname, spec.heartbeat_interval,
                                         self.recovery)
        self.reserver = Reserver(self.redis, self.keys, self.id, self.signals, (spec.wait_replicas, spec.wait_timeout))
        self.outage = RedisOutage(self)
        self.pause_key = PauseKey(self)
        self.recycle = RecyclePolicy(spec.max_jobs, spec.max_memory)
        self.reports = MasterReports(spec.report_fd)
        self.pidfile = Pidfile(spec.pidfile) if spec.pidfile else None
        self.shutdown = False
        self.paused = spec.start_paused
        self.exit_code = EXIT_OK
        self.settled = False        # it exits with nothing in its in-flight lists
        self.jobs_done = 0
        self._recycle_due = None    # (exit code, why): decided as the last job's outcome was recorded
        self._title = None
        self._held = None           # (queue, raw): taken with the last outcome, not yet run
        self._unrecorded = False    # a job ran whose outcome Redis refused for good (_record)
        self.killed_by_stop = False   # TERM/INT killed the running job: give it back, do not fail it
        self._take_from = []        # the queues, in priority order, that it was taken from
        self._queues_read_at = 0.0
        # Built last: it reads the worker's id, signals, registry and spec.
        self.execution: Execution = ForkingExecution(self) if spec.fork else InlineExecution(self)

    # -- main loop ---------------------------------------------------------
    def work(self) -> int:
        try:
            return self._work()
        except UnsupportedServer as exc:
            log.error("worker %s cannot start: %s", self.id, exc)
            return EXIT_BOOT_ERROR
        except redis.RedisError as exc:
            if not refusals.lacks_permission(exc):
                raise
            # Waiting will not grant it: one line, and an error exit (what it
            # had in flight is recovered), which its supervisor counts
            # toward a FAILED pool (judge_exit: it dies soon after start).
            log.error("worker %s cannot work: the Redis user lacks a permission resqued needs (%s); "
                      "`resqued --check` lists what it lacks", self.id, refusals.describe(exc))
            return EXIT_FAILURE

    def _work(self) -> int:
        self.signals.install()
        if self.pidfile:
            self.pidfile.create()
        log.info("worker %s starting", self.id, extra=event("worker_starting", worker=self.id))
        reserving = False
        try:
            self.outage.retry(lambda: check_server(self.redis), until_shutdown=True)
            self.outage.retry(self.registration.register, until_shutdown=True)
            if not self.shutdown:
                events.trigger("beforeFirstFork", self)
                reserving = True
                self._loop()
        finally:
            self.report(state=WorkerState.STOPPING)
            self.execution.close()
            emptied = not self._unrecorded
            if reserving and emptied:
                # No job runs now: whatever is left in our in-flight lists (a
                # job taken with the last outcome, one taken by a command whose
                # reply was lost) goes back to the head of its queue.
                emptied = (self.outage.retry(self._give_back_held, until_shutdown=True)
                           and self.outage.retry(self._reclaim, until_shutdown=True))
            self.settled = bool(emptied)
            if emptied:
                # Redis away now: the registration is left for a prune, with nothing to recover.
                self.outage.retry(self.registration.unregister, until_shutdown=True)
            else:
                # Redis was away as we stopped, or refused a job's outcome. Unregistering
                # without emptying the lists would leave their jobs where nobody looks; a worker
                # left registered is pruned once its heartbeat is stale, and the prune recovers
                # them (a master recovers them at once).
                log.warning("worker %s: stopping with jobs still in its in-flight lists (%s); its master, "
                            "or the next prune of this worker, recovers them", self.id,
                            "a job's outcome was refused" if self._unrecorded else "Redis unavailable")
            self.reserver.close()
            self.reports.flush()   # the finished jobs no report carried yet: the master's metrics
            if self.pidfile:
                self.pidfile.remove()
            log.info("worker %s stopped after %s%s", self.id, counted(self.jobs_done, "job"),
                     f" ({EXIT_REASONS[self.exit_code]})" if self.exit_code in EXIT_REASONS else "",
                     extra=event("worker_stopped", worker=self.id, exit_code=self.exit_code))
        return self.exit_code

    def _loop(self) -> None:
        while True:
            logfile.follow()  # the master reopened its log (HUP): write to the new file too
            self.dispatch_signals()
            if self.shutdown or self._orphaned():
                return
            if self.paused or self.outage.retry(self.pause_key.read, until_shutdown=True):
                self.outage.retry(self._give_back_held, until_shutdown=True)
                self.outage.retry(lambda: self.registration.mark_paused(True), until_shutdown=True)
                self.show_title("Paused")
                self.report(state=WorkerState.PAUSED)
                self.idle_wait(self.spec.interval or 1.0)
                continue
            if self._held is not None and self.reserver.must_give_back(self._held[0]):
                self.outage.retry(self._give_back_held, until_shutdown=True)   # its queue was just paused
            if self._held is not None:
                if not self.execution.prepare():  # taken with the last outcome: the queue is busy
                    self.outage.retry(self._give_back_held, until_shutdown=True)   # no child for it now
                    continue
                reserved, self._held = self._held, None
                queues = self._take_from
                if "*" in self.spec.queues and time.monotonic() - self._queues_read_at >= QUEUES_REREAD:
                    queues = self.outage.retry(self._current_queues, until_shutdown=True) or queues
            else:
                queues = self.outage.retry(self._current_queues, until_shutdown=True)
                if queues is None or (self.outage.reclaim_due and
                                      not self.outage.retry(self._reclaim, until_shutdown=True)):
                    continue
                if not self.execution.prepare(idle=True):  # fork while idle, not once the job is here
                    continue   # (childReady listeners fail: no job is taken)
                self.show_title(f"Waiting for {self.spec.name}")
                self.outage.retry(lambda: self.registration.mark_paused(False), until_shutdown=True)
                self.report(state=WorkerState.IDLE)
                reserved = self.outage.retry(lambda: self.reserver.pop(queues, self._wait_time()),
                                             until_shutdown=True)
            if reserved is not None:
                self._take_from = queues
                self._process(*reserved)
                if self._should_recycle():
                    return
            self.beat_if_due()

    def _may_take_next(self) -> bool:
        """Whether to take the next job along with this one's outcome: not
        when this worker is about to stop, pause or recycle, and not after a
        connection error until its in-flight lists are reclaimed."""
        # Act on what came in during the job first: a QUIT or USR2 stops the
        # take, and the SIGCHLD of a job child's exit must not (it would, as
        # a pending signal, in nearly every forked job).
        self.dispatch_signals()
        # Decided before the outcome's transaction, so that a worker about to
        # recycle takes no next job (it would only give it back).
        self._recycle_due = self._recycle_decision()
        return not (self.shutdown or self.paused or self.outage.reclaim_due or self.signals.has_pending()
                    or self._recycle_due is not None
                    or (self.spec.parent_pid is not None and os.getppid() != self.spec.parent_pid))

    def _give_back_held(self) -> bool:
        if self._held is not None:
            self.reserver.give_back(self._held[0])
            self._held = None
        return True

    def _reclaim(self) -> bool:
        moved = self.reserver.reclaim(inflight_queues(self.redis, self.keys, self.id))
        self.outage.reclaim_due = False
        if moved:
            log.warning("worker %s: %d job(s) taken by a command whose reply was lost went back "
                        "to the head of their queue", self.id, moved)
        return True

    def _recycle_decision(self) -> tuple[int, str] | None:
        """Whether to leave once the job just run is recorded: (exit code, why)."""
        # The worker's own processes: not the job child just served (it may
        # still be tearing its memory down), whose memory dies with it.
        finished = self.execution.last_child
        return self.recycle.after_job(self.jobs_done + 1,
                                      lambda: tree_memory(self.pid, exclude={finished} if finished else ()))

    def _should_recycle(self) -> bool:
        decision, self._recycle_due = self._recycle_due, None
        if decision is None:
            return False
        code, why = decision
        # After max_jobs it is routine; past max_memory, worth a look.
        (log.info if code == EXIT_RECYCLE_JOBS else log.warning)(
            "worker %s: %s (%s done)%s", self.id, EXIT_REASONS[code], counted(self.jobs_done, "job"),
            f": {why}" if why else "", extra=event("worker_recycled", worker=self.id, reason=EXIT_REASONS[code]))
        self.exit_code = code
        return True

    def report(self, **state) -> None:
        """Tell the master what we are doing (reports.py)."""
        if not self.reports.send(state, pid=self.pid, jobs=self.jobs_done, paused=self.paused) and not self.shutdown:
            # Nobody reads: the master is gone, or a spawner died before it
            # could tell the master it forked us (spawner/main.py). Either way no
            # one would replace, signal or recover us: stop, as when orphaned.
            log.warning("worker %s: the master does not read its reports: stopping", self.id)
            self.shutdown = True

    def _wait_time(self) -> float:
        wait = self.spec.interval if self.spec.interval > 0 else wire.HEARTBEAT_INTERVAL
        return max(0.01, min(wait, self.registration.heartbeat_due_in() or 0.01))

    def _current_queues(self) -> list[str]:
        queues = self.spec.queues
        if "*" not in queues:
            return self.reserver.usable(list(queues))
        # "*" is every queue, alphabetically, re-read before each reservation
        # so that new queues are picked up.
        known = sorted(q.decode() for q in self.redis.smembers(self.keys.queues))
        self._queues_read_at = time.monotonic()
        explicit = [q for q in queues if q != "*"]
        return self.reserver.usable(explicit + [q for q in known if q not in explicit])

    def _orphaned(self) -> bool:
        master = self.spec.parent_pid
        if orphaned := master is not None and os.getppid() != master:
            log.warning("worker %s: master %d is gone; stopping", self.id, master)
        return orphaned

    def show_title(self, text: str) -> None:
        if text != self._title:
            set_title(text)
            self._title = text

    def idle_wait(self, seconds: float) -> None:
        if not self.signals.has_pending():
            wait_readable([self.signals], min(seconds, self.registration.heartbeat_due_in() or seconds))
        self.beat_if_due()

    def beat_if_due(self) -> None:
        if self.registration.heartbeat_due_in() <= 0:
            try:
                self.registration.heartbeat()
                if not self.execution.busy:
                    self.registration.prune_if_due()
            except redis.RedisError as exc:
                self.outage.absorb(exc)

    # -- signals -----------------------------------------------------------
    def dispatch_signals(self) -> None:
        for signum in self.signals.drain():
            if signum == signal.SIGCHLD:
                continue  # only wakes the wait for the job child
            log.info("worker %s received %s", self.id, describe(signum), extra=event(
                SIGNAL_EVENTS.get(signum, "worker_signal"), worker=self.id, signal=describe(signum)))
            if signum == signal.SIGQUIT:
                self.shutdown = True
            elif signum in (signal.SIGTERM, signal.SIGINT):
                self.shutdown = True
                self.kill_job_for_stop(f"the worker is stopping ({describe(signum)})")
            elif signum == signal.SIGUSR1:
                self.execution.kill()
            elif signum == signal.SIGUSR2:
                self.paused = True
                self.report(**self._busy_report() if self.execution.busy else {"state": WorkerState.PAUSED})
            elif signum == signal.SIGCONT:
                self.paused = False
                self.report(**self._busy_report() if self.execution.busy else {"state": WorkerState.IDLE})

    def _busy_report(self) -> dict:
        # Said again with the job it still runs: `resquectl status` shows it.
        last = self.reports.last_state
        return last if last.get("state") == WorkerState.BUSY else {"state": WorkerState.BUSY}

    # -- one job -----------------------------------------------------------
    def _process(self, queue: str, raw: bytes) -> None:
        logfile.follow()  # the job's lines, after a wait that may have outlasted a HUP
        picked = time.time()   # its wait in the queue ends: the metrics' wait
        try:
            payload = wire.decode_payload(raw)
        except wire.InvalidPayload as exc:
            log.error("worker %s: bad item on queue %s: %s", self.id, queue, exc,
                      extra=event("job_bad_payload", worker=self.id, queue=queue, error=str(exc)))
            self._record(queue, raw, wire.raw_payload_record(raw), Failure(INVALID_PAYLOAD, str(exc)))
            self.reports.finished(queue, None, JobOutcome.FAILED, 0.0, None, picked)
            return
        job = Job(queue, payload, raw, self.id)
        try:
            target = self.registry.resolve(job.job_class)
        except UnknownJob as exc:
            log.error("worker %s: job %s on %s refused: %s", self.id, job.label, queue, exc,  # exc names the class
                      extra=job_event("job_refused", job, worker=self.id, error=str(exc)))
            self._record(queue, raw, payload, Failure(UNKNOWN_JOB, str(exc)))
            self.reports.finished(queue, None, JobOutcome.FAILED, 0.0, payload, picked)
            return
        log.info("job %s %s on %s started", job.label, job.job_class, queue, extra=job_event("job_started", job))
        started = time.monotonic()
        if (outcome := self.execution.run(job, target)) is None:   # no job child ready for it (childReady)
            self._held = (queue, raw)   # the loop gives it back
            return
        failure, skipped = outcome
        elapsed = (time.monotonic() - started) * 1000
        if failure is not None and self.killed_by_stop and failure.exception != JOB_TIMEOUT:
            # Whatever it reported (a job may catch TERM and raise), the stop killed it.
            self.killed_by_stop = False
            log.warning("job %s %s on %s killed after %.0f ms by the stop: back to the head of its queue",
                        job.label, job.job_class, queue, elapsed, extra=job_event(
                            "job_killed", job, worker=self.id, duration_ms=round(elapsed, 3), reason="stop"))
            self._give_back_killed(queue, raw)
            self.reports.finished(queue, job.job_class, JobOutcome.REQUEUED, elapsed / 1000, payload, picked)
            return
        if failure is None:
            log.info("job %s %s on %s %s in %.0f ms", job.label, job.job_class, queue,
                     "skipped" if skipped else "done", elapsed, extra=job_event(
                         "job_skipped" if skipped else "job_done", job, worker=self.id, duration_ms=round(elapsed, 3)))
        elif not retrying.judge(job, target, failure, self.spec):    # a retried attempt: its own line, a delayed job
            log.warning("job %s %s on %s failed in %.0f ms: %s: %s", job.label, job.job_class, queue,
                        elapsed, failure.exception, failure.error, extra=job_event(
                            "job_failed", job, worker=self.id, duration_ms=round(elapsed, 3),
                            exception=failure.exception, error=failure.error))
        self._record(queue, raw, payload, failure)
        self.reports.finished(queue, job.job_class, job_outcome(failure, skipped), elapsed / 1000, payload, picked)

    def kill_job_for_stop(self, reason: str) -> None:
        """Kill the running job because the worker is going away (TERM, its
        master gone for too long), not because the job did wrong: it goes
        back to its queue (_give_back_killed), as Sidekiq's does at shutdown."""
        self.killed_by_stop = self.killed_by_stop or self.execution.busy
        self.execution.kill(reason)

    def _give_back_killed(self, queue: str, raw: bytes) -> None:
        """Settle the job a stop killed as a lost job: the head of its queue,
        with resqued_lost counted (so max_lost and on_lost apply), never the
        failed list. If Redis is away now, the job stays in flight for the
        master or the next prune to settle the same way."""
        why = f"the stop of worker {self.id} killed it"
        self.outage.retry(lambda: self.recovery.settle(self.id, queue, raw, why) or True, until_shutdown=True)

    def mark_running(self, job: Job) -> Deferred | None:
        """Send the working-on key and the running status; ``read_marked`` reads
        the replies (see deferred.py). While Redis is away the job runs
        unmarked rather than waiting: its outcome is what must not be lost."""
        commands = self.reserver.running_marks(job)   # those its take did not write (nextmark.py)
        if not commands:
            return None
        try:
            return Deferred(self.redis, commands, held=self._deferred_conn)
        except redis.RedisError as exc:
            self.outage.absorb(exc)
            return None

    def read_marked(self, marked: Deferred | None) -> None:
        self.outage.wait_deferred(marked, "marking the job running")

    def _record(self, queue: str, raw: bytes, payload, failure: Failure | None) -> None:
        take_from = self._take_from if self._may_take_next() else []

        def commands():
            # One transaction: the job leaves the in-flight list exactly when its outcome is
            # recorded, so a crash can neither lose it nor leave a recorded job to be recovered
            # again. While the queue is busy, the next job is taken in it too (see reserve.py).
            take = take_from if not self.outage.reclaim_due else []
            batch = direct.Batch()
            add_outcome(batch, self.keys, self.id, queue, payload, failure)
            batch.execute_command("DEL", self.keys.worker(self.id))
            batch.execute_command("LREM", self.reserver.inflight(queue), 1, raw)
            taking = self.reserver.take_in(batch, take) if take else 0   # its replies come last
            # No silent retry: a lost reply must reach outage.retry (the next job may have moved: reclaim).
            replies = direct.execute(self.redis, batch.commands, transaction=True, retry=False, raise_errors=False,
                                     held=self._outcome_conn, then=self.reserver.wait.commands())
            replies = self.reserver.wait.split(replies)   # wait_replicas (replicawait.py): a WAIT after EXEC
            check_outcome_replies(batch.commands, replies[:len(replies) - taking])
            return take, replies[len(replies) - taking:]   # read once the outcome is recorded: never retried
        # An outcome is never dropped: keep trying until Redis takes it.
        try:
            took = self.outage.retry(commands)
        except BaseException:
            # Refused for good (NOPERM, a bug): the job ran but stays in its in-flight list. Not to be
            # reclaimed as if never run: the recovery counts it lost (max_lost, on_lost) instead.
            self._unrecorded = True
            raise
        self._held, doubtful = self.reserver.taken_after_outcome(*took)
        self.outage.reclaim_due = self.outage.reclaim_due or doubtful
        self.jobs_done += 1
