"""The worker's end of its job forker (jobforker.py): the process and the
socket to it. Standbys (standbys.py) holds one ``JobForkerLink`` at a time,
asks it for standbys and reads what the forker says (``recv_with_fds``)."""

import array
import os
import signal
import socket
import time

from resqued.worker.execution import jobforker
from resqued.worker.execution.jobchild import own_group
from resqued.protocols.forkersocket import MAX_MESSAGE, STANDBY_FDS, StandbyWanted


class JobForkerLink:
    """The worker's end of its job forker (jobforker.py): the process and
    the socket to it."""

    def __init__(self, signals, registry, worker_id: str, queues: str, term_timeout: float):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = jobforker.fork_forker(ours, theirs, signals, registry, worker_id, queues, term_timeout)
        theirs.close()
        own_group(pid)  # a Ctrl-C meant for the worker is the worker's to act on
        self.pid = pid
        self.sock = ours
        self.ready = False

    def ask(self, rehearse: bool) -> bool:
        try:
            self.sock.send(StandbyWanted(rehearse).encode())
            return True
        except OSError:
            return False

    def close(self) -> None:
        self.sock.close()  # EOF: it exits, and anything it still has dies with it
        for _ in range(200):
            if os.waitpid(self.pid, os.WNOHANG)[0]:
                return
            time.sleep(0.01)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)


def recv_with_fds(sock):
    """One message and the descriptors that came with it, without waiting
    (socket.recv_fds before Python 3.12 drops its ``flags``)."""
    fds = array.array("i")
    message, ancdata, _, _ = sock.recvmsg(MAX_MESSAGE, socket.CMSG_LEN(STANDBY_FDS * fds.itemsize),
                                          socket.MSG_DONTWAIT)
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
    return message, list(fds)
