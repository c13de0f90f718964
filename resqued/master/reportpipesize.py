"""How large a worker's report pipe is made (workerprocess.spawn creates it).

A settled master reads the report pipes once a pace (reportpace.py); what a
worker writes meanwhile waits in its pipe, and a pipe that fills makes the
worker's non-blocking writes fail: its state lines are dropped until the
master reads again, and a worker killed then is judged on an old state.
Linux's default pipe holds 64 KiB: about 220 jobs' reports. So the pipe
is enlarged, up to MOST.

But the pipes of one user share a budget (/proc/sys/fs/pipe-user-pages-soft,
64 MiB by default): an unprivileged user past it has every new pipe it makes
shrunk to two pages (a worker's job pipes, other programs' pipes), and
enlarging refused. So the report pipes take at most a SHARE of that budget,
split among the config's workers: 64 workers get 256 KiB each, 16 or fewer
1 MiB. A pipe is never made smaller than the kernel's default, and a refusal
(EPERM past the limit, EBUSY) leaves it at that default, quietly.
"""

import fcntl
import os

MOST = 1 << 20    # bytes: about 3,500 jobs' reports, seconds of the fastest worker
SHARE = 4         # the report pipes take a quarter of the user's pipe budget: the rest is for
                  # a rolling restart's second set of workers, job pipes and other programs
DEFAULT = 1 << 16  # the kernel's own pipe size
PAGE = os.sysconf("SC_PAGE_SIZE")


def report_pipe_size(workers: int, max_size: int | None, soft_pages: int | None) -> int:
    """The size each of ``workers`` report pipes is given: a power of two
    (the kernel rounds up to one), at most MOST and /proc's ``max_size``,
    within 1/SHARE of ``soft_pages`` (0: no limit); DEFAULT when no more fits."""
    size = MOST if max_size is None else min(MOST, max_size)
    if soft_pages:
        size = min(size, soft_pages * PAGE // SHARE // max(1, workers))
    if size <= DEFAULT:
        return DEFAULT
    return 1 << (size.bit_length() - 1)


def enlarge(fd: int, workers: int) -> int:
    """Give the pipe ``fd`` the size report_pipe_size picks for ``workers``;
    the size it has after (the kernel's default when refused)."""
    size = report_pipe_size(workers, _proc_int("/proc/sys/fs/pipe-max-size"),
                            _proc_int("/proc/sys/fs/pipe-user-pages-soft"))
    if size > DEFAULT:
        try:
            return fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, size)
        except OSError:
            pass   # EPERM: the user's pipe budget is spent (or size > pipe-max-size); EBUSY
    return fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)


def _proc_int(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None
