"""The master: keeps every pool's workers alive, recycles them, reloads its
config safely, and answers ``resquectl``.

Single-threaded and event-driven, like gunicorn's arbiter: signal handlers
only record; the wakeup fd, the control socket and the workers' report pipes
end one wait (epoll); each turn of the loop dispatches signals, serves requests,
reaps, and reconciles desired workers with live ones (reconcile.plan).

The master never talks to Redis and does not load redis-py: its workers and
its recovery runs are forked by the spawner (resqued/spawner/, a fresh
interpreter: spawnerlink.py), and it adopts them.

Signals: HUP reload; QUIT graceful stop (no limit); TERM/INT graceful stop
bounded by shutdown_timeout, then kill (``--term immediate``: kill at once);
USR2/CONT pause/resume; USR1 relay (kill running jobs); TTIN/TTOU one more /
one fewer worker in every pool; WINCH stop every worker until the next HUP
(resque-pool's meaning; ignored while the master has a controlling terminal,
where resizing the window sends it).
"""

import logging
import os
import signal
import socket
import time

from resqued.config.limits import worker_bound
from resqued.config.model import ConfigError
from resqued.master import workerprocess
from resqued.master import reconcile
from resqued.master.adopted import end_adopted
from resqued.master.control import ControlServer
from resqued.master.headline import Headline
from resqued.master.exporterlink import Exporter
from resqued.master.helperprocess import HelperProcess, hand_exit
from resqued.master.metricstally import Tally, exit_reason
from resqued.master.requestdecisions import Pause, Reload, Restart, Resume, StopMaster, after_reload, after_restart
from resqued.master.requests import RequestHandlers
from resqued.master.restart import REPLACED, RestartView, RollingRestart
from resqued.process import logfile
from resqued.process.pidfile import Pidfile
from resqued.master.recoveryruns import RecoveryRuns
from resqued.exits import EXIT_FAILURE, EXIT_OK, EXIT_REASONS
from resqued.process.signals import (SignalQueue, become_child_subreaper, collapse_repeats, describe,
                                     has_controlling_terminal, kill_tree, wait_ready)
from resqued.master.spawnerlink import Spawner, SpawnerError
from resqued.process.systemd import Notifier
from resqued.supervise.states import Exit, Pool, Stop, judge_exit, left_jobs_behind

log = logging.getLogger("resqued.master")

SIGNALS = (signal.SIGHUP, signal.SIGQUIT, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1,
           signal.SIGUSR2, signal.SIGCONT, signal.SIGTTIN, signal.SIGTTOU, signal.SIGWINCH, signal.SIGCHLD)


