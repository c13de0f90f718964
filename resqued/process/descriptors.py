"""What a process forked without exec keeps of its parent's descriptors.

O_CLOEXEC (Python's default) acts only at exec: a process forked to go on
running Python inherits every descriptor its parent holds. Closing them one
by one, by name, misses whatever someone adds later (the master's end of an
old spawner's socket, a resquectl connection held open for its answer).
So a child that must start clean closes everything but what it names.
"""

import gc
import os


def close_all_but(keep) -> None:
    """In a just-forked child: close every descriptor but stdin, stdout,
    stderr and ``keep``. Python objects that owned the others are not told:
    collect the garbage first, so that none is finalized later and closes a
    number reused by then (the live ones are the parent's state, which the
    child never touches again)."""
    gc.collect()
    keep = {0, 1, 2, *keep}
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        # No /proc: the soft limit bounds every descriptor number.
        fds = range(os.sysconf("SC_OPEN_MAX"))
    for fd in fds:
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass  # the directory listdir read, closed already
