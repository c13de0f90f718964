"""The worker spawner: a child of the master that holds redis-py and the
worker's code, and forks the master's workers (and its recovery runs).

Why a separate process: redis-py alone costs ~19 MB of RSS (it imports
asyncio), and the master, which only supervises, needs none of it. Workers
forked from the master made it hold all of that; forked from the spawner,
which imported it once, they share those pages copy-on-write as before, and
the master stays small (BENCHMARKS.md, "master").

Every process the spawner forks is the master's own child, so the master
reaps it, reads its exit status and notices its death exactly as if it had
forked it: the spawner forks twice (the middle process exits at once) and the
master, a child subreaper (PR_SET_CHILD_SUBREAPER), adopts the grandchild.
The grandchild waits to be adopted before it asks to hear of the master's
death: PR_SET_PDEATHSIG fires on the death of whoever is the parent then.

Protocol over a SOCK_SEQPACKET socketpair, one request at a time:
  spawner -> master   R                 ready: the imports are done
  master -> spawner   W + 2 fds         fork a worker (fds: its settings, its report pipe)
                      L + 1 fd          fork a recovery run (fd: its settings; recoveryruns.py)
  spawner -> master   P <pid>           forked (the master's child soon)
                      E <problem>       not forked
The settings are JSON in a memfd: a message is limited to ~200 KB, which a
config with thousands of aliases could pass.

The spawner starts with no descriptor but stdin, stdout, stderr and its
socket (descriptors.close_all_but): what the master holds at that moment
(its control connections, the old spawner's socket during a restart, its
workers' report pipes) is none of its business, nor of the workers and jobs
it forks.
"""

import gc
import json
import logging
import os
import signal
import socket
import time

from resqued.process import logfile
from resqued.process.descriptors import close_all_but
from resqued.process.title import set_raw_title
from resqued.process.signals import blocked_for_fork, exit_on_parent_death, wait_readable
from resqued.supervise.backoff import Backoff


log = logging.getLogger("resqued.master")

REPLY_TIMEOUT = 5.0      # a fork takes milliseconds: this is a hung spawner (and the master waits)
ADOPTION_TIMEOUT = 10.0


class SpawnerError(Exception):
    pass


