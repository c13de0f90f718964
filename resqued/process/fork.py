"""Every fork resqued makes, in one place.

A forked child is a copy of its parent mid-call: if the code it runs raises
or returns, it would go on running the parent's code (its loop, its
``finally`` blocks, its atexit handlers) beside the parent. ``fork_child``
makes that impossible: the child runs one function and leaves through
``os._exit`` (or the ``exit`` it is given) whatever happens. What differs
between the forks (which descriptors the child must not keep, how it
leaves, what it says if it crashes) is a parameter, not a copy of this.

The chores a child does first (its signals, its process group, its title,
PDEATHSIG) stay in the function it runs: their order differs per child and
is part of each one's contract (jobchild.py, jobforker.py,
spawner/main.py).

``fork_continuing`` is the one fork whose child goes on in the caller's
code: ``--daemonize`` (daemon.py), where the child becomes the master.

test_architecture.test_fork_sites keeps every fork in this file.
"""

import os


def fork_child(run, *, close=(), exit=os._exit, on_crash=None) -> int:
    """Fork; in the parent, return the child's pid. In the child, close
    ``close`` (descriptors, or objects with ``close()``: a socket object
    closes its own descriptor, so that it never closes a reused number
    later), call ``run()`` and leave with ``exit(code)``: ``run``'s return
    value, or 1 if anything raised (``on_crash()`` is then called inside
    the ``except``, to log it). Never returns in the child."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        for item in close:
            if isinstance(item, int):
                os.close(item)
            else:
                item.close()
        code = run()
        if code is None:
            code = 0
    except BaseException:
        if on_crash is not None:
            on_crash()
    finally:
        exit(code)


def fork_continuing() -> int:
    """A plain fork whose child returns here too (0 in the child, the pid
    in the parent): only for a child that becomes the caller (daemon.py)."""
    return os.fork()
