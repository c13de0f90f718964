"""``--daemonize`` for hosts without systemd or supervisord, with
python-daemon: detach, close stdio, log to a file, keep the working directory.

Everything that can fail is checked before detaching — the config, the
pidfile, the log file (logfile.py: never through a symlink) — so that the
command you typed reports it and exits non-zero (resque-pool's daemon mode
exits 0 and dies afterwards). The command waits for the daemon's pid, so
that it can print it."""

import os
import signal
import sys

import daemon

from resqued.process import logfile
from resqued.process.fork import fork_continuing
from resqued.numbers import is_whole_number


def default_log_file(config) -> str:
    base = config.pidfile[:-4] if config.pidfile.endswith(".pid") else config.pidfile
    return base + ".log"


def detach(log_file: str) -> int | None:
    """Become a daemon (the caller has checked the pidfile and socket).
    Raises OSError before detaching. Returns None in the daemon; in the
    process that called it, the daemon's pid once it has detached (that
    process then only reports it and exits)."""
    os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
    log_fd = logfile.open_for_append(log_file)
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = fork_continuing()
    if pid:
        os.close(write_fd)
        os.close(log_fd)
        with os.fdopen(read_fd, "rb") as pipe:
            said = pipe.read()     # the daemon's pid; nothing if it could not detach
        os.waitpid(pid, 0)         # the first of python-daemon's forks, gone at once
        if not is_whole_number(said):
            raise OSError(f"the daemon did not start; see {log_file}")
        return int(said)
    os.close(read_fd)
    context = daemon.DaemonContext(
        working_directory=os.getcwd(),
        umask=0o027,
        # stdout and stderr to /dev/null until attach() puts the log file there.
        detach_process=True,
        # The master installs its own handlers; python-daemon's would end it on TERM.
        signal_map={signal.SIGTTIN: None, signal.SIGTTOU: None, signal.SIGTSTP: None},
        files_preserve=[write_fd, log_fd],
    )
    context.open()
    logfile.attach(log_fd, log_file)
    os.write(write_fd, str(os.getpid()).encode())
    os.close(write_fd)
    return None
