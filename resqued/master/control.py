"""The master's control socket: how ``resquectl`` talks to a running master.

A unix stream socket, owner-only (0600, created under umask 077), served from
the master's own select loop (no thread). One request per connection: a JSON
line such as ``{"command": "pause"}``; one JSON line back. A request that must
wait for something (pause until every worker has paused, reload until the new
config is applied) keeps its connection open until the master answers it.
"""

import json
import os
import socket
import stat

MAX_REQUEST = 64 * 1024
COMMANDS = ("status", "pause", "resume", "reload", "restart", "stop")


class ControlError(RuntimeError):
    pass


class BadRequest(ValueError):
    pass


def parse_request(data: bytes) -> dict:
    """Decode one request line; BadRequest says what is wrong with it."""
    try:
        request = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"request is not JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("request is nested too deeply to be a command") from None
    if not isinstance(request, dict):
        raise BadRequest("request is not a JSON object")
    command = request.get("command")
    if command not in COMMANDS:
        raise BadRequest(f"unknown command {_shown(command)}; commands are {', '.join(COMMANDS)}")
    pools = request.get("pools", [])
    if command == "restart" and not (isinstance(pools, list) and all(isinstance(p, str) for p in pools)):
        raise BadRequest("restart: pools must be a list of pool names")
    return request


def _shown(command) -> str:
    # Never the repr of whatever arrived: it can be 64 KiB long, or nested
    # deeper than repr can go.
    if isinstance(command, str):
        return repr(command) if len(command) <= 60 else f"{command[:60]!r}… ({len(command)} characters)"
    kinds = {type(None): "(none given)", bool: "(a boolean)", int: "(a number)", float: "(a number)",
             list: "(an array)", dict: "(an object)"}
    return kinds.get(type(command), "(not a string)")


class Connection:
    def __init__(self, sock):
        self.sock = sock
        self.buffer = b""
        self.request = None

    def fileno(self):
        return self.sock.fileno()

    def reply(self, **answer) -> None:
        try:
            self.sock.setblocking(True)
            self.sock.settimeout(2.0)
            self.sock.sendall(json.dumps(answer).encode() + b"\n")
        except OSError:
            pass  # the client went away; nothing to tell
        finally:
            self.sock.close()


class ControlServer:
    def __init__(self, path: str):
        self.path = path
        self.sock = None
        self.connections: list[Connection] = []

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
        sock.listen(16)
        sock.setblocking(False)
        self.sock = sock

    def fileno(self):
        return self.sock.fileno()

    def waitables(self) -> list:
        """What the master's select should watch: the listener and connections
        whose request has not fully arrived."""
        return [self] + [c for c in self.connections if c.request is None]

    def service(self, ready) -> list[Connection]:
        """Accept and read what ``ready`` says is ready; return connections
        whose request is complete (parsed into ``conn.request``)."""
        complete = []
        if self in ready:
            while True:
                try:
                    client, _ = self.sock.accept()
                except (BlockingIOError, InterruptedError):
                    break
                client.setblocking(False)
                self.connections.append(Connection(client))
        for conn in [c for c in self.connections if c in ready and c.request is None]:
            try:
                chunk = conn.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                chunk = b""
            conn.buffer += chunk
            if not chunk or b"\n" in conn.buffer or len(conn.buffer) > MAX_REQUEST:
                self.connections.remove(conn)
                line = conn.buffer.split(b"\n", 1)[0]
                if len(conn.buffer) > MAX_REQUEST:
                    conn.reply(ok=False, error=f"request longer than {MAX_REQUEST} bytes")
                    continue
                if not line.strip():
                    conn.sock.close()
                    continue
                try:
                    conn.request = parse_request(line)
                except BadRequest as exc:
                    conn.reply(ok=False, error=str(exc))
                    continue
                complete.append(conn)
        return complete

    def close_in_child(self) -> None:
        """In a process forked from the master: drop its copies of the
        sockets, leaving the socket file to the master."""
        if self.sock is not None:
            self.sock.close()
        for conn in self.connections:
            conn.sock.close()

    def close(self) -> None:
        for conn in self.connections:
            conn.sock.close()
        self.connections.clear()
        if self.sock is not None:
            self.sock.close()
            self.sock = None
            try:
                if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                    os.unlink(self.path)
            except FileNotFoundError:
                pass


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


def request(path: str, command: str, timeout: float = 60.0, **fields) -> dict:
    """Send one request to the master at ``path`` and return its answer."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise ControlError(f"no master is running (nothing answers on {path}: {exc.strerror})") from None
        except PermissionError:
            # The socket is owner-only (0600, in a 0700 directory under systemd).
            raise ControlError(f"permission denied on {path}: run resquectl as the master's user "
                               f"(e.g. sudo -u resqued resquectl ...) or as root") from None
        sock.sendall(json.dumps({"command": command, **fields}).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        raise ControlError(f"the master did not answer {command!r} within {timeout:.0f}s") from None
    finally:
        sock.close()
    if not data:
        raise ControlError(f"the master closed the connection without answering {command!r}")
    return json.loads(data)
