"""A command pool's workers (docs/command-pools.md): a non-Python Resque
worker (php-resque's ``php bin/resque``, Ruby's ``rake resque:work``) run
COUNT times under the master, as resque-pool runs Ruby's.

The master forks and execs each one itself (process/fork.fork_exec): a
plain program needs none of what the spawner prepares for a Python worker,
and exec drops the master's image at once. Such a worker has no report
pipe, so what the master knows of it comes from the outside, as ``ps``
and resque-pool know it: its process title (Resque's ``Waiting for``,
``Forked``, ``Processing``, ``Paused``, which php-resque and Ruby Resque
both set), the job child it forked, and its tree's memory. ``check``
reads them at most once a second per worker.

Its Resque worker id is ``<hostname>:<pid>:<queues>``, the pid the master
knows: when it dies unannounced (it never announces), a recovery run settles
the job its ``worker:<id>`` record says it was running (resque/dirtyexit.py).
"""

import dataclasses
import logging
import os
import random
import re
import signal
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from resqued.config.commandpool import MASTER_OWNED
from resqued.master.workerprocess import Child, global_settings, recovery_settings
from resqued.process.fork import fork_exec
from resqued.process.memory import approx_size, descendants, tree_memory
from resqued.process.pidfile import Pidfile, PidfileError, worker_pidfile
from resqued.protocols.reportpipe import StateReport, WorkerState
from resqued.supervise.states import MIN_UPTIME

log = logging.getLogger("resqued.master")

CHECK_EVERY = 1.0   # seconds between two looks at one worker (a /proc read or three)
# How Resque's workers title themselves (php-resque, Ruby Resque, resqued).
BUSY_TITLES = (": Forked ", ": Processing ")
PAUSED_TITLE = ": Paused"
READY_TITLES = (": Waiting for", *BUSY_TITLES, PAUSED_TITLE)
# An untitled worker is sent USR2 (pause) only after this long: a Rails app's
# `rake resque:work` may boot for tens of seconds before Resque's handlers
# are in place, and USR2 before them kills it.
UNTITLED_LISTENS = 60.0


def command_env(config, pool, environ=os.environ) -> dict:
    """What the command runs with: the master's environment, then Resque's
    variables from the pool's settings (php-resque reads them all; Ruby's
    rake resque:work reads QUEUE, INTERVAL and, through redis-rb,
    REDIS_URL), then the pool's ``env:``, which wins. BACKGROUND and
    PIDFILE are never passed on (config/commandpool.py: MASTER_OWNED)."""
    env = {name: value for name, value in environ.items() if name not in MASTER_OWNED}
    env.update(QUEUE=",".join(pool.queues), COUNT="1", INTERVAL=f"{pool.interval:g}",
               PREFIX=config.namespace, REDIS_URL=config.redis_url, **php_backend(config.redis_url))
    env.update(pool.env or {})
    return env


def php_backend(url: str) -> dict:
    """REDIS_BACKEND as php-resque reads it: 1.2 splits it as host:port (a
    URL would be host "redis"), later versions take host:port or a DSN, and
    the database from REDIS_BACKEND_DB. A URL with a password or TLS stays
    a DSN: only php-resque after 1.2 can use it."""
    parts = urlsplit(url)
    if parts.scheme != "redis" or parts.username or parts.password or not parts.hostname:
        return {"REDIS_BACKEND": url}
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    db = parts.path.strip("/") or "0"
    return {"REDIS_BACKEND": f"{host}:{parts.port or 6379}", **({"REDIS_BACKEND_DB": db} if db != "0" else {})}


