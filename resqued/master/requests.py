"""What the master answers: resquectl's requests on its control socket (and
the replies that wait for a condition: paused, resumed, applied), its status,
and the one-line summary systemd and the process title show.

``RequestHandlers(master)`` is owned by the master (``master.requests``), as
gunicorn's CommandHandlers is by its arbiter. Its own state is the requests
waiting for their condition and whether systemd was told READY; it reads the
master's state and calls its commands, and changes nothing else of it.
"""

import os
import time

import psutil

from resqued.config.model import ENV_MODE_PATH
from resqued.master import workerprocess
from resqued.master import reconcile
from resqued.process.logs import counted
from resqued.protocols.controlsocket import Answer, Command, Refusal, Status
from resqued.protocols.reportpipe import WorkerState
from resqued.config.redisurl import redact

REQUEST_TIMEOUT = 60.0     # a pause/reload request waits at most this long
RESTART_TIMEOUT = 600.0    # a restart replaces workers one by one, each after its job


class RequestHandlers:
    def __init__(self, master):
        self.master = master
        self.waiting = []         # (connection, kind, deadline): answered once kind holds
        self.ready_sent = False   # systemd told READY=1 (again after each reload)

    def handle(self, conn) -> None:
        try:
            self._handle(conn)
        except OSError as exc:
            # Out of descriptors (EMFILE) while reading /proc for a status,
            # say: this request fails, the master goes on.
            conn.reply(Refusal(f"the master cannot answer {conn.request.command.value!r} now: {exc}"))

    def _handle(self, conn) -> None:
        master = self.master
        request = conn.request
        command = request.command
        if command == Command.STATUS:
            conn.reply(Answer(self.status()))
        elif master.stopping and command != Command.STOP:
            conn.reply(Refusal("the master is stopping"))
        elif command == Command.PAUSE:
            master.pause()
            wait = request.wait   # --wait: also until running jobs finish, this long at most
            kind = "finished" if wait else "paused"
            self.waiting.append((conn, kind, time.monotonic() + (wait or REQUEST_TIMEOUT)))
        elif command == Command.RESUME:
            master.resume()
            self.waiting.append((conn, "resumed", time.monotonic() + REQUEST_TIMEOUT))
        elif command == Command.RELOAD and master.config.path == ENV_MODE_PATH and not master.winched:
            # Its settings are the variables it started with (a reload after
            # WINCH still does what it says: it starts the workers again).
            conn.reply(Refusal("environment mode has no pool.yml to re-read: its settings are the variables "
                               "it started with (start resqued again to change them; restart loads new code)",
                               unsupported=True))
        elif command == Command.RELOAD:
            # As HUP: with on_hup: restart, every worker is restarted too
            # (what systemctl reload's ExecReload then does).
            error = master.reload()
            if error:
                conn.reply(Refusal(error, config_error=True))
            elif master.config.on_hup == "restart":
                self._restart(conn, None)
            else:
                self.waiting.append((conn, "applied", time.monotonic() + REQUEST_TIMEOUT))
        elif command == Command.RESTART:
            self._restart(conn, list(request.pools) or None)
        elif command == Command.STOP:
            master.stop("immediate" if request.now else "graceful", bounded=True)
            conn.reply(Answer(self.status(), pid=os.getpid(), message="stopping"))

    def _restart(self, conn, pools) -> None:
        error = self.master.restart.start(pools)
        if error:
            # Code that does not import is a configuration error (exit 78).
            conn.reply(Refusal(error, config_error=error.startswith("restart refused")))
        else:
            self.waiting.append((conn, "restarted", time.monotonic() + RESTART_TIMEOUT))

    def _condition(self, kind: str) -> bool:
        live = [c for c in self.master.children.values() if not c.stopping]
        if kind == "paused":
            return all(c.paused for c in live)
        if kind == "finished":
            return all(c.paused and not c.busy for c in live)
        if kind == "resumed":
            return all(c.ready and not c.paused for c in live)
        if kind == "restarted":
            return not self.master.restart.active
        return self._applied()

    def _applied(self) -> bool:
        """Every pool has its count of ready workers of the current config
        (none while WINCH keeps them stopped)."""
        master = self.master
        if master.winched:
            return True
        counts = master.desired_counts()
        settings = workerprocess.global_settings(master.config)
        for pool in master.config.pools:
            if master.pools[pool.name].failed:
                continue
            ready = [c for c in master.children.values() if not c.stopping and c.ready
                     and reconcile.same_settings(c.pool, pool) and c.settings == settings]
            if len(ready) < counts[pool.name]:
                return False
        return True

    def answer_waiting(self) -> None:
        if not self.ready_sent and not self.master.stopping and self._applied():
            self.ready_sent = True
            self.master.notifier.ready(self.summary())
        still = []
        for conn, kind, deadline in self.waiting:
            if kind == "restarted" and self._condition(kind) and self.master.restart.error:
                conn.reply(Refusal(self.master.restart.error))
            elif self._condition(kind):
                try:
                    status = self.status()
                except OSError as exc:   # as in handle(): no descriptor left to read /proc
                    conn.reply(Refusal(f"{kind}, but the master cannot tell its status now: {exc}"))
                    continue
                conn.reply(Answer(status, message="paused" if kind == "finished" else kind))
            elif time.monotonic() > deadline:
                conn.reply(Refusal(self._late(kind)))
            else:
                still.append((conn, kind, deadline))
        self.waiting = still

    def abandon_waiting(self) -> None:
        """The master stops: each waiting request is told it never will be answered."""
        for conn, kind, _ in self.waiting:
            conn.reply(Refusal(f"the master stopped before it was {kind}"))

    def _late(self, kind: str) -> str:
        if kind != "finished":
            return f"not {kind} in time; see resquectl status"
        busy = sum(1 for c in self.master.children.values() if not c.stopping and c.busy)
        return (f"paused, but {counted(busy, 'worker')} still running a job (see resquectl status); "
                "they take no new job")

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
