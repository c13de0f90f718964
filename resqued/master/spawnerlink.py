"""The master's handle on its worker spawner (the spawner itself is
resqued/spawner/: main.py says what it is and why): start it as a fresh
interpreter, ask it to fork, and restart it (with backoff) when it dies.
The messages are protocols/spawnersocket.py's.

The spawner starts with no descriptor but stdin, stdout, stderr and its
socket: exec closes the rest (process/interpreter.py), so what the master
holds at that moment (its control connections, the old spawner's socket
during a restart, its workers' report pipes) is none of its business, nor
of the workers and jobs it forks.
"""

import logging
import os
import signal
import socket

from resqued.process import logs
from resqued.process.interpreter import start_module
from resqued.process.signals import WORKER_SIGNALS, wait_readable
from resqued.protocols import spawnersocket as protocol
from resqued.supervise.backoff import Backoff


log = logging.getLogger("resqued.master")

REPLY_TIMEOUT = 5.0      # a fork takes milliseconds: this is a hung spawner (and the master waits)


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

    # -- as a HelperProcess (helperprocess.py) --------------------------
    def waitables(self) -> list:
        return [self] if self.sock is not None else []

    def on_readable(self, waitable) -> None:
        self.read_ready()

    def deadline(self):
        """While it is down: when it starts again."""
        return self.backoff.until if self.pid is None else None

    def owns(self, pid: int) -> bool:
        return pid == self.pid

    def on_exit(self, pid: int, code: int, how: str) -> None:
        self.exited(how)

    def start(self) -> None:
        """Start the spawner: ``python -m resqued.spawner`` (process/interpreter.py)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        args = ["--socket-fd", str(theirs.fileno()), "--title", self.title, "--master-pid", str(os.getpid()),
                *logs.exec_arguments()]
        try:
            # With the workers' signals blocked, and left so: the workers
            # inherit the mask and unblock once their handlers are installed.
            pid = start_module("resqued.spawner", args, pass_fds=[theirs.fileno()],
                               blocked=WORKER_SIGNALS, new_group=True)
        except BaseException:
            ours.close()
            raise
        finally:
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
        if not message:
            self._close()  # it died: the master reaps it and calls exited()
            return
        try:
            protocol.decode_notice(message)
        except protocol.SpawnerMessageRefused as exc:
            log.error("the worker spawner sent no ready message (%s): stopping it", exc,
                      extra=logs.event("spawner_failed", error=str(exc)))
            self._close()  # it sees its socket closed and leaves; the master reaps it
            return
        self.ready = True
        self.backoff.succeeded()  # it died (the master reaps it and calls exited()), or it will now

    def due(self) -> bool:
        return self.pid is None and not self.backoff.waiting()

    def exited(self, how: str) -> None:
        """The master reaped the spawner."""
        self._close()
        self.pid = None
        delay = self.backoff.failed()
        log.error("the worker spawner died (%s); a new one starts in %.1fs, workers meanwhile keep running",
                  how, delay, extra=logs.event("spawner_died", reason=how))

    def reaped(self) -> None:
        """The master reaped it before it was ready (a rolling restart's new
        spawner): drop our end of its socket; nothing restarts it."""
        self._close()

    def spawn_worker(self, spec_json: str, report_fd: int) -> int:
        """``spec_json``: the worker's WorkerSpec, passed on as it is (spawner/entrypoints.worker_main reads it)."""
        return self._request(protocol.ForkWorker(spec_json), [report_fd])

    def spawn_recovery(self, spec: dict) -> int:
        return self._request(protocol.ForkRecovery(spec), [])

    def probe_code(self, settings: dict) -> tuple[int, int]:
        """Have the spawner fork a child of its own that checks a config's
        code (spawner/probe.forked); returns its pid and the read end of the
        pipe its verdict comes on (protocols/spawnersocket.ProbeVerdict)."""
        return self._answered(protocol.ProbeCode(settings))

    def count_jobs(self, spec: dict) -> tuple[int, int]:
        """Have the spawner fork a child of its own that reads the command
        workers' job counts from Redis (spawner/entrypoints.count_jobs_main);
        returns its pid and the read end of the pipe the counts come on."""
        return self._answered(protocol.CountJobs(spec))

    def _answered(self, request) -> tuple[int, int]:
        """``request`` with the write end of a new pipe, on which the child
        answers: its pid, and the pipe's read end."""
        read_fd, write_fd = os.pipe()
        try:
            pid = self._request(request, [write_fd])
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        return pid, read_fd

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

    def _request(self, request, fds) -> int:
        if not self.ready:
            raise SpawnerError("the worker spawner is not running")
        settings = os.memfd_create("resqued-settings", os.MFD_CLOEXEC)
        try:
            os.write(settings, request.settings())
            socket.send_fds(self.sock, [request.kind], [settings, *fds])
        except OSError as exc:
            raise SpawnerError(f"the worker spawner failed ({exc})") from None
        finally:
            os.close(settings)
        try:
            # epoll, not select(): with a thousand workers a new spawner's
            # socket has a descriptor number select() refuses (over 1023).
            ready = wait_readable([self.sock], REPLY_TIMEOUT)
            data = self.sock.recv(protocol.MAX_REPLY) if ready else None
        except OSError as exc:
            data, problem = None, str(exc)
        else:
            problem = "no reply" if data is None else "it closed its socket"
        if not data:
            self._kill(problem)
            raise SpawnerError(f"the worker spawner failed ({problem})")
        try:
            reply = protocol.decode_reply(data)
        except protocol.SpawnerMessageRefused as exc:
            self._kill(str(exc))
            raise SpawnerError(f"the worker spawner failed ({exc})") from None
        if isinstance(reply, protocol.NotForked):
            raise SpawnerError(reply.problem)
        return reply.pid

    def _kill(self, problem: str) -> None:
        """Hung, dead or confused: kill it (the master reaps it and starts another)."""
        log.error("the worker spawner failed a request (%s)", problem,
                  extra=logs.event("spawner_request_failed", error=str(problem)))
        self._close()
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.ready = None, False