@dataclass(eq=False)
class CommandChild(Child):
    """The master's record of one command worker (workerprocess.Child's
    fields; ``report_fd`` is a pidfd, readable once it exits)."""
    worker_id: str = ""
    pause_pending: bool = False   # started while the master is paused: USR2 once it listens
    checked_at: float = 0.0
    title: str = ""
    started_up: bool = False
    max_jobs: int | None = None   # its pool's max_jobs plus its jitter (jobcounts.py reads its count)
    quiet_fd: int | None = None   # without pidfds: the write end of its never-written pipe
    job: dict | None = None       # {"queue", "class"} of the job its titles last named (metrics' lost)

    def read_reports(self) -> None:
        pass   # it writes none: check() looks at it instead

    def job_label(self) -> str:
        return "a job"   # which one is in Redis: the recovery run names it

    def observe(self, now: float) -> None:
        """Its state from its title (busy: Forked/Processing), or from its
        tree where it sets no Resque title (busy: it has a job child)."""
        self.checked_at = now
        self.title = read_title(self.pid)
        children = descendants(self.pid)
        titled = any(t in self.title for t in READY_TITLES)
        busy = any(t in self.title for t in BUSY_TITLES) if titled else bool(children)
        paused = PAUSED_TITLE in self.title
        # Started (Supervisor's startsecs): titled as Resque titles a worker,
        # or alive MIN_UPTIME seconds; until then an exit is a boot failure,
        # which backs off. A child alone proves nothing: ``sh -c`` and
        # php-resque's ``ps`` at start have one.
        self.started_up = self.started_up or titled or now - self.started >= MIN_UPTIME
        if not (self.started_up or titled):
            return   # still starting (its interpreter, its app)
        state = WorkerState.BUSY if busy else WorkerState.PAUSED if paused else WorkerState.IDLE
        job_child = children[0] if children and busy else None
        if job_child is not None:   # Resque's job child titles itself "Processing <queue> since <t> [<class>]"
            self.job = processing(read_title(job_child)) or processing(self.title) or self.job
        if self.report is not None and (self.report.state, self.report.paused, self.report.child) == \
                (state, paused, job_child):
            return
        since = self.report.since if self.report and self.report.state == state else time.time()
        self.report = StateReport(state, since=since if busy else None, child=job_child, pid=self.pid, paused=paused)

    @property
    def ready(self) -> bool:
        """Started: an exit from now on is no boot failure."""
        return self.started_up

    @property
    def listening(self) -> bool:
        """Its Resque signal handlers are in place (before that, USR2 would
        end it): it titles itself as Resque does, or, untitled (php-resque
        without setproctitle), it has run UNTITLED_LISTENS seconds."""
        return any(t in self.title for t in READY_TITLES) or time.monotonic() - self.started >= UNTITLED_LISTENS


def processing(title: str) -> dict | None:
    """The queue (and, from Ruby, the class) a Resque job title names."""
    found = re.search(r": Processing (\S+) since \S+(?: \[([^\]]+)\])?", title)
    return found and {"queue": found[1], "class": found[2] or "unknown"}


