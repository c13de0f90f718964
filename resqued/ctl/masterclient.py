"""resquectl's end of a master's control socket (the master's end is
master/control.py; what both say is protocols/controlsocket.py)."""

import socket

from resqued.protocols.controlsocket import ControlError, Request, decode_answer


def request(path: str, command: str, timeout: float = 60.0, **arguments) -> dict:
    """Send ``command`` (with its Request ``arguments``) to the master at
    ``path`` and return its answer, a JSON object (typed_answer types it)."""
    request = Request(command, **arguments)
    line, command = request.encode(), request.command.value   # the word, in messages
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
        data = b""
        try:
            sock.sendall(line)
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, BrokenPipeError):
            # A master that is closing its socket drops what it has not answered.
            data = b""
    except socket.timeout:
        raise ControlError(f"the master did not answer {command!r} within {timeout:.0f}s") from None
    except OSError as exc:
        raise ControlError(f"cannot talk to the master on {path}: {exc.strerror or exc}") from None
    finally:
        sock.close()
    if not data.endswith(b"\n"):
        raise ControlError(f"the master closed the connection without answering {command!r} "
                           f"(is it stopping? see resquectl status)")
    try:
        return decode_answer(data)
    except ValueError:
        raise ControlError(f"the master's answer to {command!r} is not a JSON object: {data[:80]!r}") from None
