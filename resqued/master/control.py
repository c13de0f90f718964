"""The master's control socket: how ``resquectl`` talks to a running master.

A unix stream socket, owner-only (0600, created under umask 077), served from
the master's own loop (no thread; never blocking it). What is said on it
is protocols/controlsocket.py; resquectl's end is ctl/masterclient.py. A
request that must wait for something (pause until every worker has paused,
reload until the new config is applied) keeps its connection open until
the master answers it.
"""

import errno
import logging
import os
import socket
import stat
import time

from resqued.config.limits import CONTROL_CONNECTIONS
from resqued.process.signals import wait_ready
from resqued.protocols.controlsocket import (MAX_REQUEST, Answer, BadRequest, ControlError, Refusal,
                                             decode_request)

log = logging.getLogger("resqued.master")

MAX_CONNECTIONS = CONTROL_CONNECTIONS   # held at once (the bound on workers leaves them room)
FD_HEADROOM = 8           # descriptors kept free for the master's own work once it ran out
BACKLOG = 128
REQUEST_TIMEOUT = 10.0    # to send a request line once connected
SEND_TIMEOUT = 10.0       # to take the answer
ACCEPT_PAUSE = 0.1        # out of descriptors, with none to free: accept again after this
LIMIT_RESTORE = 60.0      # seconds without a shortage before the connection limit is whole again
CLOSE_FLUSH = 1.0         # the stopping master waits this long at most for answers to be taken
WARN_EVERY = 60.0


class Connection:
    """One client: its request as it arrives, then its answer as the client
    takes it. Nothing here blocks: what the client does not take at once is
    sent as its socket drains (``ControlServer.service``), or dropped at the
    deadline."""

    def __init__(self, sock, now: float):
        self.sock = sock
        self.buffer = b""
        self.request = None
        self.outgoing = b""       # the answer, or what the client has not taken of it
        self.deadline = now + REQUEST_TIMEOUT   # for the request line; then for the answer
        self.closed = False

    def fileno(self):
        return self.sock.fileno()

    @property
    def reading(self) -> bool:
        return self.request is None and not self.closed

    @property
    def sending(self) -> bool:
        return bool(self.outgoing) and not self.closed

    def reply(self, answer: Answer | Refusal) -> None:
        self.outgoing = answer.encode()
        self.deadline = time.monotonic() + SEND_TIMEOUT
        self.send()

    def send(self) -> None:
        """Send what the socket takes now; close once all is sent."""
        try:
            while self.outgoing:
                self.outgoing = self.outgoing[self.sock.send(self.outgoing):]
        except (BlockingIOError, InterruptedError):
            return    # the rest when the client reads
        except OSError:
            pass      # the client went away; nothing to tell
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.outgoing = b""
            self.sock.close()