def read_title(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def spawn(config, pool, paused: bool, spawner=None, tally=None) -> CommandChild:
    """Fork and exec one worker of command pool ``pool`` (workerprocess.spawn's
    arguments; no spawner needed); raises OSError if it cannot fork. An exec
    that fails (no such program) is its last_error: it exits 127 at once,
    a boot failure, so the pool backs off and turns FAILED saying why."""
    born = time.time()   # before it can register: its worker:<id>:started is not before this
    pid, error_fd = fork_exec(list(pool.command), command_env(config, pool), cwd=pool.directory,
                              pdeathsig=signal.SIGQUIT, parent_pid=os.getpid())
    try:
        error = os.read(error_fd, 1000).decode(errors="replace")   # EOF as soon as exec succeeded
    finally:
        os.close(error_fd)
    keep = None
    try:
        pidfd = os.pidfd_open(pid)
    except (OSError, AttributeError):   # before Linux 5.3: a pipe never written, SIGCHLD wakes us
        pidfd, keep = os.pipe()
    queues = (pool.env or {}).get("QUEUE") or ",".join(pool.queues)
    child = CommandChild(pid=pid, pool=pool, settings=global_settings(config), report_fd=pidfd,
                         # "started": for dirtyexit.registered_ids (so a recovery run per dead worker)
                         recovery={**recovery_settings(config), "command": True, "started": born}, tally=tally,
                         worker_id=f"{socket.gethostname()}:{pid}:{queues}", pause_pending=paused,
                         started_wall=born)
    child.last_error, child.quiet_fd = error, keep
    child.max_jobs = pool.max_jobs + random.randint(0, pool.max_jobs_jitter) if pool.max_jobs else None
    if config.pid_dir and not error:
        try:
            Pidfile(worker_pidfile(config.pid_dir, pool, pid)).create(pid)
        except (OSError, PidfileError) as exc:
            # Running but unrecorded, it would outlive the master unseen: end
            # it now, a boot failure saying why (the pool backs off, then FAILED).
            child.last_error = f"cannot write its pidfile: {exc}"
            _kill_group(pid)
    return child


def to_signal(children, paused: bool) -> list:
    """Which of ``children`` to send a pause (USR2) or a resume (CONT) now:
    a command worker not yet listening is marked to pause once it does
    (check()); a resume unmarks every one."""
    signalled = []
    for child in children:
        if isinstance(child, CommandChild):
            child.pause_pending = paused and not child.listening
            if child.pause_pending:
                continue
        signalled.append(child)
    return signalled


def next_check(children) -> float | None:
    """When the next command worker is due a look (time.monotonic()), for the
    master's wait: its loop otherwise turns once a second, and a look due
    just after a turn would wait for the turn after (a look every 2 s)."""
    due = [child.checked_at + CHECK_EVERY for child in children
           if isinstance(child, CommandChild) and not child.stopping]
    return min(due) if due else None


def check(children, supervision, job_counts=None, now: float | None = None) -> None:
    """Each turn of the master's loop: look at each command worker due a
    look; recycle one whose tree's memory passed its pool's max_memory, or
    whose job count (``job_counts``: pid -> jobs done, jobcounts.py) reached
    its max_jobs; tell one started during a pause to pause once it listens."""
    now = time.monotonic() if now is None else now
    for child in children:
        if not isinstance(child, CommandChild) or child.stopping or now - child.checked_at < CHECK_EVERY:
            continue
        child.observe(now)
        if child.pause_pending and child.listening:
            child.pause_pending = False
            _signal(child, signal.SIGUSR2)
        limit, done = child.pool.max_memory, (job_counts or {}).get(child.pid, 0)
        if done and child.report is not None and child.report.jobs != done:   # status's JOBS
            child.report = dataclasses.replace(child.report, jobs=done)
        if limit and (memory := tree_memory(child.pid)) > limit:
            _recycle(child, f"its memory {approx_size(memory)} passed max_memory {approx_size(limit)}", supervision)
        elif child.max_jobs and done >= child.max_jobs:
            _recycle(child, f"{done} jobs done, max_jobs {child.max_jobs}", supervision)


def _recycle(child, reason: str, supervision) -> None:
    """QUIT: a Resque worker finishes its job first; its replacement starts
    at once (a stopping worker no longer counts)."""
    log.info("recycling worker %d (%s): %s%s", child.pid, child.pool.name, reason,
             ", after its job" if child.busy else "", extra=child.event("worker_recycling", reason=reason))
    child.stopping, child.stop_reason = True, f"recycled: {reason}"
    _signal(child, signal.SIGQUIT)
    pool = supervision.get(child.pool.name)
    if pool is not None:
        pool.recycles += 1


def reaped(child, code: int) -> None:
    """The master reaped ``child``, which exited with ``code``: for a command
    worker that died unasked, end what its process group still runs
    (php-resque's job child outlives a killed worker and would finish a job
    about to be settled as lost). One that exited 0 when told to stop
    finished its job: its group is left alone."""
    if not isinstance(child, CommandChild):
        return
    if child.quiet_fd is not None:
        os.close(child.quiet_fd)
    if child.stopping and code == 0:
        return
    try:
        os.killpg(child.pid, 0)
    except (ProcessLookupError, PermissionError):
        return   # nothing left in its group
    # A job child that outlived it says it died mid-job (and so was started,
    # even if check() had not yet seen its title); another leftover (a shell
    # wrapper's, php-resque's ps at boot) does not.
    job = next(filter(None, map(processing, group_titles(child.pid))), None)
    if job is not None and not child.busy:
        child.report = StateReport(WorkerState.BUSY, pid=child.pid, since=time.time())
        child.started_up, child.job = True, child.job or job
    _kill_group(child.pid)


def group_titles(pgid: int) -> list[str]:
    """The titles of the processes in process group ``pgid`` (a scan of
    /proc: only when a command worker dies)."""
    titles = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue   # not a process, or gone
        if len(fields) > 2 and fields[2] == str(pgid).encode():
            titles.append(read_title(int(entry)))
    return titles


def name_lost_job(child) -> None:
    """A busy command worker's job for the metrics' ``lost`` count (the
    master reads no Redis: its titles' queue and class, else "unknown")."""
    if isinstance(child, CommandChild) and child.busy and child.report.job is None:
        job = child.job or {"queue": ",".join(child.pool.queues), "class": "unknown"}
        child.report = dataclasses.replace(child.report, job=job)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _signal(child, signum) -> None:
    try:
        os.kill(child.pid, signum)
    except ProcessLookupError:
        pass
