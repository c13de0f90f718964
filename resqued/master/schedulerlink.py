"""The master's handle on the scheduler (resqued/scheduler/: the process
that moves delayed jobs to their queues when due, and why many may run):
started while the config enables it (``Config.scheduler_enabled``:
``scheduler: true`` or a ``schedule:``, whose pool.yml it is given), kept
running as keptprocess.py says, stopped with TERM (it releases its lock as
it leaves), then KILL after ``shutdown_timeout``.

It talks to Redis itself; the master only starts it, with the command line
scheduler/command.py builds (stdlib only: the master loads no redis-py),
so a reload that changes any part of it (the Redis URL, the namespace, how
it logs) starts a new one. The Redis URL is not on that command line but on
a memfd (as the exporter's settings are): it may hold a password, which a
command line would show to anyone running ``ps``.
"""

import os

from resqued.master.keptprocess import KeptProcess
from resqued.process import logs
from resqued.scheduler.command import command
from resqued.process.hostname import hostname


class SchedulerLink(KeptProcess):
    what = "the scheduler"

    def __init__(self, name: str):
        # "resqued-scheduler[pool.yml]: active" (or ": standing by"), as it titles itself.
        super().__init__(f"resqued-scheduler[{name}]")
        # Containers may share a hostname and each run its master as pid 1:
        # hostname:pid alone could be another master's lock value.
        self.lock_token = os.urandom(6).hex()   # not secrets: it would load OpenSSL into the master

    def wanted(self, config):
        """Its command line's arguments and the recurring jobs it enqueues (it
        reads them from pool.yml itself: a reload that changes them starts a
        new one, which reads the file the master just checked), or None when
        the config does not enable it."""
        if not config.scheduler_enabled:
            return None
        # The master lock's value names this master, not each scheduler it
        # starts: the one it starts after a crash (the master reaped the dead
        # one first) holds the lock at once, rather than standing by for the
        # lock's TTL (180 s) as a stranger must. Its token is made once per master.
        lock_value = f"{hostname()}:{os.getpid()}:{self.lock_token}"
        argv = command(None, config.namespace, schedule=config.path if config.schedule else None,
                       title=self.title, lock_value=lock_value, master_pid=os.getpid(),
                       log_arguments=logs.exec_arguments())
        # "-m", the module, its arguments: whichever interpreter runs it.
        return tuple(argv[1:]), config.redis_url, config.schedule

    def launch(self, serves) -> int:
        (flag, module, *args), redis_url, _ = serves
        assert flag == "-m", serves
        return self.launch_module(module, "--redis-fd", redis_url.encode(), args)

    def grace_for(self, config) -> float:
        return config.shutdown_timeout
