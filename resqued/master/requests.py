"""What the master answers: resquectl's requests on its control socket (and
the replies that wait for a condition: paused, resumed, applied), its status,
and the one-line summary systemd and the process title show.

``RequestHandlers(master)`` is owned by the master (``master.requests``), as
gunicorn's CommandHandlers is by its arbiter. What a request needs done is
decided by requestdecisions.py from a snapshot of the master's state
(``snapshot``); the master applies the actions (``handle``'s ``apply``),
and this replies. Its own state is the requests waiting for their condition
and whether systemd was told READY; it reads the master to render its
status, and changes nothing of it.
"""

import os
import time

import psutil

from resqued.config.model import ENV_MODE_PATH
from resqued.master import workerprocess
from resqued.master import reconcile
from resqued.master.requestdecisions import (ACTIONS, MasterState, PoolView, ReplyStatus, Wait, WorkerView,
                                             decide, ready_due, settle)
from resqued.process.logs import counted
from resqued.protocols.controlsocket import Answer, Command, Metrics, Refusal, Status
from resqued.protocols.reportpipe import WorkerState
from resqued.config.redisurl import redact


class RequestHandlers:
    def __init__(self, master):
        self.master = master
        self.waiting = []         # (connection, Wait, deadline): answered once its condition holds
        self.ready_sent = False   # systemd told READY=1 (again after each reload)

    def handle(self, conn, apply) -> None:
        """Answer ``conn``'s request, now or once it may be: ``apply(action)``
        has the master do an action (requestdecisions.ACTIONS) and returns
        what follows it."""
        if conn.request.command == Command.METRICS:   # the exporter's, answered even while stopping
            conn.reply(Answer(metrics=self.metrics()))
            return
        try:
            step = decide(conn.request, self.snapshot())
            while isinstance(step, ACTIONS):
                step = apply(step)
            if isinstance(step, Wait):
                self.waiting.append((conn, step, time.monotonic() + step.within))
            else:
                conn.reply(self._reply(step))
        except OSError as exc:
            # Out of descriptors (EMFILE) while reading /proc for a status,
            # say: this request fails, the master goes on.
            conn.reply(Refusal(f"the master cannot answer {conn.request.command.value!r} now: {exc}"))

    def _reply(self, step):
        if isinstance(step, ReplyStatus):
            return Answer(self.status(), pid=os.getpid() if step.with_pid else None, message=step.message)
        return step

    def reloaded(self) -> None:
        """A new config: READY=1 again once it is applied."""
        self.ready_sent = False

    @property
    def reloading(self) -> bool:
        """A reload request waits for its config to be applied."""
        return any(wait.until == "applied" for _, wait, _ in self.waiting)

    def answer_waiting(self) -> bool:
        """Answer the waiting requests whose condition holds or whose time
        is up. Returns whether systemd is due READY=1 (the master sends it)."""
        if self.ready_sent and not self.waiting:
            return False   # nothing to decide (the loop turns at each job's report)
        state = self.snapshot()
        due = ready_due(state, self.ready_sent)
        self.ready_sent = self.ready_sent or due
        still, now = [], time.monotonic()
        for conn, wait, deadline in self.waiting:
            step = settle(wait, deadline, state, now)
            if step is None:
                still.append((conn, wait, deadline))
                continue
            try:
                conn.reply(self._reply(step))
            except OSError as exc:   # as in handle(): no descriptor left to read /proc
                conn.reply(Refusal(f"{wait.until}, but the master cannot tell its status now: {exc}"))
        self.waiting = still
        return due

    def abandon_waiting(self) -> None:
        """The master stops: each waiting request is told it never will be answered."""
        for conn, wait, _ in self.waiting:
            conn.reply(Refusal(f"the master stopped before it was {wait.until}"))

    def snapshot(self) -> MasterState:
        """What the decisions read of the master (requestdecisions.MasterState)."""
        master = self.master
        counts = master.desired_counts()
        pools = {pool.name: pool for pool in master.config.pools}
        settings = workerprocess.global_settings(master.config)
        same = {}   # id(a child's PoolConfig) -> its pool's settings are today's: workers share a few
        for c in master.children.values():
            if id(c.pool) not in same:
                same[id(c.pool)] = c.pool.name in pools and reconcile.same_settings(c.pool, pools[c.pool.name])
        workers = tuple(WorkerView(c.pid, c.pool.name, c.stopping, c.ready, c.paused, c.busy,
                                   current=same[id(c.pool)] and c.settings == settings)
                        for c in master.children.values())
        return MasterState(workers, tuple(PoolView(name, counts[name], master.pools[name].failed) for name in pools),
                           stopping=bool(master.stopping), winched=master.winched,
                           env_mode=master.config.path == ENV_MODE_PATH, restart_active=master.restart.active,
                           restart_error=master.restart.error)

    def status(self) -> Status:
        master = self.master
        counts = master.desired_counts()
        pools = []
        for pool in master.config.pools:
            state = master.pools[pool.name]
            pools.append({"queues": list(pool.queues), "count": counts[pool.name],
                          "alive": sum(1 for c in master.children.values() if c.pool.name == pool.name
                                       and not c.stopping),
                          "failed": state.failed, "reason": state.reason or None,
                          "last_exit": state.last_exit or None, "last_error": state.last_error or None,
                          "recycles": state.recycles, "restarts": state.restarts,
                          "max_memory": pool.max_memory, "max_jobs": pool.max_jobs})
        return {"master": {"pid": os.getpid(), "config": master.config.path, "state": self.state(),
                           "rss": psutil.Process().memory_info().rss},
                "spawner": self._spawner_status(),
                "pools": pools,
                "workers": [c.describe() for c in sorted(master.children.values(), key=lambda c: c.pid)]}

    def metrics(self) -> Metrics:
        """The master's part of the metrics (the exporter reads the rest
        from Redis, and each worker's memory from /proc): cheap to build,
        at each scrape."""
        master, pools = self.master, {}
        for child in master.children.values():
            job_child = child.report.child if child.busy else None   # its memory is the job's, not the pool's
            pools.setdefault(child.pool.name, []).append([child.pid, child.describe_state(), job_child])
        return {"tally": master.tally.to_json(),
                "pools": [{"name": pool.name, "failed": master.pools[pool.name].failed,
                           "workers": pools.get(pool.name, [])} for pool in master.config.pools]}

    def _spawner_status(self) -> dict:
        spawner = self.master.spawner
        pid, rss = spawner.pid, None
        try:
            rss = psutil.Process(pid).memory_info().rss if pid else None
        except psutil.Error:
            pass
        state = "ready" if spawner.ready else "starting" if pid else "down"
        return {"pid": pid, "state": state, "rss": rss}

    def state(self) -> str:
        """The master's state, in one word."""
        master = self.master
        if master.stopping:
            return "stopping"
        if master.winched:
            return "winched"
        if master.paused:
            return "paused"
        return "restarting" if master.restart.active else "running"

    def headline(self) -> tuple[str, str]:
        """The process title's state, and systemd's STATUS=: the state unless
        plainly running, then the summary ("3 workers; 1 waiting for Redis
        at ...; mail FAILED: ...")."""
        state = self.state()
        live = sum(1 for c in self.master.children.values() if not c.stopping)
        text = f"managing {counted(live, 'worker')}" if state == "running" else state
        if self.reloading:
            text = "reloading"
        summary = self.summary()
        return text, summary if state == "running" and text != "reloading" else f"{text}; {summary}"

    def summary(self) -> str:
        """What systemd's STATUS and READY show: the workers, what waits for
        Redis, and each FAILED pool with its reason."""
        master = self.master
        live = [c for c in master.children.values() if not c.stopping]
        text = counted(len(live), "worker")
        down = sum(1 for c in live if c.reported == WorkerState.REDIS_DOWN)
        if down:
            text += f"; {down} waiting for Redis at {redact(master.config.redis_url)}"
        failed = [f"{name} FAILED: {s.reason}" for name, s in master.pools.items() if s.failed]
        return "; ".join([text, *failed])
