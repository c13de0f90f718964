"""What this host's process table says of the pid in a worker's id
(``host:pid:queues``), for the pruner (presence.py).

It answers two questions, with two strengths of evidence:

- ``no_worker``: is the pid no Resque process any more, so that the worker
  is dead whatever its heartbeat says? Answered as php-resque's own pruner
  answers it ("resque" anywhere in the command line), so that a live
  php-resque worker that sets no title is never taken for dead.
- ``titled_worker``: is the pid still a worker, so that a stale heartbeat
  means a stopped worker (SIGSTOP, a long GC pause, a frozen VM) and not a
  dead one? Such a worker is never pruned: its job still runs, and
  requeueing it would run it twice at once. This needs a worker's title
  (``resque-<version>: ...``, what Ruby's own pruner matches), not merely
  the word: a recycled pid of a process that only mentions resque (an
  editor, a ``tail`` of a log) must not keep a dead worker's registration,
  and its job, forever.
"""

import re

import psutil

# Ruby's linux_worker_pids greps "[r]esque:work|[r]esque:\sStarting|[r]esque-[0-9]";
# resqued's titles (process/title.py) and php-resque's match the last.
WORKER_TITLE = re.compile(r"resque-\d|resque:work|resque:\sStarting")
# resqued's helpers of a worker (worker/execution/standbys.py): never a worker themselves.
HELPER_TITLE = re.compile(r"resque-\d\S*: (?:Job forker|Standby) for ")


class LocalPid:
    """One read of the process table for ``pid``."""

    def __init__(self, pid: int):
        self.exists = False
        self.cmdline = None          # None: gone, or not ours to read
        self.parent_cmdline = None   # likewise, of its parent
        try:
            process = psutil.Process(pid)
            if process.status() == psutil.STATUS_ZOMBIE:
                return   # exited, not yet reaped: as good as gone
            self.exists = True
            self.cmdline = " ".join(process.cmdline())
            parent = process.parent()
            self.parent_cmdline = " ".join(parent.cmdline()) if parent is not None else ""
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            self.exists = self.cmdline is not None
        except psutil.AccessDenied:
            pass   # exists, but its command line cannot be read

    def no_worker(self) -> bool:
        """Gone, or a process that is no Resque worker. A process whose
        command line cannot be read is given the benefit of the doubt."""
        return not self.exists or (self.cmdline is not None and "resque" not in self.cmdline)

    def titled_worker(self) -> bool:
        """Alive, titled as a Resque worker, and no worker's child. The
        helpers of another worker carry the title too (a job child, a job
        forker, a standby: ``resque-<version>: ...``), and one of them may
        have been given a dead worker's pid: it must not keep that worker
        registered and its job in flight for as long as it lives. A worker's
        parent is its master, resque-pool or a shell, never a titled worker."""
        return (self.exists and self.cmdline is not None and WORKER_TITLE.search(self.cmdline) is not None
                and not HELPER_TITLE.search(self.cmdline)
                and not (self.parent_cmdline and WORKER_TITLE.search(self.parent_cmdline)))