class Spawner:
    """The master's handle on its spawner: start it, ask it to fork, and
    restart it (with backoff) when it dies."""

    def __init__(self, name: str):
        self.title = f"resqued-spawner[{name}]"
        self.pid = None
        self.sock = None
        self.ready = False
        self.backoff = Backoff()    # restarts after it died

    def fileno(self) -> int:
        return self.sock.fileno()

    def start(self, in_child) -> None:
        """Fork the spawner; ``in_child()`` first drops what is the master's."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        master_pid = os.getpid()
        # Forked with the workers' signals blocked, and left so: the workers
        # inherit the mask and unblock once their handlers are installed.
        with blocked_for_fork():
            pid = os.fork()
        if pid == 0:
            code = 1
            try:
                ours.close()
                in_child()
                # Whatever in_child() does not know of (spawner.py's docstring).
                close_all_but([theirs.fileno()])
                code = _serve(theirs, self.title, master_pid)
            except BaseException:
                log.exception("the worker spawner crashed")
            finally:
                os._exit(code)
        theirs.close()
        self.pid, self.sock, self.ready = pid, ours, False

    def read_ready(self) -> None:
        """The spawner's socket is readable: its R, or its end."""
        try:
            message = self.sock.recv(16, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        except OSError:
            message = b""
        if message == b"R":
            self.ready = True
            self.backoff.succeeded()
        else:
            self._close()  # it died: the master reaps it and calls exited()

    def due(self) -> bool:
        return self.pid is None and not self.backoff.waiting()

    def exited(self, how: str) -> None:
        """The master reaped the spawner."""
        self._close()
        self.pid = None
        delay = self.backoff.failed()
        log.error("the worker spawner died (%s); a new one starts in %.1fs, workers meanwhile keep running",
                  how, delay)

    def spawn_worker(self, spec_json: str, report_fd: int) -> int:
        """``spec_json``: the worker's WorkerSpec, passed on as it is (entrypoints.worker_main reads it)."""
        return self._request(b"W", spec_json, [report_fd])

    def spawn_recovery(self, spec: dict) -> int:
        return self._request(b"L", json.dumps(spec), [])

    def stop(self) -> None:
        """The master is leaving: the spawner has nothing to finish."""
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.pid = None
        self._close()

    def _request(self, kind: bytes, text: str, fds) -> int:
        if not self.ready:
            raise SpawnerError("the worker spawner is not running")
        settings = os.memfd_create("resqued-settings", os.MFD_CLOEXEC)
        try:
            os.write(settings, text.encode())
            socket.send_fds(self.sock, [kind], [settings, *fds])
        except OSError as exc:
            raise SpawnerError(f"the worker spawner failed ({exc})") from None
        finally:
            os.close(settings)
        try:
            # epoll, not select(): with a thousand workers a new spawner's
            # socket has a descriptor number select() refuses (over 1023).
            ready = wait_readable([self.sock], REPLY_TIMEOUT)
            reply = self.sock.recv(4096) if ready else None
        except OSError as exc:
            reply, problem = None, str(exc)
        else:
            problem = "no reply" if reply is None else "it closed its socket"
        if not reply:
            # Hung or dead: kill it (the master reaps it and starts another).
            log.error("the worker spawner failed a request (%s)", problem)
            self._close()
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            raise SpawnerError(f"the worker spawner failed ({problem})")
        kind, _, body = reply.partition(b" ")
        if kind != b"P":
            raise SpawnerError(body.decode(errors="replace"))
        return int(body)

    def _close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.ready = None, False


# -- in the spawner --------------------------------------------------------------

def _serve(sock, title: str, master_pid: int) -> int:
    os.setpgid(0, 0)  # Ctrl-C on the master's terminal is for the master
    exit_on_parent_death(signal.SIGKILL)  # it holds no state
    if os.getppid() != master_pid:
        return 0
    set_raw_title(title)
    # What every worker and recovery run needs (redis-py with it), imported once
    # here so that all of them share it, and never in the master.
    from resqued.master import entrypoints
    gc.freeze()  # our objects stay out of the workers' collections: fewer copied pages
    sock.send(b"R")
    while True:
        try:
            kind, fds, _, _ = socket.recv_fds(sock, 16, 2)
        except InterruptedError:
            continue
        if not kind:
            return 0  # the master closed its end
        logfile.follow()  # before forking: the worker starts on the master's current log
        try:
            text = _read_all(fds[0]).decode()
            ours = [sock.fileno(), fds[0]]  # not for the forked process
            if kind == b"W":
                pid = _fork_adopted(lambda: entrypoints.worker_main(text, fds[1]), master_pid, ours)
            elif kind == b"L":
                spec = json.loads(text)
                pid = _fork_adopted(lambda: entrypoints.recovery_main(spec), master_pid, ours)
            else:
                raise SpawnerError(f"unknown request {kind!r}")
            reply = b"P %d" % pid
        except Exception as exc:
            reply = f"E {exc}".encode()
        finally:
            for fd in fds:
                os.close(fd)
        sock.send(reply)


def _read_all(fd: int) -> bytes:
    chunks = []
    offset = 0
    while chunk := os.pread(fd, 1 << 16, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _fork_adopted(run, master_pid: int, close_fds) -> int:
    """Fork ``run()`` as a grandchild that the master adopts; its pid."""
    read_fd, write_fd = os.pipe()
    middle = os.fork()
    if middle == 0:
        try:
            middle = os.getpid()
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    for fd in (read_fd, write_fd, *close_fds):
                        os.close(fd)
                    if _adopted(middle, master_pid):
                        code = run()
                except BaseException:
                    log.exception("a process forked for the master crashed")
                finally:
                    os._exit(code)
            os.write(write_fd, b"%d" % pid)
        finally:
            os._exit(0)  # the grandchild is orphaned now: the master adopts it
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    os.waitpid(middle, 0)
    if not data:
        raise SpawnerError("fork failed")
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
