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

from resqued.master import workerprocess
from resqued.master import reconcile

REQUEST_TIMEOUT = 60.0     # a pause/reload request waits at most this long


class RequestHandlers:
    def __init__(self, master):
        self.master = master
        self.waiting = []         # (connection, kind, deadline): answered once kind holds
        self.ready_sent = False   # systemd told READY=1 (again after each reload)

    def handle(self, conn) -> None:
        master = self.master
        command = conn.request["command"]
        if command == "status":
            conn.reply(ok=True, **self.status())
        elif master.stopping and command != "stop":
            conn.reply(ok=False, error="the master is stopping")
        elif command == "pause":
            master.pause()
            self.waiting.append((conn, "paused", time.monotonic() + REQUEST_TIMEOUT))
        elif command == "resume":
            master.resume()
            self.waiting.append((conn, "resumed", time.monotonic() + REQUEST_TIMEOUT))
        elif command == "reload":
            error = master.reload()
            if error:
                conn.reply(ok=False, error=error)
            else:
                self.waiting.append((conn, "applied", time.monotonic() + REQUEST_TIMEOUT))
        elif command == "stop":
            master.stop("immediate" if conn.request.get("now") else "graceful", bounded=True)
            conn.reply(ok=True, pid=os.getpid(), message="stopping")

    def _condition(self, kind: str) -> bool:
        live = [c for c in self.master.children.values() if not c.stopping]
        if kind == "paused":
            return all(c.paused for c in live)
        if kind == "resumed":
            return all(c.ready and not c.paused for c in live)
        return self._applied()

    def _applied(self) -> bool:
        """Every pool has its count of ready workers of the current config
        (none while WINCH keeps them stopped)."""
        master = self.master
        if master.winched:
            return True
        counts = master._desired_counts()
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
            if self._condition(kind):
                conn.reply(ok=True, message=kind, **self.status())
            elif time.monotonic() > deadline:
                conn.reply(ok=False, error=f"not {kind} after {REQUEST_TIMEOUT:.0f}s; see resquectl status")
            else:
                still.append((conn, kind, deadline))
        self.waiting = still

    def status(self) -> dict:
        master = self.master
        counts = master._desired_counts()
        pools = []
        for pool in master.config.pools:
            state = master.pools[pool.name]
            pools.append({"queues": list(pool.queues), "count": counts[pool.name],
                          "alive": sum(1 for c in master.children.values() if c.pool.name == pool.name
                                       and not c.stopping),
                          "failed": state.failed, "recycles": state.recycles, "restarts": state.restarts,
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
        return "paused" if master.paused else "running"

    def summary(self) -> str:
        """What systemd's STATUS and READY show."""
        live = sum(1 for c in self.master.children.values() if not c.stopping)
        failed = [n for n, s in self.master.pools.items() if s.failed]
        return f"{live} workers" + (f"; failed pools: {', '.join(failed)}" if failed else "")
