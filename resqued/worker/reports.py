"""A worker's reports to its master: one JSON line per change of state
(idle, busy with which job, paused, redis-down, stopping) on a pipe the
master reads in its loop (master/workerprocess.Child.read_reports).

The pipe is non-blocking: a master busy elsewhere never stalls a job, and a
report it misses is said again by the next. A line equal to the last one is
not sent: an idle worker says "idle" before every wait, and each line
wakes the master (64 idle workers woke it 13 times a second).
"""

import json
import os


class MasterReports:
    def __init__(self, fd: int | None):
        self.fd = fd                 # None: no master (env mode's single worker)
        self.last_state = {}         # the last state but a Redis outage: said again once Redis is back
        self._last_line = b""
        if fd is not None:
            os.set_blocking(fd, False)

    def send(self, state: dict, **always) -> bool:
        """Report ``state`` (with ``always``: pid, jobs, paused). False when
        nobody reads any more: the master is gone."""
        if state.get("state") != "redis-down":
            self.last_state = dict(state)
        if self.fd is None:
            return True
        line = json.dumps({**state, **always}).encode() + b"\n"
        if line == self._last_line:
            return True
        try:
            os.write(self.fd, line)
            self._last_line = line
        except BrokenPipeError:
            return False
        except OSError:
            pass  # full (the master is busy): the next report says it all
        return True
