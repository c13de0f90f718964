"""The spawner's socket protocol, imported by both ends: the master
(master/spawnerlink.py) and the spawner (spawner/main.py). Pure: no Redis.

Over a SOCK_SEQPACKET socketpair, one request at a time:
  spawner -> master   R                 Ready: the imports are done
  master -> spawner   W + 2 fds         ForkWorker (fds: its settings, its report pipe)
                      L + 1 fd          ForkRecovery (fd: its settings; master/recoveryruns.py)
  spawner -> master   P <pid>           Forked (the master's child soon)
                      E <problem>       Refused: not forked
The settings are JSON in a memfd: a message is limited to ~200 KB, which a
config with thousands of aliases could pass. A message that is none of these
raises ProtocolError; the side that receives it says so in one log line.
"""

import json
import os
import socket
from dataclasses import dataclass

READY = b"R"
MAX_KIND = 16           # a request's bytes besides its fds: its kind
MAX_REPLY = 4096


class ProtocolError(ValueError):
    """A message that is none of the protocol's."""


@dataclass(frozen=True)
class ForkWorker:
    spec: dict          # what the worker runs with (master/workerprocess.spawn)
    report_fd: int      # the write end of its report pipe


@dataclass(frozen=True)
class ForkRecovery:
    spec: dict          # the dead workers and their Redis (master/recoveryruns.py)


@dataclass(frozen=True)
class Forked:
    pid: int


@dataclass(frozen=True)
class Refused:
    problem: str


_KINDS = {ForkWorker: b"W", ForkRecovery: b"L"}
_FDS = {b"W": 2, b"L": 1}    # the settings' memfd first


def send_request(sock, request) -> None:
    """Send ``request`` (ForkWorker or ForkRecovery); OSError if it cannot."""
    settings = os.memfd_create("resqued-settings", os.MFD_CLOEXEC)
    try:
        os.write(settings, json.dumps(request.spec).encode())
        extra = [request.report_fd] if isinstance(request, ForkWorker) else []
        socket.send_fds(sock, [_KINDS[type(request)]], [settings, *extra])
    finally:
        os.close(settings)


def receive_request(sock):
    """The next request, or None once the master has closed its end. The
    caller owns a ForkWorker's report_fd. ProtocolError for a malformed one
    (whatever fds it carried are closed)."""
    while True:
        try:
            kind, fds, _, _ = socket.recv_fds(sock, MAX_KIND, 2)
            break
        except InterruptedError:
            continue
    if not kind and not fds:
        return None
    try:
        if kind not in _FDS:
            raise ProtocolError(f"unknown request {kind[:MAX_KIND]!r}")
        if len(fds) != _FDS[kind]:
            raise ProtocolError(f"request {kind.decode()} with {len(fds)} descriptors, not {_FDS[kind]}")
        try:
            spec = json.loads(_read_all(fds[0]))
        except (OSError, ValueError) as exc:
            raise ProtocolError(f"request {kind.decode()} with unreadable settings ({exc})") from None
        if not isinstance(spec, dict):
            raise ProtocolError(f"request {kind.decode()} with settings that are no JSON object")
    except ProtocolError:
        for fd in fds:
            os.close(fd)
        raise
    os.close(fds[0])
    return ForkWorker(spec, fds[1]) if kind == b"W" else ForkRecovery(spec)


def encode_reply(reply) -> bytes:
    if isinstance(reply, Forked):
        return b"P %d" % reply.pid
    return f"E {reply.problem}".encode()[:MAX_REPLY]


def decode_reply(data: bytes):
    """Forked or Refused; ProtocolError for anything else."""
    kind, _, body = data.partition(b" ")
    if kind == b"P" and body.isdigit():
        return Forked(int(body))
    if kind == b"E":
        return Refused(body.decode(errors="replace"))
    raise ProtocolError(f"unreadable reply {data[:80]!r}")


def _read_all(fd: int) -> bytes:
    chunks = []
    offset = 0
    while chunk := os.pread(fd, 1 << 16, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)
