"""The spawner process: started by the master as a fresh interpreter
(master/spawnerlink.py), it imports redis-py and the worker's code once and
forks the master's workers and recovery runs, which share those pages
copy-on-write.

Why a separate process: redis-py alone costs ~19 MB of RSS (it imports
asyncio), and the master, which only supervises, needs none of it. Why a
fresh interpreter rather than a fork of the master: the master's image never
holds worker code, and a new spawner (``resquectl restart``) loads resqued
itself anew from disk, not only the application's jobs. Everything it needs
comes as arguments and inherited fds; only its socket is inherited
(process/interpreter.py). Its messages are protocols/spawnersocket.py's.

Every process the spawner forks is the master's own child, so the master
reaps it, reads its exit status and notices its death exactly as if it had
forked it: the spawner forks twice (the middle process exits at once) and the
master, a child subreaper (PR_SET_CHILD_SUBREAPER), adopts the grandchild.
The grandchild waits to be adopted before it asks to hear of the master's
death: PR_SET_PDEATHSIG fires on the death of whoever is the parent then.

A reload's code probe (protocols/spawnersocket.ProbeCode) is forked once,
as the spawner's own child (spawner/probe.forked), which answers the master
on a pipe of its own: the spawner replies at once, forks workers meanwhile,
and reaps its probes between requests.

It starts with the workers' signals blocked (the master's start_module asks
for that mask), and leaves them so: the workers inherit the mask and unblock
once their handlers are installed.
"""

import argparse
import gc
import logging
import os
import signal
import socket
import time

from resqued.process import logfile, logs
from resqued.process.fork import fork_child
from resqued.process.signals import exit_on_parent_death, wait_readable
from resqued.process.title import set_raw_title
from resqued.protocols import spawnersocket as protocol

log = logging.getLogger("resqued.master")   # test_architecture.LOGGER_OF says why

ADOPTION_TIMEOUT = 10.0
REAP_EVERY = 0.5          # while a probe runs: how often its end is looked for


class ForkFailed(Exception):
    pass


def main(argv) -> int:
    p = argparse.ArgumentParser(prog="python -m resqued.spawner")
    p.add_argument("--socket-fd", type=int, required=True)
    p.add_argument("--title", required=True)
    p.add_argument("--master-pid", type=int, required=True)
    logs.add_exec_arguments(p)
    args = p.parse_args(argv)
    logs.apply_exec_arguments(args, app_code=True)
    # As the master's forked children had it: Python's KeyboardInterrupt
    # handler is no disposition for a worker to inherit.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    code = 1
    try:
        code = serve(socket.socket(fileno=args.socket_fd), args.title, args.master_pid)
    except BaseException:
        log.exception("the worker spawner crashed")
    return code


def serve(sock, title: str, master_pid: int) -> int:
    exit_on_parent_death(signal.SIGKILL)  # it holds no state
    if os.getppid() != master_pid:
        return 0
    set_raw_title(title)
    # What every worker and recovery run needs (redis-py with it), imported
    # once here, after the title and the parent-death signal (it takes a
    # while), so that all of them share it.
    from resqued.spawner import entrypoints
    gc.freeze()  # our objects stay out of the workers' collections: fewer copied pages
    sock.send(protocol.SpawnerReady().encode())
    probes = set()   # our own children: the reloads' probes still running
    while True:
        probes = _reap(probes)
        if probes and not wait_readable([sock], REAP_EVERY):
            continue
        try:
            kind, fds, _, _ = socket.recv_fds(sock, protocol.MAX_KIND, 2)
        except InterruptedError:
            continue
        if not kind and not fds:
            return 0  # the master closed its end
        try:
            request = _read_request(kind, fds)
        except protocol.SpawnerMessageRefused as exc:
            for fd in fds:
                os.close(fd)
            log.error("the worker spawner refused a request: %s", exc)
            sock.send(protocol.NotForked(str(exc)).encode())
            continue
        logfile.follow()  # before forking: the worker starts on the master's current log
        try:
            if isinstance(request, protocol.ProbeCode):
                pid = _fork_probe(request.spec, fds[1], [sock.fileno(), fds[0]], title)
                probes.add(pid)
            elif isinstance(request, protocol.CountJobs):   # as a probe: our child, answering on its pipe
                pid = fork_child(lambda: entrypoints.count_jobs_main(request.spec, fds[1]),
                                 close=[sock.fileno(), fds[0]], pdeathsig=signal.SIGKILL, parent_pid=os.getpid(),
                                 on_crash=lambda: log.exception("a job count crashed"))
                probes.add(pid)
            elif isinstance(request, protocol.ForkWorker):
                pid = fork_adopted(lambda: entrypoints.worker_main(request.spec_json, fds[1]), master_pid,
                                   [sock.fileno(), fds[0]])
            else:
                pid = fork_adopted(lambda: entrypoints.recovery_main(request.spec), master_pid,
                                   [sock.fileno(), fds[0]])
            reply = protocol.Forked(pid)
        except Exception as exc:
            reply = protocol.NotForked(str(exc))
        finally:
            for fd in fds:
                os.close(fd)
        sock.send(reply.encode())


def _fork_probe(spec: dict, answer_fd: int, close_fds, title: str) -> int:
    """A child of ours that checks a config's code (probe.forked); not
    adopted by the master: it answers on ``answer_fd``, and we reap it."""
    from resqued.spawner import probe  # here: beside entrypoints, after the title (see serve)
    spawner = os.getpid()
    return fork_child(lambda: probe.forked(spec, answer_fd, title.replace("spawner", "probe", 1)),
                      close=close_fds, pdeathsig=signal.SIGKILL, parent_pid=spawner,
                      on_crash=lambda: log.exception("a code probe crashed"))


def _reap(probes: set) -> set:
    """The probes still running."""
    running = set()
    for pid in probes:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue
        if not done:
            running.add(pid)
    return running


def _read_request(kind: bytes, fds):
    """The request, its settings read from its memfd."""
    protocol.check_request(kind, len(fds))
    chunks, offset = [], 0
    try:
        while chunk := os.pread(fds[0], 1 << 16, offset):
            chunks.append(chunk)
            offset += len(chunk)
    except OSError as exc:
        raise protocol.SpawnerMessageRefused(f"request {kind.decode()}: settings unreadable ({exc})") from None
    return protocol.decode_request(kind, len(fds), b"".join(chunks))


def fork_adopted(run, master_pid: int, close_fds) -> int:
    """Fork ``run()`` as a grandchild that the master adopts; its pid."""
    read_fd, write_fd = os.pipe()

    def grandchild(middle: int) -> int:
        return run() if _adopted(middle, master_pid) else 1

    def middle_process() -> int:
        middle = os.getpid()
        pid = fork_child(lambda: grandchild(middle), close=(read_fd, write_fd, *close_fds),
                         on_crash=lambda: log.exception("a process forked for the master crashed"))
        os.write(write_fd, b"%d" % pid)
        return 0  # the grandchild is orphaned now: the master adopts it

    middle = fork_child(middle_process, exit=lambda code: os._exit(0))
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    os.waitpid(middle, 0)
    if not data:
        raise ForkFailed("fork failed")
    return int(data)


def _adopted(middle: int, master_pid: int) -> bool:
    """Wait until the middle process has exited (it may have already), so our
    parent is the master (or, if the master died meanwhile, someone else:
    then do not run)."""
    deadline = time.monotonic() + ADOPTION_TIMEOUT
    while os.getppid() == middle:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.0002)
    return os.getppid() == master_pid
