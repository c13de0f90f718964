"""Starting a module of ours in a fresh interpreter (fork + exec, through
posix_spawn): how the master starts its spawner and the probe of new code,
so that its own image never holds redis-py, the worker's code or the jobs.

What survives exec is chosen here, not inherited by accident:
- descriptors: only ``pass_fds``. Python opens its own O_CLOEXEC, but what
  we inherited from whoever started us (a shell's, a supervisor's) may be
  inheritable: those are made close-on-exec first;
- signals: what a fork gave before. Handlers reset to default (exec does
  that by itself), a signal we ignore stays ignored (python-daemon's
  SIGTSTP under --daemonize, what whoever started us ignored), and the mask
  is set to ``blocked`` (a blocked signal survives exec too);
- the import path: the master's own ``sys.path``, so that the child finds
  resqued and the job modules exactly where the master would. ``python -m``
  would put the current directory first instead (a ``json.py`` there would
  shadow the standard library's), and would not find a resqued the master
  found through a path of its own;
- the interpreter's options (-O, -W, -X ...), as multiprocessing passes them.
"""

import os
import signal
import subprocess
import sys

# What ``python -m MODULE`` does, after replacing the import path with ours.
# Only the builtin sys module is used before the path is set.
_BOOT = ("import sys; n = int(sys.argv[1]); sys.path[:] = sys.argv[2:2 + n]; del sys.argv[1:2 + n]; "
         "import runpy; runpy.run_module(sys.argv.pop(1), run_name='__main__', alter_sys=True)")


def start_module(module: str, args, pass_fds=(), blocked=(), new_group: bool = False) -> int:
    """Start ``module`` (run as __main__) with ``args`` in a new interpreter,
    our child; its pid. ``new_group``: in a process group of its own (Ctrl-C
    on our terminal is not for it). OSError if it cannot start."""
    # _args_from_interpreter_flags: what multiprocessing's spawn uses to the same end.
    flags = subprocess._args_from_interpreter_flags()
    argv = [sys.executable, *flags, "-c", _BOOT, str(len(sys.path)), *sys.path, module, *args]
    _close_on_exec_but(pass_fds)
    for fd in pass_fds:
        os.set_inheritable(fd, True)
    try:
        handled = [s for s in signal.valid_signals() if signal.getsignal(s) is not signal.SIG_IGN]
        return os.posix_spawn(sys.executable, argv, os.environ, setsigdef=handled,
                              setsigmask=tuple(blocked), **({"setpgroup": 0} if new_group else {}))
    finally:
        for fd in pass_fds:
            os.set_inheritable(fd, False)


def _close_on_exec_but(keep) -> None:
    """Every descriptor of ours but stdin, stdout, stderr and ``keep`` made
    close-on-exec (most are already: one fcntl each to look)."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = range(3, os.sysconf("SC_OPEN_MAX"))   # no /proc: every possible number
    for fd in fds:
        if fd > 2 and fd not in keep:
            try:
                if os.get_inheritable(fd):
                    os.set_inheritable(fd, False)
            except OSError:
                pass   # not open (the listing's own descriptor, closed by now)
