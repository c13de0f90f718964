"""Signal handling for long-running processes (worker, master).

Handlers only append the signal to a list; ``set_wakeup_fd`` writes a byte to
a socketpair so that whatever the main loop is waiting on (poll, BLMOVE via
the reserver) ends at once. The main loop drains and dispatches.
"""

import ctypes
import os
import selectors
import signal
import socket

import psutil


class SignalQueue:
    def __init__(self, signals):
        self._signals = list(signals)
        self._pending: list[int] = []
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._previous = {}

    def install(self) -> None:
        signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        for signum in self._signals:
            self._previous[signum] = signal.signal(signum, self._record)
        # A parent may have started us with these blocked (WORKER_SIGNALS):
        # what arrived meanwhile is delivered now, to our own handlers.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, self._signals)

    def _record(self, signum, frame):
        self._pending.append(signum)

    def fileno(self) -> int:
        """Readable whenever a signal has arrived and not been drained."""
        return self._reader.fileno()

    def has_pending(self) -> bool:
        return bool(self._pending)

    def drain(self) -> list[int]:
        # Take the list before emptying the pipe: a signal landing in between
        # stays pending (waits check has_pending() before they block).
        pending, self._pending = self._pending, []
        try:
            while self._reader.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        return pending

    def reset_in_child(self) -> None:
        """After fork, in a child that must behave like a plain process:
        default dispositions, no wakeup fd, none of our descriptors."""
        signal.set_wakeup_fd(-1)
        for signum in self._signals:
            signal.signal(signum, signal.SIG_DFL)
        self._reader.close()
        self._writer.close()


# The signals a worker handles. A process that forks or starts workers keeps
# them blocked (the spawner is started with them blocked, and its children
# inherit the mask) until the new process installs its own SignalQueue, so a
# signal sent right after the start is neither lost (caught by an inherited
# handler) nor fatal (the default action of QUIT or USR1).
WORKER_SIGNALS = (signal.SIGQUIT, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1,
                  signal.SIGUSR2, signal.SIGCONT, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU)


def wait_readable(fds, timeout):
    """Wait until one of ``fds`` (ints or objects with fileno) is readable;
    returns the ready ones."""
    return wait_ready(fds, (), timeout)[0]


def wait_ready(readable, writable, timeout):
    """Wait until one of ``readable`` can be read or one of ``writable``
    written; returns the two lists of those that can. Through poll(2)
    (selectors.PollSelector), not select(): the master watches a report pipe
    per worker and its control connections, and select() fails outright once
    a descriptor's number passes 1023. Not epoll either: built on each call,
    an epoll costs a descriptor (which a master out of them has not got) and
    a system call per watched one (11.5 ms a turn with 1,000 workers, 0.5
    with poll)."""
    with selectors.PollSelector() as selector:
        for obj in readable:
            try:
                selector.register(obj, selectors.EVENT_READ)
            except KeyError:   # listed twice
                pass
        for obj in writable:
            try:
                selector.register(obj, selectors.EVENT_WRITE)
            except KeyError:   # watched for reading too
                selector.modify(obj, selectors.EVENT_READ | selectors.EVENT_WRITE)
        try:
            events = selector.select(timeout)
        except InterruptedError:
            return [], []
    return ([key.fileobj for key, mask in events if mask & selectors.EVENT_READ],
            [key.fileobj for key, mask in events if mask & selectors.EVENT_WRITE])


def collapse_repeats(signums, counted=(), ignored=()) -> list[int]:
    """``signums`` with each run of one signal made one: 200 HUPs sent at
    once are one reload, not 200 in a row. A signal in ``counted`` keeps every
    repeat (each TTIN is one more worker); those in ``ignored`` are dropped,
    so that they do not split a run."""
    collapsed = []
    for signum in signums:
        if signum in ignored:
            continue
        if not collapsed or signum != collapsed[-1] or signum in counted:
            collapsed.append(signum)
    return collapsed


def describe(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def has_controlling_terminal() -> bool:
    """Does this process have a controlling terminal? There, resizing the
    window sends SIGWINCH, so WINCH cannot be taken as an operator's command.
    Only a process with one can open /dev/tty (O_NONBLOCK: a serial line
    must not make the open wait for a carrier)."""
    try:
        os.close(os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK))
    except OSError:
        return False
    return True


PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
_prctl = None


def _prctl_call(option: int, arg: int) -> bool:
    global _prctl
    try:
        if _prctl is None:
            # Looked up once: a process that forks job children calls this
            # itself first, and each child then skips building a ctypes CDLL.
            _prctl = ctypes.CDLL(None, use_errno=True).prctl
        return _prctl(option, arg, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def exit_on_parent_death(signum: int = signal.SIGQUIT) -> None:
    """Ask Linux to send ``signum`` when the parent dies (PR_SET_PDEATHSIG);
    the worker's own ppid check covers other systems."""
    _prctl_call(PR_SET_PDEATHSIG, signum)


def become_child_subreaper() -> bool:
    """Adopt our descendants when their parent dies (PR_SET_CHILD_SUBREAPER),
    instead of init: the master's workers are forked by its spawner and must
    be the master's own children."""
    return _prctl_call(PR_SET_CHILD_SUBREAPER, 1)


def kill_tree(pid: int) -> None:
    """SIGKILL a process and everything under it (a worker's job children
    lead their own process groups, so a group kill would miss them)."""
    try:
        procs = [psutil.Process(pid)]
        procs += procs[0].children(recursive=True)
    except psutil.NoSuchProcess:
        return
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
