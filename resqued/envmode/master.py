"""COUNT workers in php-resque's environment mode (or one, with PIDFILE or
a recycle limit), kept by the master's own arbiter: one pool built from the
variables, so env mode has the master's supervision exactly (boot-failure
backoff and give-up, lost-job recovery, memory and job-count recycling, the
spawner, signals) rather than a second, smaller supervisor with rules of its
own.

php-resque's launcher forks COUNT workers and exits, orphaning them (its issue
#294): nothing restarts a dead worker and no signal reaches them all. Here
the process started stays as their master (also with METRICS, whose
exporter it starts, and SCHEDULER, whose scheduler it starts). With PIDFILE set, a control socket beside it lets ``resquectl --pidfile PIDFILE status`` (and pause,
resume, stop) reach it; without PIDFILE there is neither. A HUP re-applies
the variables; ``resquectl reload`` is refused: there is no file to re-read.
"""

import dataclasses
import os
import shutil
import tempfile

from resqued.master.arbiter import Arbiter


def run(config) -> int:
    """``config``: from envmode/variables.load, one pool."""
    if config.metrics and not config.control_socket:
        # The metrics exporter asks the master over its control socket: without
        # PIDFILE (no socket beside it) the master gets a private one (0700).
        private = tempfile.mkdtemp(prefix="resqued-")
        try:
            return run(dataclasses.replace(config, control_socket=os.path.join(private, "control.sock")))
        finally:
            shutil.rmtree(private, ignore_errors=True)
    # TERM and INT kill running jobs, as they do to a php-resque or Resque
    # worker; QUIT lets them finish. The variables cannot change under a
    # running process, so a HUP re-applies the same config.
    # A pool whose workers keep dying at boot ends the process (exit 1), for
    # systemd or supervisord to see: nothing could reload it.
    return Arbiter(config, loader=lambda: config, term_mode="immediate", exit_when_failed=True).run()
