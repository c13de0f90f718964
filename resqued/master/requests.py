"""What the master answers: resquectl's requests on its control socket (and
the replies that wait for a condition: paused, resumed, applied), its status,
and the one-line summary systemd and the process title show.

``RequestHandlers`` is owned by the master (``master.requests``), as
gunicorn's CommandHandlers is by its arbiter. It never reads the master:
the master hands it a ``MasterView``, one frozen value of all it reads
(``Arbiter.view``, passed as a function where an action may change it).
What a request needs done is decided by requestdecisions.py from the plain
values ``snapshot`` takes of that view; the master applies the actions
(``handle``'s ``apply``), and this replies. Its own state is the requests
waiting for their condition and whether systemd was told READY.
"""

import collections
import os
import time
from dataclasses import dataclass

from resqued.config.model import ENV_MODE_PATH
from resqued.master import workerprocess
from resqued.master import reconcile
from resqued.master.requestdecisions import (ACTIONS, MasterState, PoolView, ReplyStatus, Wait, WorkerView,
                                             decide, ready_due, settle)
from resqued.process.logs import counted
from resqued.process.memory import resident
from resqued.protocols.controlsocket import Answer, Command, Metrics, Refusal, Status
from resqued.protocols.reportpipe import WorkerState
from resqued.config.redisurl import redact


@dataclass(frozen=True)
class MasterView:
    """What the answers read of the master, taken at one moment (Arbiter.view)."""
    config: object                 # the Config it runs
    children: tuple = ()           # its workers (workerprocess.Child)
    supervision: dict = None       # pool name -> PoolSupervision
    counts: dict = None            # pool name -> desired workers (TTIN/TTOU applied)
    stopping: bool = False
    winched: bool = False
    paused: bool = False
    restart_active: bool = False
    restart_error: str | None = None
    reload_probing: bool = False   # a reload's code is being checked
    reload_error: str | None = None
    spawner_pid: int | None = None
    spawner_ready: bool = False
    tally: object = None           # metricstally.Tally: what the metrics count (read at a scrape)
    kept: dict = None              # "scheduler", "exporter" -> {"pid", "state"} (master/keptprocess.py)