class ControlServer:
    """Serves the socket from the master's loop: ``waitables()`` says what to
    wait for, ``service()`` takes what is ready. Bounded whatever clients do:
    at most MAX_CONNECTIONS at once (a new one pushes out the oldest still
    sending its request, or is refused), REQUEST_TIMEOUT for a request, SEND_TIMEOUT for a
    client to take its answer, and out of descriptors (EMFILE) it sheds
    connections or stops accepting for a moment instead of failing."""

    def __init__(self, path: str):
        self.path = path
        self.sock = None
        self.connections: list[Connection] = []
        self.limit = MAX_CONNECTIONS    # lowered while descriptors run out (LIMIT_RESTORE)
        self._limit_lowered_at = 0.0
        self._accept_again_at = 0.0     # accepting paused: no descriptor was free
        self._warned_at = {}            # problem -> when last logged

    def check(self) -> None:
        """Raise ControlError for what open() would refuse (a stale socket is
        removed, as open() would): --daemonize asks before it detaches."""
        _remove_stale_socket(self.path)

    def open(self) -> None:
        _remove_stale_socket(self.path)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o077)
        try:
            sock.bind(self.path)
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)
        sock.listen(BACKLOG)
        sock.setblocking(False)
        self.sock = sock

    def fileno(self):
        return self.sock.fileno()

    def waitables(self) -> tuple[list, list]:
        """What the master's loop waits on: (readable, writable). The listener
        (unless accepting is paused) and connections whose request has not
        fully arrived; connections whose answer is not fully sent."""
        listener = [self] if time.monotonic() >= self._accept_again_at else []
        return (listener + [c for c in self.connections if c.reading],
                [c for c in self.connections if c.sending])

    def next_deadline(self) -> float | None:
        """When service() next has something to do without any event."""
        times = [c.deadline for c in self.connections if c.reading or c.sending]
        if self._accept_again_at > time.monotonic():
            times.append(self._accept_again_at)
        return min(times, default=None)

    def service(self, readable=(), writable=()) -> list[Connection]:
        """Accept, read and send what is ready, drop what is past its
        deadline; return connections whose request is complete (parsed into
        ``conn.request``), which the master answers with ``conn.reply()``."""
        complete = []
        for conn in self.connections:
            if conn in writable and conn.sending:
                conn.send()
            elif conn in readable and conn.reading:
                self._read(conn, complete)
        if self in readable:
            self._accept(complete)
        now = time.monotonic()
        for conn in self.connections:
            if conn.reading and now >= conn.deadline:
                conn.reply(Refusal(f"no complete request within {REQUEST_TIMEOUT:g}s"))
            if conn.sending and now >= conn.deadline:
                conn.close()   # it does not read its answer: not ours to wait for
        self.connections = [c for c in self.connections if not c.closed]
        return complete

    def _accept(self, complete: list) -> None:
        if self.limit < MAX_CONNECTIONS and time.monotonic() - self._limit_lowered_at >= LIMIT_RESTORE:
            # A passing shortage (a burst of spawns) must not leave one slot
            # for good: one `pause --wait` would then lock every resquectl out.
            self.limit = MAX_CONNECTIONS
        # A bounded batch: a flood of connections must not keep the loop here.
        for _ in range(MAX_CONNECTIONS):
            try:
                client, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    raise
                # Out of descriptors: hold fewer connections from now on, so
                # that the master keeps a few descriptors for its own work
                # (forking a worker, reading /proc for a status), shedding
                # clients that have not even sent their request; with none
                # to shed, stop accepting for a moment.
                held = len(self.connections)
                self.limit = max(1, min(self.limit, held - FD_HEADROOM))
                self._limit_lowered_at = time.monotonic()
                if self._shed_to(self.limit - 1) and len(self.connections) < held:
                    continue
                self._accept_again_at = time.monotonic() + ACCEPT_PAUSE
                self._warn("no descriptor free", f"control socket: cannot accept a connection ({exc.strerror}); "
                                                 f"trying again in {ACCEPT_PAUSE:g}s")
                return
            client.setblocking(False)
            if not self._shed_to(self.limit - 1):
                self._warn("full", f"control socket: {self.limit} connections open; refusing more")
                refused = Connection(client, 0.0)
                refused.reply(Refusal(f"too many connections ({self.limit})"))
                refused.close()
                continue
            conn = Connection(client, time.monotonic())
            self.connections.append(conn)
            # resquectl sends its line as it connects: read it now, before a
            # flood of other connections can push this one out.
            self._read(conn, complete)

    def _shed_to(self, most: int) -> bool:
        """Close the oldest connections still sending their request until at
        most ``most`` are open; False if that many cannot be closed."""
        for conn in [c for c in self.connections if c.reading][:max(0, len(self.connections) - most)]:
            self._warn("shed", f"control socket: more than {most} connections; closing the oldest unfinished ones")
            conn.close()
            self.connections.remove(conn)
        return len(self.connections) <= most

    def _read(self, conn: Connection, complete: list) -> None:
        try:
            chunk = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        conn.buffer += chunk
        if chunk and b"\n" not in conn.buffer and len(conn.buffer) <= MAX_REQUEST:
            return
        line = conn.buffer.split(b"\n", 1)[0]
        conn.buffer = b""
        if len(line) > MAX_REQUEST:
            conn.reply(Refusal(f"request longer than {MAX_REQUEST} bytes"))
        elif not line.strip():
            conn.close()
        else:
            try:
                conn.request = decode_request(line)
            except BadRequest as exc:
                self._warn("bad request", f"control socket: refused a request: {exc}")
                conn.reply(Refusal(str(exc)))
            else:
                complete.append(conn)

    def _warn(self, problem: str, text: str) -> None:
        # Once a minute at most: a flood must not become a flood of log lines.
        now = time.monotonic()
        if now - self._warned_at.get(problem, -WARN_EVERY) >= WARN_EVERY:
            self._warned_at[problem] = now
            log.warning("%s", text)

    def close(self) -> None:
        """Stop serving: clients still queued are told the master is stopping,
        and answers not yet taken get a last moment (CLOSE_FLUSH) to go."""
        if self.sock is not None:
            self._turn_away_queued()
            self.sock.close()
            self.sock = None
            try:
                if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                    os.unlink(self.path)
            except FileNotFoundError:
                pass
        for conn in self.connections:
            if conn.reading:
                conn.reply(Refusal("the master is stopping"))
        deadline = time.monotonic() + CLOSE_FLUSH
        while any(c.sending for c in self.connections) and time.monotonic() < deadline:
            _, writable = wait_ready((), [c for c in self.connections if c.sending], deadline - time.monotonic())
            for conn in writable:
                conn.send()
        for conn in self.connections:
            conn.close()
        self.connections.clear()

    def _turn_away_queued(self) -> None:
        # Connections still in the listen queue would see a reset, which
        # resquectl can only report as a broken connection.
        for _ in range(BACKLOG):
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            client.setblocking(False)
            conn = Connection(client, 0.0)
            try:
                conn.sock.recv(MAX_REQUEST)   # read, so that closing it does not reset it
            except OSError:
                pass
            self.connections.append(conn)


def _remove_stale_socket(path: str) -> None:
    """A socket file left by a dead master is removed; anything else at that
    path (a regular file, a symlink) or a socket someone answers on is not."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ControlError(f"control socket path {path} exists and is not a socket; refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        os.unlink(path)
        return
    finally:
        probe.close()
    raise ControlError(f"control socket {path} is in use by a running master")

