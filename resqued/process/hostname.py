"""The host name resqued goes by: in worker ids (``host:pid:queues``, which
Resque's pruners compare with their own host's), in the fleet's records and
the scheduler's lock. ``RESQUED_HOSTNAME`` overrides the system's: two
masters on one machine can then stand for two hosts (the tests do so), and
a container whose name changes at each start can keep one."""

import os
import socket

VARIABLE = "RESQUED_HOSTNAME"


def hostname() -> str:
    return os.environ.get(VARIABLE) or socket.gethostname()
