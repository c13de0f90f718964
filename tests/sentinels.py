"""A Redis Sentinel setup for tests: a primary, a replica and three
sentinels (redis-server --sentinel), on free loopback TCP ports (Sentinel
announces addresses: a unix socket cannot be one). Quorum 2, a primary is
judged down after 1000 ms, so a failover takes a few seconds."""

import os
import signal
import socket
import subprocess
import time

import redis

from tests.redis_server import find_redis_server

SERVICE = "resqued"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SentinelSetup:
    def __init__(self, directory: str):
        self.directory = directory
        self.servers: dict[str, tuple[subprocess.Popen, int]] = {}

    @property
    def url(self) -> str:
        """The sentinels' URL (``primary_url``: the primary's own)."""
        hosts = ",".join(f"127.0.0.1:{self.servers[name][1]}" for name in ("s1", "s2", "s3"))
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    @property
    def primary_url(self) -> str:
        return f"redis://127.0.0.1:{self.servers['primary'][1]}/0"

    def start(self, timeout: float = 15.0, sentinels: bool = True) -> "SentinelSetup":
        """``sentinels=False``: only the primary and its replica."""
        primary = self._server("primary", [])
        replica = self._server("replica", ["--replicaof", "127.0.0.1", str(primary)])
        # Each sentinel is told the replica and the other two (ids chosen
        # here): found by their hello messages, every 2 s, they would take
        # seconds to be known.
        names = ("s1", "s2", "s3") if sentinels else ()
        ports = {name: free_port() for name in names}
        ids = {name: os.urandom(20).hex() for name in names}
        for name in names:
            path = os.path.join(self.directory, f"{name}.conf")
            with open(path, "w") as conf:
                conf.write(f"sentinel myid {ids[name]}\n"
                           f"sentinel monitor {SERVICE} 127.0.0.1 {primary} 2\n"
                           f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                           f"sentinel failover-timeout {SERVICE} 3000\n"
                           f"sentinel parallel-syncs {SERVICE} 1\n"
                           f"sentinel known-replica {SERVICE} 127.0.0.1 {replica}\n")
                for other in names:
                    if other != name:
                        conf.write(f"sentinel known-sentinel {SERVICE} 127.0.0.1 {ports[other]} {ids[other]}\n")
            self._server(name, [], conf=path, sentinel=True, port=ports[name])
        deadline = time.monotonic() + timeout
        # Ready once each sentinel knows the replica and the other two.
        while True:
            try:
                if all(self._sentinel_ready(name) for name in ("s1", "s2", "s3") if sentinels) \
                        and self.client("replica").info("replication")["master_link_status"] == "up":
                    return self
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"sentinels did not settle; see {self.directory}/*.log")
            time.sleep(0.1)

    def _sentinel_ready(self, name) -> bool:
        state = self.client(name).sentinel_master(SERVICE)
        return state["num-slaves"] >= 1 and state["num-other-sentinels"] >= 2

    def client(self, name: str) -> redis.Redis:
        return redis.Redis("127.0.0.1", self.servers[name][1], socket_timeout=5)

    def primary_name(self) -> str:
        host, port = self.client("s1").sentinel_get_master_addr_by_name(SERVICE)
        return next(name for name, (_, p) in self.servers.items() if p == int(port))

    def all_name(self, name: str) -> bool:
        """Whether every sentinel names ``name`` the primary (SENTINEL MASTERS,
        which redis-py reads: GET-MASTER-ADDR-BY-NAME names a promoted
        replica before the failover ends)."""
        port = self.servers[name][1]
        try:
            return all(int(self.client(s).sentinel_master(SERVICE)["port"]) == port for s in ("s1", "s2", "s3"))
        except redis.RedisError:
            return False

    def kill(self, name: str) -> None:
        process, _ = self.servers[name]
        process.send_signal(signal.SIGKILL)
        process.wait()

    def _server(self, name: str, extra: list[str], conf: str | None = None, sentinel: bool = False,
                port: int | None = None) -> int:
        port = port or free_port()
        args = [find_redis_server(), *([conf] if conf else []), *(["--sentinel"] if sentinel else []),
                "--port", str(port), "--bind", "127.0.0.1", "--dir", self.directory, "--daemonize", "no",
                "--logfile", os.path.join(self.directory, f"{name}.log")]
        if not sentinel:
            args += ["--save", "", "--appendonly", "no", *extra]
        self.servers[name] = (subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True), port)
        return port

    def stop(self) -> None:
        for process, _ in self.servers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait()
