"""PID files done right: written atomically (temp file + rename, owner-only),
a live owner's file is never overwritten, a stale one is replaced, and the
file is removed only by the process whose pid it holds."""

import errno
import fcntl
import os
import re
import tempfile

from resqued.process.signals import process_alive
from resqued.numbers import whole_number


class PidfileError(RuntimeError):
    pass


def socket_beside(pidfile: str) -> str:
    """The master's control socket: beside its pidfile, ``.pid`` -> ``.sock``
    (where resquectl --pidfile looks for it)."""
    base = pidfile[:-len(".pid")] if pidfile.endswith(".pid") else pidfile
    return base + ".sock"


def read_pid(path: str) -> int | None:
    try:
        with open(path) as f:
            text = f.read().strip()
    except FileNotFoundError:
        return None
    return whole_number(text)


class Pidfile:
    def __init__(self, path: str):
        self.path = os.path.abspath(path)

    def create(self, pid: int | None = None) -> None:
        pid = pid or os.getpid()
        directory = os.path.dirname(self.path)
        os.makedirs(directory, exist_ok=True)
        # Two starts at once must not both find the file stale: check and
        # replace while holding a lock on the directory itself (no lock file
        # to leave behind).
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(dir_fd, fcntl.LOCK_EX)
            self.check(pid)
            fd, tmp = tempfile.mkstemp(prefix=".pid.", dir=directory)  # mode 0600
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(f"{pid}\n")
                os.rename(tmp, self.path)
            except BaseException:
                _unlink(tmp)
                raise
        finally:
            os.close(dir_fd)

    def check(self, pid: int | None = None) -> None:
        """What create() refuses, without writing: --daemonize asks before it
        detaches, so that the command typed reports it, not the daemon's log."""
        if os.path.islink(self.path):
            raise PidfileError(f"pidfile {self.path} is a symbolic link; refusing to use it")
        existing = read_pid(self.path)
        if existing and existing != (pid or os.getpid()) and process_alive(existing):
            raise PidfileError(f"pidfile {self.path} names process {existing}, which is still running")

    def remove(self, pid: int | None = None) -> None:
        if read_pid(self.path) == (pid or os.getpid()):
            _unlink(self.path)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise


def worker_pidfile(pid_dir: str | None, pool, pid: int) -> str | None:
    """Where a master's worker writes its pid: ``pool`` is its PoolConfig,
    or its WorkerSpec (by the pool's name). The worker writes it, the master
    removes it once it reaped the worker."""
    if not pid_dir:
        return None    # env mode: php-resque writes no worker pidfiles either
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", pool.name)
    return os.path.join(pid_dir, f"{safe}.{pid}.pid")
