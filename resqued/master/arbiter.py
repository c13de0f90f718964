"""The master: keeps every pool's workers alive, recycles them, reloads its
config safely, and answers ``resquectl``.

Single-threaded and event-driven, like gunicorn's arbiter: signal handlers
only record; the wakeup fd, the control socket and the workers' report pipes
end one wait (epoll); each turn of the loop dispatches signals, serves requests,
reaps, and reconciles desired workers with live ones (reconcile.plan).

The master never talks to Redis and does not load redis-py: its workers and
its recovery runs are forked by the spawner (resqued/spawner/, a fresh
interpreter: spawnerlink.py), and it adopts them.

What each signal does: signalactions.py.
"""

import logging
import os
import signal
import time

from resqued.config.limits import worker_bound
from resqued.master import workerprocess
from resqued.master import commandworkers, reconcile, signalactions, workerexits
from resqued.master.adopted import end_adopted
from resqued.master.control import ControlServer
from resqued.master.headline import Headline
from resqued.master.exporterlink import Exporter
from resqued.master.schedulerlink import SchedulerLink
from resqued.master.advertiserlink import AdvertiserLink
from resqued.master.helperprocess import HelperProcess, hand_exit
from resqued.master.jobcounts import JobCounts
from resqued.master.metricstally import Tally, exit_reason
from resqued.master.requestdecisions import (REQUEST_TIMEOUT, Pause, Reload, Restart, Resume, StopMaster, Wait,
                                             after_reload, after_restart)
from resqued.master.requests import MasterView, RequestHandlers
from resqued.master.restart import REPLACED, RestartView, RollingRestart
from resqued.process import logfile, logs
from resqued.process.hostname import hostname
from resqued.process.pidfile import Pidfile
from resqued.master.recoveryruns import RecoveryRuns
from resqued.master.reportpace import ReportPace
from resqued.master.settlehold import SettleHold
from resqued.master.reloadprobe import PROBING, ReloadProbe, reconfigured
from resqued.exits import EXIT_FAILURE, EXIT_OK
from resqued.process.signals import (SignalQueue, become_child_subreaper, collapse_repeats, describe,
                                     has_controlling_terminal, wait_ready)
from resqued.master.spawnerlink import Spawner, SpawnerError
from resqued.master.workercontrol import describe_exit, kill_stragglers, reaped, retire, signal_workers
from resqued.process.systemd import Notifier
from resqued.supervise.states import Exit, PoolSupervision, Stop

log = logging.getLogger("resqued.master")