class Arbiter:
    def __init__(self, config, loader, term_mode: str = "graceful", exit_when_failed: bool = False):
        """``loader()`` re-reads the config file (raising ConfigError).
        ``exit_when_failed``: once every pool is FAILED, stop and exit 1
        rather than wait for a reload (env mode, whose config cannot change)."""
        self.exit_when_failed = exit_when_failed
        self.exit_code = EXIT_OK
        self.config = config
        self.loader = loader
        self.term_mode = term_mode
        self.name = os.path.basename(config.path)
        self.signals = SignalQueue(SIGNALS)
        # Env mode without PIDFILE has neither (envmode/pool.py).
        self.control = ControlServer(config.control_socket) if config.control_socket else None
        self.pidfile = Pidfile(config.pidfile) if config.pidfile else None
        self.notifier = Notifier()
        self.children: dict[int, workerprocess.Child] = {}
        self.pools: dict[str, Pool] = {p.name: Pool() for p in config.pools}
        self.paused = False
        self.winched = False          # WINCH: every worker stopped, none started until HUP
        self.stopping: Stop | None = None   # a stop in progress: its mode and deadlines
        self.requests = RequestHandlers(self)   # resquectl's requests, status, READY
        self.restart = RollingRestart(self.name)  # resquectl restart: new code, pool by pool
        self.hostname = socket.gethostname()
        self.tally, self.exporter = Tally(), Exporter(self.name)   # metrics: what is counted, what serves it
        self.lost = RecoveryRuns(self.tally)
        self.spawner = Spawner(self.name)
        self._spawn_retry_at = 0.0
        self.headline = Headline(self.name, self.notifier)   # ps and systemd's STATUS=

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
            log.info("master %d managing %s", os.getpid(), ", ".join(
                f"{p.name}={p.count}" for p in self.config.pools) or "no pools")
            while not (self.stopping and not self.children and not self.lost):
                self._turn()
            self.restart.abandon()
            self.spawner.stop()
            self.exporter.stop()
            end_adopted(self.config.term_timeout)
            log.info("master %d stopped", os.getpid())
            return self.exit_code
        finally:
            self.requests.abandon_waiting()
            self.restart.abandon()
            self.spawner.stop()
            self.exporter.stop()
            if self.control:
                self.control.close()
            if self.pidfile:
                self.pidfile.remove()

    def _turn(self) -> None:
        # CHLD only wakes the loop (reaping follows); repeats of a signal are
        # one action, but each TTIN/TTOU counts and a second TERM means "now".
        for signum in collapse_repeats(self.signals.drain(), ignored=(signal.SIGCHLD,), counted=(
                signal.SIGTTIN, signal.SIGTTOU, signal.SIGTERM, signal.SIGINT)):
            self._handle_signal(signum)
            self.notifier.watchdog()   # a reload takes a while: systemd must not think us hung
        self._reap()
        self._keep_spawner()
        self.exporter.start_due(self.config)
        if self.stopping:
            self._enforce_stop_deadlines()
        else:
            if not self.winched:
                self._reconcile()
            self._step_restart()
        # After the replacements are forked: they need the CPU more urgently.
        self._recover_lost_jobs()
        if self.requests.answer_waiting():   # the config is applied: READY=1
            self.notifier.ready(self.requests.summary())
        self.headline.show(*self.requests.headline())
        self.notifier.watchdog()
        if self.signals.has_pending():
            return
        # What the helpers wait on: the spawner's socket, and during a restart
        # the new spawner's until it says it is ready.
        watched = [(helper, waitable) for helper in self.helpers() for waitable in helper.waitables()]
        control, sending = self.control.waitables() if self.control else ([], [])
        ready, writable = wait_ready([self.signals, *(w for _, w in watched), *control, *self.children.values()],
                                     sending, self._next_timeout())
        for helper, waitable in watched:
            if waitable in ready:
                helper.on_readable(waitable)
        for child in self.children.values():
            if child in ready:
                child.read_reports()
        for conn in self.control.service(ready, writable) if self.control else ():
            self.requests.handle(conn, self._apply)

    def _apply(self, action):
        """Do an action requests.py decided (requestdecisions.py); returns what follows it."""
        if isinstance(action, Reload):
            return after_reload(self.reload(), self.config.on_hup)
        if isinstance(action, Restart):
            return after_restart(self._start_restart(action.pools))
        if isinstance(action, StopMaster):
            self.stop(action.mode, bounded=True)
        elif isinstance(action, Pause):
            self.pause()
        elif isinstance(action, Resume):
            self.resume()
        else:
            raise TypeError(f"no such action: {action!r}")   # a new one must be applied here
        return action.then

    def _next_timeout(self) -> float:
        now = time.monotonic()
        times = [now + 1.0]
        times += [s.backoff.until for s in self.pools.values() if s.backoff.waiting(now)]
        times += self.stopping.deadlines() if self.stopping else []
        times += [t for t in (*(helper.deadline() for helper in self.helpers()),
                              self.control and self.control.next_deadline()) if t]
        due = self.notifier.watchdog_due_in()
        if due is not None:
            times.append(now + due)
        return max(0.005, min(times) - now)

    # -- signals -----------------------------------------------------------
    def _handle_signal(self, signum: int) -> None:
        if signum == signal.SIGCHLD:
            return
        if signum == signal.SIGWINCH:
            self.winch()
            return
        log.info("master received %s", describe(signum))
        if signum == signal.SIGHUP:
            self._reopen_log()
            # resque-pool's HUP also restarts every worker: on_hup: restart.
            if self.reload() is None and self.config.on_hup == "restart":
                self._start_restart()
        elif signum == signal.SIGQUIT:
            self.stop("graceful", bounded=False)
        elif signum in (signal.SIGTERM, signal.SIGINT):
            # A second TERM while stopping gracefully means "now".
            now = self.term_mode == "immediate" or bool(self.stopping and self.stopping.graceful)
            self.stop("immediate" if now else "graceful", bounded=True)
        elif signum == signal.SIGUSR2:
            self.pause()
        elif signum == signal.SIGCONT:
            self.resume()
        elif signum == signal.SIGUSR1:
            self._signal_workers(signal.SIGUSR1)
        elif signum in (signal.SIGTTIN, signal.SIGTTOU):
            step = 1 if signum == signal.SIGTTIN else -1
            bound, why = worker_bound(self.config.max_workers)
            if step > 0 and sum(self.desired_counts().values()) + len(self.config.pools) > bound:
                log.warning("TTIN ignored: one more worker in every pool would pass %d (%s)", bound, why)
                return
            for pool in self.config.pools:
                state = self.pools[pool.name]
                state.adjust = max(-pool.count, state.adjust + step)

    def _reopen_log(self) -> None:
        """--daemonize's log, after a rotation that renamed it (resque-pool's
        HUP does this too); the other processes follow (logfile.py)."""
        try:
            logfile.reopen()
        except OSError as exc:
            log.error("cannot reopen the log file, still writing the old one: %s", exc)

    def _signal_workers(self, signum: int, only=None) -> None:
        for child in list(only or self.children.values()):
            try:
                os.kill(child.pid, signum)
            except ProcessLookupError:
                pass

    # -- commands (signals and resquectl) ----------------------------------
    def pause(self) -> None:
        self.paused = True
        self._signal_workers(signal.SIGUSR2)

    def resume(self) -> None:
        self.paused = False
        self._signal_workers(signal.SIGCONT)

    def winch(self) -> None:
        if has_controlling_terminal():
            # A window resize, not an operator (resque-pool also honours it only as a daemon).
            log.debug("SIGWINCH ignored: the master has a controlling terminal")
        elif not (self.stopping or self.winched):
            log.info("master received SIGWINCH: stopping every worker until HUP")
            self.winched = True
            self.retire([c for c in self.children.values() if not c.stopping], "WINCH: stopped until HUP")

    def stop(self, mode: str, bounded: bool) -> None:
        if self.stopping and not self.stopping.escalates_to(mode):
            return
        self.stopping = self.stopping or Stop(mode)
        self.stopping.mode = mode
        self.notifier.stopping()
        if mode == "immediate":
            log.warning("stopping now: running jobs are killed (and go back to their queues)")
            self._signal_workers(signal.SIGTERM)
            self.stopping.turn_immediate_at = None
            self.stopping.kill_at = time.monotonic() + self.config.term_timeout + 5.0
        else:
            log.info("stopping: workers finish their jobs%s",
                     f" (at most {self.config.shutdown_timeout:g}s)" if bounded else "")
            self._signal_workers(signal.SIGQUIT)
            if bounded:
                self.stopping.turn_immediate_at = time.monotonic() + self.config.shutdown_timeout
        for child in self.children.values():
            child.stopping, child.stop_reason = True, "master stopping"

    def _enforce_stop_deadlines(self) -> None:
        now, stop = time.monotonic(), self.stopping
        if stop.turn_immediate_at and now >= stop.turn_immediate_at:
            log.warning("shutdown_timeout of %gs passed: killing running jobs", self.config.shutdown_timeout)
            self.stop("immediate", bounded=True)
        if stop.kill_at and now >= stop.kill_at:
            stop.kill_at = None
            for child in list(self.children.values()):
                log.error("worker %d did not stop: SIGKILL to it and its jobs", child.pid)
                kill_tree(child.pid)

    def reload(self):
        """Re-read the config; keep the old one if the new one is invalid.
        Ends a WINCH either way. Returns None if applied (workers converge),
        or the error text."""
        self.notifier.reloading()
        resumed, self.winched = self.winched, False
        if resumed:
            log.info("the workers stopped by WINCH start again")
        try:
            new = self.loader()
        except ConfigError as exc:
            log.error("reload refused, still running the previous config: %s", exc)
            self.tally.reloaded(ok=False)
            self.notifier.ready(f"reload refused: {exc}")
            return str(exc)
        old_settings = workerprocess.global_settings(self.config)
        self.config = new
        # A reload resets TTIN/TTOU to the file's counts, except the one that
        # ends a WINCH: TTIN/TTOU while stopped set the counts workers return to.
        old = {p.name: self.pools.get(p.name, Pool()) for p in new.pools}
        self.pools = {p.name: Pool(recycles=old[p.name].recycles,
                                   adjust=max(-p.count, old[p.name].adjust) if resumed else 0)
                      for p in new.pools}
        if workerprocess.global_settings(new) != old_settings:
            self.retire([c for c in self.children.values() if not c.stopping],
                         "redis, namespace or job settings changed")
        log.info("reloaded %s: %s", new.path, ", ".join(f"{p.name}={p.count}" for p in new.pools))
        self.requests.reloaded()  # READY=1 again once the new config is applied
        self.tally.reloaded(ok=True)
        return None

    # -- children ----------------------------------------------------------
    def desired_counts(self) -> dict:
        return {p.name: max(0, p.count + self.pools[p.name].adjust) for p in self.config.pools}

    def _reconcile(self) -> None:
        now = time.monotonic()
        blocked = {name for name, s in self.pools.items() if not s.may_start(now)}
        alive = [reconcile.Alive(c.pid, c.pool, c.started, c.stopping) for c in self.children.values()]
        # A rolling restart runs a pool one worker over its count (restart.py).
        counts = {name: n + self.restart.surge(name) for name, n in self.desired_counts().items()}
        plan = reconcile.plan(self.config.pools, counts, alive, blocked)
        for pid, reason in plan.retire:
            self.retire([self.children[pid]], reason)
        can_spawn = self.spawner.ready and now >= self._spawn_retry_at
        for pool in plan.spawn if can_spawn else ():
            try:
                child = workerprocess.spawn(self.config, pool, self.paused, self.spawner, self.tally)
            except (SpawnerError, OSError) as exc:
                # E.g. fork failed (a process limit): try again in a second,
                # not on every turn of the loop (each job's report is one).
                log.error("cannot start a worker for %s: %s", pool.name, exc)
                self._spawn_retry_at = now + 1.0
                break
            child.generation = self.restart.generation
            self.children[child.pid] = child
            log.info("started worker %d for %s", child.pid, pool.name)

    def _keep_spawner(self) -> None:
        if self.spawner.due():
            try:
                self.spawner.start()
            except OSError as exc:   # exec failed (the interpreter gone): try again later, live on
                log.error("cannot start the worker spawner: %s; trying again in %.1fs", exc,
                          self.spawner.backoff.failed())

    def retire(self, workers, reason: str) -> None:
        for child in workers:
            log.info("retiring worker %d (%s): %s", child.pid, child.pool.name, reason)
            child.stopping, child.stop_reason = True, reason
            self._signal_workers(signal.SIGQUIT, only=[child])

    # -- a rolling restart: restart.py decides, the master acts -------------
    def _start_restart(self, pools=None):
        error = self.restart.start(self.config, pools)
        for name in self.restart.chosen if error is None else ():
            self.pools[name].failed = False   # the code imports now: a FAILED pool may start again
            self.pools[name].backoff.succeeded()
        return error

    def _step_restart(self) -> None:
        if not self.restart.active:
            return
        step = self.restart.step(RestartView.of(self.children.values(), self.pools))
        if step.switch_to is not None:
            self.spawner.stop()
            self.spawner = step.switch_to
        for part in step.pools:
            self.retire([self.children[pid] for pid in part.retire], REPLACED)
            self.restart.announce(part)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is None:
                hand_exit(self.helpers(), pid, status)   # else an orphan we adopted: reaped (see adopted.py)
                continue
            child.read_reports()
            os.close(child.report_fd)
            workerprocess.remove_worker_pidfile(self.config, child)
            self._account(child, os.waitstatus_to_exitcode(status))

    def helpers(self) -> list[HelperProcess]:
        """The processes the master runs besides its workers
        (helperprocess.py), in the order they are served. Read each turn: a
        rolling restart replaces ``self.spawner``. A new kind of helper is
        one more entry here."""
        return [self.spawner, self.restart, self.lost, self.exporter]

    def _account(self, child, code: int) -> None:
        how = f"exit code {code}" if code >= 0 else f"signal {describe(-code)}"
        announced = child.announced(code)
        mid_job = child.busy and not announced
        if left_jobs_behind(code, announced=announced, settled=child.settled):
            # Its in-flight job, if any, is recovered now (a recovery run).
            worker_id = f"{self.hostname}:{child.pid}:{child.pool.name}"
            self.lost.add(worker_id, f"worker {worker_id} died ({how}) while processing it", child.recovery,
                          child.report.job if child.busy else None)
        pool = self.pools.get(child.pool.name)
        verdict = judge_exit(code, stopping=child.stopping or pool is None, ready=child.ready,
                             busy=child.busy, announced=announced, uptime=time.monotonic() - child.started)
        self.tally.worker_exited(child.pool.name, exit_reason(verdict, code, mid_job=mid_job, announced=announced))
        if verdict is Exit.STOPPED:
            log.info("worker %d (%s) stopped (%s)", child.pid, child.pool.name, how)
            return
        if verdict is not Exit.RECYCLED:
            pool.last_exit, pool.last_error = how, child.last_error
        delay = pool.worker_exited(verdict, time.monotonic())
        if verdict is Exit.RECYCLED:
            log.info("worker %d (%s) %s; replacing it", child.pid, child.pool.name, EXIT_REASONS[code])
        elif verdict is Exit.DIED and code == EXIT_OK and announced:
            # Not a death: someone stopped it (a TERM or QUIT sent to the worker itself).
            log.info("worker %d (%s) exited on its own (%s) after %.0fs; replacing it",
                     child.pid, child.pool.name, how, time.monotonic() - child.started)
        elif verdict is Exit.DIED:
            log.warning("worker %d (%s) died (%s)%s after %.0fs; replacing it", child.pid, child.pool.name,
                        how, f" running {child.job_label()}" if mid_job else "", time.monotonic() - child.started)
        elif pool.failed:
            log.error("pool %s failed: %s%s; not restarting until a reload", child.pool.name, pool.reason,
                      f"; last error: {pool.last_error}" if pool.last_error else "")
            if self.exit_when_failed and all(p.failed for p in self.pools.values()):
                log.error("every pool failed, and nothing can reload them: exiting")
                self.exit_code = EXIT_FAILURE
                self.stop("graceful", bounded=True)
        else:
            log.warning("worker %d (%s) died at boot (%s); next start in %.1fs",
                        child.pid, child.pool.name, how, delay)

    def _recover_lost_jobs(self) -> None:
        self.lost.start_due(self.spawner)
        if self.lost and self.stopping and not self.children:
            # Nothing left to wait for but Redis: a stop must not hang on it forever.
            if self.stopping.give_up_recovery_at is None:
                self.stopping.give_up_recovery_at = time.monotonic() + self.config.shutdown_timeout
            elif time.monotonic() >= self.stopping.give_up_recovery_at:
                self.lost.give_up()
