"""``--daemonize``'s log file: opened safely, and reopened after a rotation.

Opened with O_NOFOLLOW and only if it is a regular file (created 0640): a
daemon run as root must not append to whatever a symlink planted beside its
pidfile names. Appended to (O_APPEND), so logrotate's copytruncate works.

Every process of a daemonized master (the master, its spawner, workers, job
forkers, job children) writes log lines and job output to fds 1 and 2, which
at first share the one open file the master inherited. Reopening in the
master alone would leave the others writing to the renamed file. So the
master reopens on HUP, creating the new file, and every other process
*follows*: at points it passes often (each spawner request, each turn of a
worker's loop, the start of each job) it compares the file now at the path
with its fd 2, and opens the new one if they differ. The path is set once in
the daemon, before it forks anything, so each process forked from it has
it; the ones it execs (the spawner, the probe: process/interpreter.py) are
given it as an argument and call inherit().

While a job's output is captured (worker/execution/jobcapture.py), fds 1
and 2 of its process are pipes: ``capture`` keeps copies of the real ones,
which the process's own log lines (logs.OwnStderr) and a reopen go to.
"""

import errno
import fcntl
import os
import stat
import sys

PATH: str | None = None   # the daemon's log file; None: not daemonized, nothing to follow
_saved = None             # copies of the real fds 1 and 2, made by the first capture()
_capturing = False        # fds 1 and 2 are a job's pipes now


def open_for_append(path: str, create: bool = True) -> int:
    """An fd appending to ``path``; OSError naming the problem."""
    # O_NONBLOCK: opening a FIFO someone put there would otherwise wait for a reader.
    flags = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags | (os.O_CREAT if create else 0), 0o640)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(f"log file {path} is a symbolic link; refusing to use it") from None
        if exc.errno == errno.ENXIO:
            raise OSError(f"log file {path} is not a regular file; refusing to use it") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"log file {path} is not a regular file; refusing to use it")
    fcntl.fcntl(fd, fcntl.F_SETFL, os.O_WRONLY | os.O_APPEND)
    return fd


def attach(fd: int, path: str) -> None:
    """In the daemon: fds 1 and 2 to ``fd`` (``path``, opened by open_for_append)."""
    global PATH
    _install(fd)
    PATH = path


def inherit(path: str) -> None:
    """In a process the daemon exec'd: its fds 1 and 2 are the log file
    already (inherited); follow() it from now on, as a forked one would."""
    global PATH
    PATH = path


def reopen() -> None:
    """The master, on HUP: open (or create) the file at the path again, so
    that after ``mv resqued.log resqued.log.1`` it writes a new one. OSError
    if it cannot (the old file is kept)."""
    if PATH is not None:
        _install(open_for_append(PATH))


def reopen_or_keep(log) -> None:
    """The master's HUP: --daemonize's log, after a rotation that renamed it
    (resque-pool's HUP does this too; the other processes follow); when it
    cannot, it says so on ``log`` and keeps writing the old file."""
    try:
        reopen()
    except OSError as exc:
        log.error("cannot reopen the log file, still writing the old one: %s", exc)


def follow() -> None:
    """Any other process: if the master has reopened the log (another file
    is at the path), write to that one too. Two syscalls when nothing changed."""
    if PATH is None:
        return
    try:
        now, ours = os.stat(PATH, follow_symlinks=False), os.fstat(real_stderr())
        if (now.st_dev, now.st_ino) == (ours.st_dev, ours.st_ino) or not stat.S_ISREG(now.st_mode):
            return
        fd = open_for_append(PATH, create=False)
    except OSError:
        return   # gone, or refused: the master says why at its HUP; keep the old file meanwhile
    _install(fd)


def real_stderr() -> int:
    """The fd of this process's real stderr (2, unless a job's output is captured)."""
    return _saved[1] if _capturing else 2


def capture(out_fd: int, err_fd: int) -> None:
    """Make fds 1 and 2 ``out_fd`` and ``err_fd`` (pipes, still the caller's
    to close), keeping copies of the real ones for this process's own lines."""
    global _saved, _capturing
    if _saved is None:
        _saved = (os.dup(1), os.dup(2))   # close-on-exec: what the job runs writes to the pipes
    # The flag first: an inline worker's capture thread logs through
    # real_stderr(); told fd 2 between the dup2s, it would write into the
    # pipe that only it reads, and block there once the pipe is full.
    _capturing = True
    os.dup2(out_fd, 1)
    os.dup2(err_fd, 2)


def release() -> None:
    """Undo capture(): fds 1 and 2 are the real ones again. The copies are
    kept open, for the next capture and for a thread that has one in hand."""
    global _capturing
    if _capturing:
        os.dup2(_saved[0], 1)
        os.dup2(_saved[1], 2)
        _capturing = False


def _install(fd: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    for target in (() if _capturing else (1, 2)) + (_saved or ()):
        os.dup2(fd, target, inheritable=target in (1, 2))
    os.close(fd)
