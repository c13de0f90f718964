"""The job forker: a small process beside a forking worker that forks the
worker's job children, so that the children are copies of it, not of the
worker.

Fork-per-job costs what the forking process holds: its page tables are
copied at the fork, every page it then writes takes a copy-on-write fault,
and the child's exit tears the copy down. A worker holds redis-py (about
15 MB of its 22 MB heap: redis-py imports its asyncio client and cluster
support too) and the worker's own machinery; a job child needs little of it.
So a forking worker starts this process: a fresh interpreter (exec'd, so it
inherits nothing) that imports resqued's job path, the Resque client and
the job modules, and forks standby children (jobchild.py) when the worker
asks. The worker, which no longer forks, takes no copy-on-write faults
either. BENCHMARKS.md has what it does for draining jobs.

It is opt-in (``job_forker: true``, JOB_FORKER=true) because it costs
memory: an exec'd interpreter shares no pages with the worker or the master,
so a worker and its standby go from ~31 to ~49 MB PSS with small job modules,
and the job modules are imported a second time (a large app's memory twice).

Protocol, on a SOCK_SEQPACKET socketpair (one message per send; descriptors
ride along with SCM_RIGHTS):

    worker -> forker   b"S0", b"S1"          fork a standby (S1: the worker is
                                              idle, so it rehearses the job path)
    forker -> worker   b"R"                  ready: the job modules are imported
                       b"E <message>"        cannot start (then it exits)
                       b"P <pid>"            a standby, with its job pipe's write
                                              end and its report pipe's read end
                       b"X <pid> <status>"   a child exited (its wait status)

The worker closing its end means "stop". The forker dies with the worker and
its children die with it (PR_SET_PDEATHSIG), so a job never outlives its
worker. It ignores the signals an operator sends to a worker's process
group: the worker decides what happens to a running job.
"""

import gc
import importlib
import json
import logging
import os
import select
import signal
import socket
import sys

from . import logs
from .job import warm
from .jobchild import flush_and_exit, standby_main
from .proctitle import set_title
from .signals import exit_on_parent_death

log = logging.getLogger("resqued.worker")

# What an operator or a terminal sends to workers; a job child gets them back
# at their defaults (Reset below).
IGNORED = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)

# Run by the new interpreter: take the worker's sys.path first, so that the
# job modules (and resqued) import as they did in the worker.
BOOT = "import json, sys; sys.path[:] = json.loads(sys.argv[1]); from resqued.forkserver import main; main(sys.argv[2:])"


def command(fd: int, spec: dict) -> list[str]:
    """The command line that starts a forker on socket ``fd``."""
    return [sys.executable, "-c", BOOT, json.dumps(sys.path), str(fd), json.dumps(spec)]


class Reset:
    """What a standby forked here undoes before it becomes a job child."""

    def __init__(self, wakeup_fds):
        self.wakeup_fds = wakeup_fds

    def reset_in_child(self) -> None:
        signal.set_wakeup_fd(-1)
        for signum in IGNORED + (signal.SIGCHLD,):
            signal.signal(signum, signal.SIG_DFL)
        for fd in self.wakeup_fds:
            os.close(fd)


def main(argv) -> None:
    sock = socket.socket(fileno=int(argv[0]))
    spec = json.loads(argv[1])
    exit_on_parent_death(signal.SIGKILL)
    if os.getppid() != spec["worker_pid"]:
        os._exit(0)  # the worker died before we could ask to die with it
    for signum in IGNORED:
        signal.signal(signum, signal.SIG_IGN)
    logs.setup(spec["log_level"], spec["log_format"])
    set_title(f"Job forker for {spec['queues']}")
    code = 1
    try:
        code = serve(sock, spec)
    except Exception:
        log.exception("job forker for worker %s failed", spec["worker_id"])
    finally:
        flush_and_exit(code)


def serve(sock, spec) -> int:
    from .registry import JobRegistry
    # redis-py and the Resque client, though no job child of ours needs them
    # to run: a job that imports them inside perform (to enqueue more jobs,
    # say) found them loaded in the worker it was forked from, and must not
    # pay ~70 ms to import them in every child now. They cost the forker
    # ~12 MB of heap, and fork+exit ~15 % (BENCHMARKS.md); the worker's own
    # machinery (psutil, the reserve, the registration) stays out.
    importlib.import_module("resqued.client")

    modules, aliases = spec["registry"]
    try:
        registry = JobRegistry.build(modules, aliases)
    except Exception as exc:
        # The worker built the same table; if it cannot be built here, the
        # worker forks its children itself (it logs why).
        _send(sock, b"E " + f"{type(exc).__name__}: {exc}".encode()[:2000])
        return 1
    for target in registry.targets():
        warm(target)  # once here, not in every child
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    reset = Reset((wake_r, wake_w))
    # Everything imported so far is shared with the children: out of the
    # collector's sight, a full collection in a child (a job that allocates
    # a lot) does not write, and so copy, every page of it. No-op jobs never
    # collect: the bench shows no difference either way.
    gc.freeze()
    title = f"Standby for {spec['queues']}"
    if not _send(sock, b"R"):
        return 0
    while True:
        ready, _, _ = select.select([sock, wake_r], [], [])
        if wake_r in ready:
            try:
                while os.read(wake_r, 4096):
                    pass
            except BlockingIOError:
                pass
        if not _report_exits(sock):
            return 0
        if sock in ready:
            try:
                message = sock.recv(64)
            except ConnectionError:
                message = b""
            if not message:
                return 0  # the worker is done with us
            if message[:1] == b"S":
                if not _fork_standby(sock, reset, registry, spec, title, rehearse=message == b"S1"):
                    return 0


def _fork_standby(sock, reset, registry, spec, title, rehearse: bool) -> bool:
    job_r, job_w = os.pipe()
    report_r, report_w = os.pipe()
    me = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            sock.close()
            os.close(job_w)
            os.close(report_r)
        finally:
            standby_main(job_r, report_w, reset, registry, spec["worker_id"], title, rehearse,
                         parent_pid=me)  # never returns
    os.close(job_r)
    os.close(report_w)
    try:
        os.setpgid(pid, pid)  # also done by the child; whichever runs first wins
    except OSError:
        pass
    try:
        socket.send_fds(sock, [b"P %d" % pid], [job_w, report_r])
        return True
    except OSError:
        return False
    finally:
        os.close(job_w)
        os.close(report_r)


def _report_exits(sock) -> bool:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return True
        if not pid:
            return True
        if not _send(sock, b"X %d %d" % (pid, status)):
            return False


def _send(sock, message: bytes) -> bool:
    try:
        sock.send(message)
        return True
    except OSError:
        return False
