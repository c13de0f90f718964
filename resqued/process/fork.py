"""Every fork resqued makes, in one place.

A forked child is a copy of its parent mid-call: if the code it runs raises
or returns, it would go on running the parent's code (its loop, its
``finally`` blocks, its atexit handlers) beside the parent. ``fork_child``
makes that impossible: the child runs one function and leaves through
``os._exit`` (or the ``exit`` it is given) whatever happens. What differs
between the forks (which descriptors the child must not keep, how it
leaves, what it says if it crashes) is a parameter, not a copy of this.

The chores a child does before it runs anything are parameters too, done
in one order: close what it must not hold, leave the parent's process group,
reset the parent's signal handlers (and ignore some), become a subreaper,
ask for a signal when the parent dies, leave if the parent has already died,
and set the title. The spawner's grandchildren do theirs after they are
adopted (spawner/main.py, spawner/entrypoints.py): PDEATHSIG fires on the
death of whoever is the parent when it is asked for.

``fork_continuing`` is the one fork whose child goes on in the caller's
code: ``--daemonize`` (daemon.py), where the child becomes the master.

test_architecture.test_fork_sites keeps every fork in this file.
"""

import os
import signal

from resqued.process.signals import become_child_subreaper, exit_on_parent_death
from resqued.process.title import set_title


def fork_child(run, *, close=(), own_group=False, reset=None, ignore=(), subreaper=False, pdeathsig=None,
               parent_pid=None, orphan_code=1, title=None, exit=os._exit, on_crash=None) -> int:
    """Fork; in the parent, return the child's pid. In the child, in this
    order: close ``close`` (descriptors, or objects with ``close()``: a
    socket object closes its own descriptor, so that it never closes a
    reused number later); with ``own_group``, lead a process group of its
    own; ``reset.reset_in_child()`` (the parent's SignalQueue, say);
    ignore the signals in ``ignore``; with ``subreaper``, adopt what its
    descendants leave; with ``pdeathsig``, get that signal when the parent
    dies, and leave with ``orphan_code`` if the parent (``parent_pid``)
    already has; set ``title`` (process/title.py). Then call ``run()`` and
    leave with ``exit(code)``: ``run``'s return value, or 1 if anything
    raised (``on_crash()`` is then called inside the ``except``, to log it).
    Never returns in the child."""
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
        if own_group:
            try:
                os.setpgid(0, 0)  # also done by the parent; whichever runs first wins
            except OSError:
                pass
        if reset is not None:
            reset.reset_in_child()
        for signum in ignore:
            signal.signal(signum, signal.SIG_IGN)
        if subreaper:
            become_child_subreaper()
        if pdeathsig is not None:
            exit_on_parent_death(pdeathsig)
        if parent_pid is not None and os.getppid() != parent_pid:
            code = orphan_code  # it died before we asked to die with it
        else:
            if title is not None:
                set_title(title)
            code = run()
            if code is None:
                code = 0
    except BaseException:
        if on_crash is not None:
            on_crash()
    finally:
        exit(code)


# What exec keeps that a foreign program must not inherit: Python ignores
# SIGPIPE (and SIGXFSZ), which a shell pipeline in a PHP or Ruby job expects
# to end it (subprocess's restore_signals).
RESTORED = tuple(getattr(signal, name) for name in ("SIGPIPE", "SIGXFZ", "SIGXFSZ") if hasattr(signal, name))


def fork_exec(argv, env, *, cwd=None, reset=None, pdeathsig=None, parent_pid=None) -> tuple[int, int]:
    """Fork and exec ``argv`` (PATH searched) with exactly ``env``, in
    ``cwd``, leading a process group of its own, with default signal
    dispositions, nothing blocked and no descriptor but 0-2 (``reset``:
    the parent's SignalQueue). Returns (pid, error_fd): error_fd is the read
    end of a close-on-exec pipe that is at EOF once the exec succeeded, or
    holds why it failed ("cannot run 'php': ..."); the child then exits 127."""
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)

    def run():
        os.closerange(3, write_fd)
        os.closerange(write_fd + 1, _max_fd())
        for signum in RESTORED:
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        try:
            if cwd is not None:
                os.chdir(cwd)
            os.execvpe(argv[0], argv, env)
        except OSError as exc:
            where = f" in {cwd}" if cwd is not None else ""
            os.write(write_fd, f"cannot run {argv[0]!r}{where}: {exc.strerror or exc}".encode()[:500])
        return 127

    try:
        pid = fork_child(run, close=(read_fd,), own_group=True, reset=reset, pdeathsig=pdeathsig,
                         parent_pid=parent_pid)
    finally:
        os.close(write_fd)
    try:
        os.setpgid(pid, pid)  # as the child does: whichever runs first wins
    except OSError:
        pass
    return pid, read_fd


def _max_fd() -> int:
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (ValueError, OSError):
        return 65536


def fork_continuing() -> int:
    """A plain fork whose child returns here too (0 in the child, the pid
    in the parent): only for a child that becomes the caller (daemon.py)."""
    return os.fork()
