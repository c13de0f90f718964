"""The spawner's socket: the master (master/spawnerlink.py) and its spawner
(spawner/main.py), on a SOCK_SEQPACKET socketpair, one request at a time;
descriptors ride along with SCM_RIGHTS.

    spawner -> master   b"R"              SpawnerReady: its imports are done
    master -> spawner   b"W" + 2 fds      ForkWorker (fds: its settings, its report pipe's write end)
                        b"L" + 1 fd       ForkRecovery (fd: its settings)
                        b"C" + 2 fds      ProbeCode (fds: a config's settings, the verdict pipe's write end)
    spawner -> master   b"P <pid>"        Forked (the master's child soon; a probe: the spawner's own)
                        b"E <problem>"    NotForked
    probe -> master     b"ok" | problem   on the verdict pipe, then its end (ProbeVerdict)

The settings travel in a memfd, the first descriptor: a message is limited
to ~200 KB, which a config with thousands of aliases could pass. A worker's
are its WorkerSpec as JSON (config/workerspec.py), passed on as they are; a
recovery run's are a JSON object (master/recoveryruns.py), a probe's the
settings codeprobe.probe_settings makes. The master closing its end means
"stop".

A probe (a reload's check of the new config's job modules) is forked by the
spawner as its own child, which answers on its pipe: the spawner replies at
once and is free to fork workers while the probe imports.
"""

import json
from dataclasses import dataclass

MAX_KIND = 16               # bytes of a request besides its descriptors
MAX_REPLY = 4096
REQUEST_FDS = {b"W": 2, b"L": 1, b"C": 2, b"J": 2}
PROBE_OK = b"ok"


class SpawnerMessageRefused(ValueError):
    """A message that is none of these: why, in one line."""


@dataclass(frozen=True)
class SpawnerReady:
    def encode(self) -> bytes:
        return b"R"


@dataclass(frozen=True)
class ForkWorker:
    spec_json: str      # its WorkerSpec (master/workerprocess.spawn)

    kind = b"W"

    def settings(self) -> bytes:
        return self.spec_json.encode()


@dataclass(frozen=True)
class ForkRecovery:
    spec: dict          # the dead workers and their Redis

    kind = b"L"

    def settings(self) -> bytes:
        return json.dumps(self.spec).encode()


@dataclass(frozen=True)
class ProbeCode:
    spec: dict          # the config's Redis URL, job modules and aliases (codeprobe.probe_settings)

    kind = b"C"

    def settings(self) -> bytes:
        return json.dumps(self.spec).encode()


@dataclass(frozen=True)
class CountJobs:
    spec: dict          # the command workers' ids and their Redis (master/jobcounts.py)

    kind = b"J"

    def settings(self) -> bytes:
        return json.dumps(self.spec).encode()


@dataclass(frozen=True)
class ProbeVerdict:
    """What a probe wrote on its pipe before its end: ``problem`` is None
    when the code imports; ``answered`` is False when it died first."""
    problem: str | None
    answered: bool = True

    def encode(self) -> bytes:
        return PROBE_OK if self.problem is None else self.problem.encode()[:60000]

    @classmethod
    def decode(cls, data: bytes) -> "ProbeVerdict":
        if not data:
            return cls("the check of the job modules ended without an answer", answered=False)
        return cls(None) if data == PROBE_OK else cls(data.decode(errors="replace"))


@dataclass(frozen=True)
class Forked:
    pid: int

    def encode(self) -> bytes:
        return b"P %d" % self.pid


@dataclass(frozen=True)
class NotForked:
    problem: str

    def encode(self) -> bytes:
        return f"E {self.problem}".encode()[:MAX_REPLY]


def check_request(kind: bytes, fds: int) -> None:
    """A request's kind and descriptor count, before its settings are read."""
    if kind not in REQUEST_FDS:
        raise SpawnerMessageRefused(f"unknown request {kind[:MAX_KIND]!r}")
    if fds != REQUEST_FDS[kind]:
        raise SpawnerMessageRefused(f"request {kind.decode()} with {fds} descriptors, not {REQUEST_FDS[kind]}")


def decode_request(kind: bytes, fds: int, settings: bytes) -> ForkWorker | ForkRecovery | ProbeCode | CountJobs:
    """A request: its kind, how many descriptors came with it, the settings
    read from the first. The report pipe of a ForkWorker, the verdict pipe
    of a ProbeCode, or the answer pipe of a CountJobs, is the second."""
    check_request(kind, fds)
    try:
        text = settings.decode()
        spec = json.loads(text)
    except ValueError as exc:
        raise SpawnerMessageRefused(f"request {kind.decode()} with unreadable settings ({exc})") from None
    if not isinstance(spec, dict):
        raise SpawnerMessageRefused(f"request {kind.decode()} with settings that are no JSON object")
    if kind == b"W":
        return ForkWorker(text)
    if kind == b"J":
        return CountJobs(spec)
    return ForkRecovery(spec) if kind == b"L" else ProbeCode(spec)


def decode_notice(message: bytes) -> SpawnerReady:
    """What the spawner says unasked: only that it is ready."""
    if message == b"R":
        return SpawnerReady()
    raise SpawnerMessageRefused(f"unknown message {message[:MAX_KIND]!r}")


def decode_reply(message: bytes) -> Forked | NotForked:
    kind, _, body = message.partition(b" ")
    if kind == b"P" and body.isdigit():
        return Forked(int(body))
    if kind == b"E":
        return NotForked(body.decode(errors="replace"))
    raise SpawnerMessageRefused(f"unreadable reply {message[:80]!r}")
