"""What the master answers: resquectl's requests on its control socket (and
the replies that wait for a condition: paused, resumed, applied), its status,
and the one-line summary systemd and the process title show.

A part of Master (arbiter.py), split out to keep each file about one thing:
it reads the master's state and calls its commands, and changes nothing else.
"""

import os
import time

import psutil

from resqued.master import workerprocess
from resqued.master import reconcile

REQUEST_TIMEOUT = 60.0     # a pause/reload request waits at most this long


class MasterRequests:
    def _handle_request(self, conn) -> None:
        command = conn.request["command"]
        if command == "status":
            conn.reply(ok=True, **self.status())
        elif self.stopping and command != "stop":
            conn.reply(ok=False, error="the master is stopping")
        elif command == "pause":
            self.pause()
            self.waiting.append((conn, "paused", time.monotonic() + REQUEST_TIMEOUT))
        elif command == "resume":
            self.resume()
            self.waiting.append((conn, "resumed", time.monotonic() + REQUEST_TIMEOUT))
        elif command == "reload":
            error = self.reload()
            if error:
                conn.reply(ok=False, error=error)
            else:
                self.waiting.append((conn, "applied", time.monotonic() + REQUEST_TIMEOUT))
        elif command == "stop":
            self.stop("immediate" if conn.request.get("now") else "graceful", bounded=True)
            conn.reply(ok=True, pid=os.getpid(), message="stopping")

    def _condition(self, kind: str) -> bool:
        live = [c for c in self.children.values() if not c.stopping]
        if kind == "paused":
            return all(c.paused for c in live)
        if kind == "resumed":
            return all(c.ready and not c.paused for c in live)
        return self._applied()

    def _applied(self) -> bool:
        """Every pool has its count of ready workers of the current config
        (none while WINCH keeps them stopped)."""
        if self.winched:
            return True
        counts = self._desired_counts()
        settings = workerprocess.global_settings(self.config)
        for pool in self.config.pools:
            if self.pools[pool.name].failed:
                continue
            ready = [c for c in self.children.values() if not c.stopping and c.ready
                     and reconcile.same_settings(c.pool, pool) and c.settings == settings]
            if len(ready) < counts[pool.name]:
                return False
        return True

    def _answer_waiting(self) -> None:
        if not self.ready_sent and not self.stopping and self._applied():
            self.ready_sent = True
            self.notifier.ready(self._summary())
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
        counts = self._desired_counts()
        pools = []
        for pool in self.config.pools:
            state = self.pools[pool.name]
            pools.append({"queues": list(pool.queues), "count": counts[pool.name],
                          "alive": sum(1 for c in self.children.values() if c.pool.name == pool.name
                                       and not c.stopping),
                          "failed": state.failed, "recycles": state.recycles, "restarts": state.restarts,
                          "max_memory": pool.max_memory, "max_jobs": pool.max_jobs})
        return {"master": {"pid": os.getpid(), "config": self.config.path, "state": self._state(),
                           "rss": psutil.Process().memory_info().rss},
                "spawner": self._spawner_status(),
                "pools": pools,
                "workers": [c.describe() for c in sorted(self.children.values(), key=lambda c: c.pid)]}

    def _spawner_status(self) -> dict:
        pid, rss = self.spawner.pid, None
        try:
            rss = psutil.Process(pid).memory_info().rss if pid else None
        except psutil.Error:
            pass
        state = "ready" if self.spawner.ready else "starting" if pid else "down"
        return {"pid": pid, "state": state, "rss": rss}

    def _state(self) -> str:
        if self.stopping:
            return "stopping"
        if self.winched:
            return "winched"
        return "paused" if self.paused else "running"

    def _summary(self) -> str:
        live = sum(1 for c in self.children.values() if not c.stopping)
        failed = [n for n, s in self.pools.items() if s.failed]
        return f"{live} workers" + (f"; failed pools: {', '.join(failed)}" if failed else "")
