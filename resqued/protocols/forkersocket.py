"""The job forker's socket: a forking worker (worker/execution/standbys.py)
and its job forker (worker/execution/jobforker.py), on a SOCK_SEQPACKET
socketpair, one message per send; descriptors ride along with SCM_RIGHTS.

    worker -> forker   b"S0", b"S1"          StandbyWanted (S1: the worker is
                                              idle, so it rehearses the job path)
    forker -> worker   b"R"                  ForkerReady
                       b"P <pid> <says>"     StandbyForked, with its job pipe's
                                              write end, its report pipe's read end and
                                              its stdout and stderr pipes' read ends;
                                              says 1: it runs childReady listeners and
                                              says how they went before its job
                       b"X <pid> <status>"   ChildExited (its wait status)

The worker closing its end means "stop".
"""

from dataclasses import dataclass

MAX_MESSAGE = 64            # bytes: the longest message, with room to spare
STANDBY_FDS = 4             # with StandbyForked: job pipe (write), report, stdout and stderr pipes (read)


class ForkerMessageRefused(ValueError):
    """A message that is none of these: why, in one line."""


@dataclass(frozen=True)
class StandbyWanted:
    rehearse: bool

    def encode(self) -> bytes:
        return b"S1" if self.rehearse else b"S0"


@dataclass(frozen=True)
class ForkerReady:
    def encode(self) -> bytes:
        return b"R"


@dataclass(frozen=True)
class StandbyForked:
    """A standby child, forked; its descriptors travel beside this message.
    ``says``: the forker (whose listeners the standby has) registered
    childReady listeners, so the standby's word comes first on its report
    pipe: the worker's own table of listeners may differ."""
    pid: int
    says: bool = False

    def encode(self) -> bytes:
        return b"P %d %d" % (self.pid, self.says)


@dataclass(frozen=True)
class ChildExited:
    pid: int
    status: int   # as os.waitpid gave it

    def encode(self) -> bytes:
        return b"X %d %d" % (self.pid, self.status)


def decode_ask(message: bytes) -> StandbyWanted:
    """What the worker asks of its forker."""
    if message in (b"S0", b"S1"):
        return StandbyWanted(message == b"S1")
    raise ForkerMessageRefused(f"unknown request {message[:MAX_MESSAGE]!r}")


def decode_news(message: bytes, fds: int) -> ForkerReady | StandbyForked | ChildExited:
    """What the forker tells the worker; ``fds``: how many descriptors came with it."""
    kind, _, rest = message.partition(b" ")
    numbers = rest.split()
    if not all(n.isdigit() for n in numbers):
        raise ForkerMessageRefused(f"malformed message {message[:MAX_MESSAGE]!r}")
    if kind == b"R" and not numbers:
        return ForkerReady()
    if kind == b"P" and len(numbers) == 2 and numbers[1] in (b"0", b"1"):
        if fds != STANDBY_FDS:
            raise ForkerMessageRefused(f"a standby with {fds} descriptors, not {STANDBY_FDS}")
        return StandbyForked(int(numbers[0]), numbers[1] == b"1")
    if kind == b"X" and len(numbers) == 2:
        return ChildExited(int(numbers[0]), int(numbers[1]))
    raise ForkerMessageRefused(f"unknown message {message[:MAX_MESSAGE]!r}")