class Arbiter:
    def __init__(self, config, loader, term_mode: str = "graceful", exit_when_failed: bool = False,
                 probe_reloads: bool = False):
        """``loader()`` re-reads the config file (raising ConfigError);
        ``probe_reloads``: a reloaded config's code is checked before it
        applies (reloadprobe.py). ``exit_when_failed``: once every pool is
        FAILED, stop and exit 1 rather than wait for a reload (env mode,
        whose config cannot change)."""
        self.exit_when_failed = exit_when_failed
        self.exit_code = EXIT_OK
        self.config = config
        self.loader = loader
        self.probe_reloads = probe_reloads
        self.reloading = ReloadProbe()      # a reload whose code a child of the spawner checks
        self.reload_error = None            # why the last reload was refused
        self.term_mode = term_mode
        self.name = os.path.basename(config.path)
        self.signals = SignalQueue(signalactions.SIGNALS)
        # Env mode without PIDFILE has neither (envmode/master.py).
        self.control = ControlServer(config.control_socket) if config.control_socket else None
        self.pidfile = Pidfile(config.pidfile) if config.pidfile else None
        self.notifier = Notifier()
        self.children: dict[int, workerprocess.Child] = {}
        self.supervision: dict[str, PoolSupervision] = {p.name: PoolSupervision() for p in config.pools}
        self.paused = False
        self.winched = False          # WINCH: every worker stopped, none started until HUP
        self.stopping: Stop | None = None   # a stop in progress: its mode and deadlines
        self.requests = RequestHandlers()   # resquectl's requests, status, READY: given view()
        self.restart = RollingRestart(self.name)  # resquectl restart: new code, pool by pool
        self.hostname = hostname()   # RESQUED_HOSTNAME, else the system's
        self.tally, self.exporter = Tally(), Exporter(self.name)   # metrics: what is counted, what serves it
        self.lost = RecoveryRuns(self.tally)
        self.settle_hold = SettleHold()   # a command pool's replacement waits for its settle
        self.job_counts = JobCounts()   # a command pool's max_jobs: its workers' counts, read from Redis
        self.spawner = Spawner(self.name)
        self.scheduler = SchedulerLink(self.name)   # moves delayed jobs, when the config enables it
        self.advertiser = AdvertiserLink(self.name)   # writes this master's record for resquectl fleet
        self._spawn_retry_at = 0.0
        self.headline = Headline(self.name, self.notifier)   # ps and systemd's STATUS=
        self.reports = ReportPace()   # when the workers' report pipes are read

    # -- lifecycle ---------------------------------------------------------
    def run(self) -> int:
        if self.pidfile:
            self.pidfile.create()
        try:
            if self.control:
                self.control.open()
            if self.config.pid_dir:
                os.makedirs(self.config.pid_dir, exist_ok=True)
            self.signals.install()
            if not become_child_subreaper():
                # Without it the spawner's workers would be init's children:
                # the master could neither reap them nor see them die.
                raise OSError("cannot become a child subreaper (prctl PR_SET_CHILD_SUBREAPER): "
                              "resqued's master (-c, or env mode with COUNT > 1) needs Linux 3.4 or later")
            log.info("master %d managing %s", os.getpid(), ", ".join(f"{p.name}={p.count}" for p in self.config.pools)
                     or "no pools", extra=logs.event("master_started"))
            while not (self.stopping and not self.children and not self.lost):
                self._turn()
            self.restart.abandon()
            self.spawner.stop()
            for kept in self.kept():   # the scheduler and the advertiser: TERM (a lock, a record to release)
                kept.stop()
            end_adopted(self.config.term_timeout)
            log.info("master %d stopped", os.getpid(), extra=logs.event("master_stopped"))
            return self.exit_code
        finally:
            self.requests.abandon_waiting()
            self.restart.abandon()
            self.spawner.stop()
            for kept in self.kept():
                kept.stop()
            if self.control:
                self.control.close()
            if self.pidfile:
                self.pidfile.remove()

    def _turn(self) -> None:
        # CHLD only wakes the loop (reaping follows); repeats of a signal are
        # one action, but each TTIN/TTOU counts and a second TERM means "now".
        for signum in collapse_repeats(self.signals.drain(), ignored=(signal.SIGCHLD,), counted=(
                signal.SIGTTIN, signal.SIGTTOU, signal.SIGTERM, signal.SIGINT)):
            action = signalactions.decide(signum, self.term_mode, self.stopping)
            if action is not None and not isinstance(action, signalactions.StopUntilHup):
                log.info("master received %s", describe(signum),   # WINCH says whether it heeds it
                         extra=logs.event("master_signal", signal=describe(signum)))
            self._apply(action)
            self.notifier.watchdog()   # a reload takes a while: systemd must not think us hung
        self._finish_reload()
        self._reap()
        self.reports.read_due(self.children.values(), time.monotonic())   # once a pace: what the turn shows
        commandworkers.check(self.children.values(), self.supervision, self.job_counts.counts)
        self.job_counts.start_due(self.spawner, self.children.values(), self.config)
        self._keep_spawner()
        for kept in self.kept():
            kept.start_due(self.config)
        if self.stopping:
            self._enforce_stop_deadlines()
        else:
            if not self.winched:
                self._reconcile()
            self._step_restart()
        # After the replacements are forked: they need the CPU more urgently.
        self._recover_lost_jobs()
        if self.requests.answer_waiting(self._apply, self.view):   # the config is applied: READY=1
            self.notifier.ready(self.requests.summary(self.view()))
        self.headline.show(*self.requests.headline(self.view()))
        self.notifier.watchdog()
        if self.signals.has_pending():
            return
        # What the helpers wait on: the spawner's socket, and during a restart
        # the new spawner's until it says it is ready.
        watched = [(helper, waitable) for helper in self.helpers() for waitable in helper.waitables()]
        control, sending = self.control.waitables() if self.control else ([], [])
        urgent = not self.requests.ready_sent or self.requests.waiting or self.stopping or self.restart.active \
            or self.reloading.active
        reports = self.reports.watched(self.children.values(), urgent, time.monotonic())
        ready, writable = wait_ready([self.signals, *(w for _, w in watched), *control, *reports],
                                     sending, self._next_timeout())
        for helper, waitable in watched:
            if waitable in ready:
                helper.on_readable(waitable)
        self.reports.read(self.children.values(), ready, asked=any(c in ready for c in control))
        for conn in self.control.service(ready, writable) if self.control else ():
            self.requests.handle(conn, self._apply, self.view)

    def _apply(self, action):
        """Do an action a request (requestdecisions.py) or a signal
        (signalactions.py; None: nothing) asks for; returns what follows it."""
        if isinstance(action, Reload):
            if action.hup:
                logfile.reopen_or_keep(log)
            error = self.reload(action.hup)
            return Wait("probed", REQUEST_TIMEOUT) if error is PROBING else after_reload(error, self.config.on_hup)
        if isinstance(action, Restart):
            return after_restart(self._start_restart(action.pools))
        if isinstance(action, StopMaster):
            self.stop(action.mode, action.bounded)
        elif isinstance(action, (Pause, Resume)):
            self.paused = isinstance(action, Pause)
            signal_workers(commandworkers.to_signal(self.children.values(), self.paused),
                           signal.SIGUSR2 if self.paused else signal.SIGCONT)
        elif isinstance(action, signalactions.RelayToWorkers):
            signal_workers(self.children.values(), action.signum)
        elif isinstance(action, signalactions.AdjustCounts):
            self._adjust(action.step)
        elif isinstance(action, signalactions.StopUntilHup):
            self.winch()
        elif action is not None:
            raise TypeError(f"no such action: {action!r}")   # a new one must be applied here
        return getattr(action, "then", None)

    def view(self) -> MasterView:
        """All that requests.py reads of the master, now, as one frozen value."""
        return MasterView(self.config, tuple(self.children.values()), dict(self.supervision), self.desired_counts(),
                          bool(self.stopping), self.winched, self.paused, self.restart.active, self.restart.error,
                          self.reloading.active, self.reload_error, self.spawner.pid, self.spawner.ready,
                          self.tally, {"scheduler": self.scheduler.status(), "exporter": self.exporter.status()})

    def _next_timeout(self) -> float:
        now = time.monotonic()
        times = [now + 1.0]
        times += [s.backoff.until for s in self.supervision.values() if s.backoff.waiting(now)]
        times += self.stopping.deadlines() if self.stopping else []
        times += [t for t in (*(helper.deadline() for helper in self.helpers()),
                              self.control and self.control.next_deadline(), self.reports.deadline(),
                              commandworkers.next_check(self.children.values())) if t]
        due = self.notifier.watchdog_due_in()
        if due is not None:
            times.append(now + due)
        return max(0.005, min(times) - now)

    # -- commands (signals and resquectl) ----------------------------------
    def _adjust(self, step: int) -> None:
        """TTIN/TTOU: one more (or fewer) worker in every pool."""
        pools = [(p.name, p.count, self.supervision[p.name].adjust) for p in self.config.pools]
        adjusted = signalactions.adjust(step, pools, worker_bound(self.config.max_workers))
        if isinstance(adjusted, str):
            log.warning("%s", adjusted)
            return
        for name, value in adjusted.items():
            self.supervision[name].adjust = value

    def winch(self) -> None:
        if has_controlling_terminal():
            # A window resize, not an operator (resque-pool also honours it only as a daemon).
            log.debug("SIGWINCH ignored: the master has a controlling terminal")
        elif not (self.stopping or self.winched):
            log.info("master received SIGWINCH: stopping every worker until HUP")
            self.winched = True
            retire([c for c in self.children.values() if not c.stopping], "WINCH: stopped until HUP")

    def stop(self, mode: str, bounded: bool) -> None:
        if self.stopping and not self.stopping.escalates_to(mode):
            return
        self.stopping = self.stopping or Stop(mode)
        self.stopping.begin(mode, bounded, time.monotonic(), self.config.shutdown_timeout, self.config.term_timeout)
        self.notifier.stopping()
        if self.reloading.active:
            self.reloading.abandon()
            self.reload_error = "the master stopped before the new config was checked"
        if mode == "immediate":
            log.warning("stopping now: running jobs are killed (and go back to their queues)",
                        extra=logs.event("master_stopping", reason="immediate"))
        else:
            log.info("stopping: workers finish their jobs%s", f" (at most {self.config.shutdown_timeout:g}s)"
                     if bounded else "", extra=logs.event("master_stopping", reason="graceful"))
        signal_workers(self.children.values(), signal.SIGTERM if mode == "immediate" else signal.SIGQUIT)
        for child in self.children.values():
            child.stopping, child.stop_reason = True, "master stopping"

    def _enforce_stop_deadlines(self) -> None:
        turn_immediate, kill = self.stopping.due(time.monotonic())
        if turn_immediate:
            log.warning("shutdown_timeout of %gs passed: killing running jobs", self.config.shutdown_timeout,
                        extra=logs.event("master_stopping", reason="shutdown_timeout"))
            self.stop("immediate", bounded=True)
        if kill:
            kill_stragglers(self.children.values())

    def reload(self, hup: bool = False):
        """Re-read the config; keep the old one if the new one is invalid.
        Ends a WINCH either way. Returns None if applied (workers converge),
        PROBING while a child of the spawner checks its code (then
        _finish_reload applies it), or the error text. ``hup``: a HUP's."""
        self.notifier.reloading()
        resumed, self.winched = self.winched, False
        if resumed:
            log.info("the workers stopped by WINCH start again")
        # During a restart, until the new spawner is ready, the old one is no
        # longer the one to fork the next workers: a fresh interpreter checks.
        spawner = self.spawner if self.restart.spawner is None else None
        return self._reloaded(self.reloading.begin(self.loader, spawner, resumed, hup, self.probe_reloads))

    def _finish_reload(self) -> None:
        """The reload under way has its verdict (reloadprobe.py): apply it."""
        done = self.reloading.finish(time.monotonic())
        if done is not None:
            self._reloaded(done.outcome)
            if done.again:
                self.reload(hup=done.again_hup)

    def _reloaded(self, outcome):
        """Apply a reload's outcome (reloadprobe.py): PROBING, the error, or the new config."""
        if outcome is PROBING:
            return PROBING
        if isinstance(outcome, str):
            log.error("reload refused, still running the previous config: %s", outcome,
                      extra=logs.event("reload_refused", error=str(outcome)))
            self.tally.reloaded(ok=False)
            self.notifier.ready(f"reload refused: {outcome}")
            self.reload_error = outcome
            return outcome
        new, self.reload_error = outcome.config, None
        changed = workerprocess.global_settings(new) != workerprocess.global_settings(self.config)
        self.config, self.supervision = new, reconfigured(self.supervision, new.pools, outcome.resumed)
        if changed:
            retire([c for c in self.children.values() if not c.stopping], "redis, namespace or job settings changed")
        log.info("reloaded %s: %s", new.path, ", ".join(f"{p.name}={p.count}" for p in new.pools),
                 extra=logs.event("reload_applied"))
        self.requests.reloaded()  # READY=1 again once the new config is applied
        self.tally.reloaded(ok=True)
        if outcome.hup and new.on_hup == "restart":   # resque-pool's HUP restarts every worker too
            self._start_restart()
        return None

    # -- children ----------------------------------------------------------
    def desired_counts(self) -> dict:
        return {p.name: max(0, p.count + self.supervision[p.name].adjust) for p in self.config.pools}

    def _reconcile(self) -> None:
        now = time.monotonic()
        blocked = {name for name, s in self.supervision.items() if not s.may_start(now)} | \
            self.settle_hold.pools(self.lost, now)   # a command pool's dead worker's job settled first
        # A rolling restart runs a pool one worker over its count (restart.py).
        counts = {name: n + self.restart.surge(name) for name, n in self.desired_counts().items()}
        plan = reconcile.plan(self.config.pools, counts, self.children.values(), blocked)
        for pid, reason in plan.retire:
            retire([self.children[pid]], reason)
        # A command pool's workers are the master's own forks: no spawner to wait for.
        for pool in plan.spawn if now >= self._spawn_retry_at else ():
            if not (pool.command or self.spawner.ready):
                continue
            try:
                kind = commandworkers if pool.command else workerprocess   # who starts it: the master, the spawner
                child = kind.spawn(self.config, pool, self.paused, self.spawner, self.tally)
            except (SpawnerError, OSError) as exc:
                # E.g. fork failed (a process limit): try again in a second,
                # not on every turn of the loop (each job's report is one).
                log.error("cannot start a worker for %s: %s", pool.name, exc,
                          extra=logs.event("worker_start_failed", pool=pool.name, error=str(exc)))
                self._spawn_retry_at = now + 1.0
                break
            child.generation = self.restart.generation
            self.children[child.pid] = child
            log.info("started worker %d for %s", child.pid, pool.name, extra=child.event("worker_started"))

    def _keep_spawner(self) -> None:
        if self.spawner.due():
            try:
                self.spawner.start()
            except OSError as exc:   # exec failed (the interpreter gone): try again later, live on
                log.error("cannot start the worker spawner: %s; trying again in %.1fs", exc,
                          self.spawner.backoff.failed())

    # -- a rolling restart: restart.py decides, the master acts -------------
    def _start_restart(self, pools=None):
        error = self.restart.start(self.config, pools)
        for name in self.restart.chosen if error is None else ():
            self.supervision[name].failed = False   # the code imports now: a FAILED pool may start again
            self.supervision[name].backoff.succeeded()
        return error

    def _step_restart(self) -> None:
        if not self.restart.active:
            return
        step = self.restart.step(RestartView.of(self.children.values(), self.supervision))
        if step.switch_to is not None:
            self.spawner.stop()
            self.spawner = step.switch_to
        for part in step.pools:
            retire([self.children[pid] for pid in part.retire], REPLACED)
            self.restart.announce(part)

    def _reap(self) -> None:
        for pid, code in reaped():
            child = self.children.pop(pid, None)
            if child is None:
                hand_exit(self.helpers(), pid, code, describe_exit(code))
                continue
            child.read_reports()
            self.settle_hold.reaped(child, code)
            os.close(child.report_fd)
            workerprocess.remove_worker_pidfile(self.config, child)
            self._account(child, code)

    def helpers(self) -> list[HelperProcess]:
        """The processes the master runs besides its workers
        (helperprocess.py), in the order they are served. Read each turn: a
        rolling restart replaces ``self.spawner``. A new kind of helper is
        one more entry here."""
        return [self.spawner, self.restart, self.lost, self.reloading, self.job_counts, *self.kept()]

    def kept(self) -> list:
        """The processes kept running while the config asks for them (keptprocess.py)."""
        return [self.exporter, self.scheduler, self.advertiser]

    def _account(self, child, code: int) -> None:
        """A reaped worker: workerexits.py decides what its exit means, the master acts."""
        now, pool = time.monotonic(), self.supervision.get(child.pool.name)
        facts = workerexits.ExitFacts.of(child, code, now, describe_exit(code))
        decision = workerexits.judge(facts, self.hostname, pool_known=pool is not None)
        # decision.verdict: supervise/states.judge_exit's (STOPPED, RECYCLED, BOOT_FAILURE, DIED)
        if decision.lost:   # its in-flight job, if any, is recovered now (a recovery run)
            # A command worker's own id (host:pid:queues): the one dirtyexit.py settles first.
            worker = getattr(child, "worker_id", "") or workerexits.worker_id(facts, self.hostname)
            self.lost.add(worker, decision.lost, child.recovery, child.report.job if child.busy else None)
        self.tally.worker_exited(facts.pool, exit_reason(decision.verdict, code, mid_job=facts.busy and not facts.announced,
                                                         announced=facts.announced))
        delay = workerexits.record(decision, facts, pool, now, child.pool.start_retries)
        log.log(*workerexits.report(decision, facts, pool, delay),
                extra=workerexits.log_event(decision, facts, pool, self.hostname))
        if decision.verdict is Exit.BOOT_FAILURE and pool.failed and self.exit_when_failed \
                and all(p.failed for p in self.supervision.values()):
            log.error("every pool failed, and nothing can reload them: exiting", extra=logs.event("master_exiting"))
            self.exit_code = EXIT_FAILURE
            self.stop("graceful", bounded=True)

    def _recover_lost_jobs(self) -> None:
        self.lost.start_due(self.spawner)
        if self.lost and self.stopping and not self.children and \
                self.stopping.give_up_recovery(time.monotonic(), self.config.shutdown_timeout):
            self.lost.give_up()