class RequestHandlers:
    def __init__(self):
        self.waiting = []         # (connection, Wait, deadline): answered once its condition holds
        self.ready_sent = False   # systemd told READY=1 (again after each reload)

    def handle(self, conn, apply, view) -> None:
        """Answer ``conn``'s request, now or once it may be: ``apply(action)``
        has the master do an action (requestdecisions.ACTIONS) and returns
        what follows it; ``view()`` is the master now (a MasterView)."""
        if conn.request.command == Command.METRICS:   # the exporter's, answered even while stopping
            conn.reply(Answer(metrics=self.metrics(view())))
            return
        try:
            step = decide(conn.request, self.snapshot(view()))
            while isinstance(step, ACTIONS):
                step = apply(step)
            if isinstance(step, Wait):
                self.waiting.append((conn, step, time.monotonic() + step.within))
            else:
                conn.reply(self._reply(step, view(), memory=conn.request.memory, workers=conn.request.workers))
        except OSError as exc:
            # Out of descriptors (EMFILE) while reading /proc for a status,
            # say: this request fails, the master goes on.
            conn.reply(Refusal(f"the master cannot answer {conn.request.command.value!r} now: {exc}"))

    def _reply(self, step, view: MasterView, memory: bool = True, workers: bool = True):
        if isinstance(step, ReplyStatus):
            return Answer(self.status(view, memory, workers), pid=os.getpid() if step.with_pid else None,
                          message=step.message)
        return step

    def reloaded(self) -> None:
        """A new config: READY=1 again once it is applied."""
        self.ready_sent = False

    @property
    def reloading(self) -> bool:
        """A reload request waits for its config to be applied."""
        return any(wait.until in ("probed", "applied") for _, wait, _ in self.waiting)

    def answer_waiting(self, apply, view) -> bool:
        """Answer the waiting requests whose condition holds or whose time
        is up; ``apply`` and ``view`` as handle's (apply: for what follows a
        checked reload). Returns whether systemd is due READY=1 (the master
        sends it)."""
        if self.ready_sent and not self.waiting:
            return False   # nothing to decide (the loop turns at each job's report)
        state = self.snapshot(view())
        due = ready_due(state, self.ready_sent)
        self.ready_sent = self.ready_sent or due
        still, now, followed = [], time.monotonic(), False
        for conn, wait, deadline in self.waiting:
            step = settle(wait, deadline, state, now)
            if step is None:
                still.append((conn, wait, deadline))
                continue
            while isinstance(step, ACTIONS):
                step = apply(step)
            if isinstance(step, Wait):
                still.append((conn, step, now + step.within))
                followed = True
                continue
            try:
                conn.reply(self._reply(step, view()))
            except OSError as exc:   # as in handle(): no descriptor left to read /proc
                conn.reply(Refusal(f"{wait.until}, but the master cannot tell its status now: {exc}"))
        self.waiting = still
        # A checked reload now waits to be applied, which may hold already.
        return (self.answer_waiting(apply, view) or due) if followed else due

    def abandon_waiting(self) -> None:
        """The master stops: each waiting request is told it never will be answered."""
        for conn, wait, _ in self.waiting:
            conn.reply(Refusal(f"the master stopped before it was {wait.until}"))

    @staticmethod
    def snapshot(view: MasterView) -> MasterState:
        """What the decisions read (requestdecisions.MasterState): plain values."""
        pools = {pool.name: pool for pool in view.config.pools}
        settings = workerprocess.global_settings(view.config)
        same = {}   # id(a child's PoolConfig) -> its pool's settings are today's: workers share a few
        for c in view.children:
            if id(c.pool) not in same:
                same[id(c.pool)] = c.pool.name in pools and reconcile.same_settings(c.pool, pools[c.pool.name])
        workers = tuple(WorkerView(c.pid, c.pool.name, c.stopping, c.ready, c.paused, c.busy,
                                   current=same[id(c.pool)] and c.settings == settings)
                        for c in view.children)
        return MasterState(workers, tuple(PoolView(name, view.counts[name], view.supervision[name].failed)
                                          for name in pools),
                           stopping=view.stopping, winched=view.winched, env_mode=view.config.path == ENV_MODE_PATH,
                           restart_active=view.restart_active, restart_error=view.restart_error,
                           reload_probing=view.reload_probing, reload_error=view.reload_error,
                           on_hup=view.config.on_hup)

    def status(self, view: MasterView, memory: bool = True, workers: bool = True) -> Status:
        """``workers=False``: no worker's record, but each pool's count of
        workers by state (the fleet advertiser's, every 2 s: describing and
        encoding 64 workers was 1.1 ms of the master's CPU each time)."""
        pools = []
        for pool in view.config.pools:
            state = view.supervision[pool.name]
            pools.append({"queues": list(pool.queues), "count": view.counts[pool.name],
                          "alive": sum(1 for c in view.children if c.pool.name == pool.name and not c.stopping),
                          "failed": state.failed, "reason": state.reason or None,
                          "last_exit": state.last_exit or None, "last_error": state.last_error or None,
                          "recycles": state.recycles, "restarts": state.restarts,
                          "max_memory": pool.max_memory, "max_jobs": pool.max_jobs,
                          "kind": pool.kind, "command": list(pool.command) if pool.command else None})
            if not workers:
                pools[-1]["states"] = dict(collections.Counter(
                    c.describe_state() for c in view.children if c.pool.name == pool.name))
        return {"master": {"pid": os.getpid(), "config": view.config.path, "state": self.state(view),
                           "rss": resident(os.getpid()), "worker_count": len(view.children)},
                "spawner": self._spawner_status(view),
                **{name: {**kept, "rss": _rss(kept["pid"])} for name, kept in (view.kept or {}).items()},
                "pools": pools,
                "workers": [c.describe(memory) for c in sorted(view.children, key=lambda c: c.pid)] if workers else []}

    @staticmethod
    def metrics(view: MasterView) -> Metrics:
        """The master's part of the metrics (the exporter reads the rest
        from Redis, and each worker's memory from /proc): cheap to build,
        at each scrape."""
        pools = {}
        for child in view.children:
            job_child = child.report.child if child.busy else None   # its memory is the job's, not the pool's
            pools.setdefault(child.pool.name, []).append([child.pid, child.describe_state(), job_child])
        return {"tally": view.tally.to_json(pool.name for pool in view.config.pools),
                "pools": [{"name": pool.name, "failed": view.supervision[pool.name].failed,
                           "workers": pools.get(pool.name, [])} for pool in view.config.pools]}

    @staticmethod
    def _spawner_status(view: MasterView) -> dict:
        pid = view.spawner_pid
        state = "ready" if view.spawner_ready else "starting" if pid else "down"
        return {"pid": pid, "state": state, "rss": _rss(pid)}

    @staticmethod
    def state(view: MasterView) -> str:
        """The master's state, in one word."""
        if view.stopping:
            return "stopping"
        if view.winched:
            return "winched"
        if view.paused:
            return "paused"
        return "restarting" if view.restart_active else "running"

    def headline(self, view: MasterView) -> tuple[str, str]:
        """The process title's state, and systemd's STATUS=: the state unless
        plainly running, then the summary ("3 workers; 1 waiting for Redis
        at ...; mail FAILED: ...")."""
        state = self.state(view)
        live = sum(1 for c in view.children if not c.stopping)
        text = f"managing {counted(live, 'worker')}" if state == "running" else state
        if self.reloading:
            text = "reloading"
        summary = self.summary(view)
        return text, summary if state == "running" and text != "reloading" else f"{text}; {summary}"

    @staticmethod
    def summary(view: MasterView) -> str:
        """What systemd's STATUS and READY show: the workers, what waits for
        Redis, and each FAILED pool with its reason."""
        live = [c for c in view.children if not c.stopping]
        text = counted(len(live), "worker")
        down = sum(1 for c in live if c.reported == WorkerState.REDIS_DOWN)
        if down:
            text += f"; {down} waiting for Redis at {redact(view.config.redis_url)}"
        failed = [f"{name} FAILED: {s.reason}" for name, s in view.supervision.items() if s.failed]
        return "; ".join([text, *failed])


def _rss(pid: int | None) -> int | None:
    """A helper process's resident memory, if it is alive."""
    return resident(pid) if pid else None
