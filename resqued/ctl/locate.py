"""Which master a master command means: its control socket, pidfile and
shutdown_timeout, from ``-c pool.yml``, ``--pidfile`` or ``--socket``.

A pool.yml edited since its master started may no longer load, not even as
YAML (``pools: [`` left half-typed). The operator must still reach that
master, to see it or stop it: its pidfile and control_socket keys are read
leniently (line by line when the YAML does not parse), else their defaults;
failing that, a running master of this user whose own record of its config
(what ``status`` answers) is this file. Either way the master found must say
it runs this file, and resquectl warns, naming the file's problem.
"""

import os
import sys

import psutil
import yaml

from resqued.config.loader import load_config
from resqued.config.model import ConfigError
from resqued.config.settings import default
from resqued.config.yamlnodes import MAX_FILE_BYTES
from resqued.ctl import masterclient
from resqued.ctl.output import CtlError
from resqued.exits import EX_CONFIG, EXIT_FAILURE, EXIT_USAGE
from resqued.protocols.controlsocket import ControlError
from resqued.process.pidfile import read_pid, socket_beside
from resqued.process.signals import process_alive

LENIENT_KEYS = ("pidfile", "control_socket", "shutdown_timeout")
PROBE_TIMEOUT = 5.0   # a master answers status from its loop at once; a hung one is not waited for


class MasterError(CtlError):
    pass


def locate(args):
    """(socket path, pidfile or None, shutdown_timeout) of the master meant."""
    if getattr(args, "config", None):
        try:
            config = load_config(args.config, getattr(args, "environment", None))
        except ConfigError as exc:
            if args.master_command == "reload":   # the file is what it would apply: say why now
                raise MasterError(str(exc), EX_CONFIG) from None
            return _locate_despite(args.config, exc)
        return config.control_socket, config.pidfile, config.shutdown_timeout
    # Without the config, the master's shutdown_timeout is unknown: assume the default.
    if getattr(args, "socket", None):
        return os.path.abspath(args.socket), None, default("shutdown_timeout")
    if getattr(args, "pidfile", None):
        return os.path.abspath(socket_beside(args.pidfile)), os.path.abspath(args.pidfile), default("shutdown_timeout")
    raise MasterError("which master? give -c pool.yml, --pidfile PATH or --socket PATH", EXIT_USAGE)


def _locate_despite(path: str, error: ConfigError):
    config_path = os.path.abspath(path)
    paths = read_paths(path)
    if paths is None:
        raise MasterError(f"{error}; to reach a running master anyway, give --pidfile PATH or --socket PATH",
                          EX_CONFIG)
    socket_path, pidfile, timeout = paths
    runs = _config_of(socket_path)
    if not _same_file(runs, config_path):
        found = _running_master_of(config_path)
        if found is None:
            why = f"the master at {socket_path} runs {runs}" if runs else f"no master answers at {socket_path}"
            raise MasterError(f"{error} ({why}); to reach a running master anyway, give --pidfile PATH "
                              "or --socket PATH", EX_CONFIG)
        socket_path, pidfile = found, None
    print(f"resquectl: warning: {error}: using the running master at {socket_path}", file=sys.stderr)
    return socket_path, pidfile, timeout


def read_paths(path: str):
    """(control socket, pidfile, shutdown_timeout) from pool.yml's keys (or
    their defaults), whatever else in the file is wrong; None if it cannot
    be read (or is larger than a config file can be)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None
    if len(text) > MAX_FILE_BYTES:
        return None
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        data = _top_level_lines(text)
    data = data if isinstance(data, dict) else {}
    base = os.path.dirname(os.path.abspath(path))

    def key(name):
        value = data.get(name)
        value = value if isinstance(value, str) and value.strip() else default(name)
        return os.path.normpath(os.path.join(base, value)) if value else None
    pidfile = key("pidfile")
    timeout = data.get("shutdown_timeout")
    timeout = timeout if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0 \
        else default("shutdown_timeout")
    return key("control_socket") or socket_beside(pidfile), pidfile, float(timeout)


def _top_level_lines(text: str) -> dict:
    """The keys that find the master, each read from its own top-level line
    (``pidfile: /run/resqued.pid  # a comment``) of a file that is not YAML
    as a whole."""
    found = {}
    for line in text.splitlines():
        if line.startswith(LENIENT_KEYS):
            try:
                value = yaml.safe_load(line)
            except yaml.YAMLError:
                continue
            if isinstance(value, dict):
                found.update((k, v) for k, v in value.items() if k in LENIENT_KEYS)
    return found


def _config_of(socket_path: str) -> str | None:
    """The config file the master at ``socket_path`` says it runs, or None."""
    try:
        # Without the workers: only the config is read, and a master reads
        # /proc for each worker to answer with its memory (~1 s of its CPU
        # with 32 busy workers on a loaded machine).
        answer = masterclient.request(socket_path, "status", timeout=PROBE_TIMEOUT, memory=False, workers=False)
    except (ControlError, OSError, ValueError):
        return None
    master = answer.get("master") if isinstance(answer, dict) else None
    return master.get("config") if isinstance(master, dict) else None


def _running_master_of(config_path: str) -> str | None:
    """The control socket of a running master (this user's) whose config is
    ``config_path``: by its title, then its own answer on each unix socket
    it listens on."""
    title = f"resqued-master[{os.path.basename(config_path)}]"
    for proc in psutil.process_iter():
        try:
            if proc.uids().real != os.getuid() or not " ".join(proc.cmdline()).startswith(title):
                continue
            sockets = {c.laddr for c in proc.net_connections(kind="unix") if isinstance(c.laddr, str) and c.laddr}
        except psutil.Error:
            continue
        for socket_path in sorted(sockets):
            if _same_file(_config_of(socket_path), config_path):
                return socket_path
    return None


def _same_file(recorded: str | None, path: str) -> bool:
    # The master records the path it was given, made absolute: it may have
    # been given a symbolic link to this file.
    try:
        return recorded is not None and os.path.samefile(recorded, path)
    except OSError:
        return False


def not_a_master(path: str, pidfile: str | None) -> None:
    """A pidfile whose live process has no control socket beside it is not a
    resqued master (a php-resque or Ruby worker's, say): never report that
    no master is running while its process works."""
    if not pidfile or os.path.exists(path):
        return
    pid = read_pid(pidfile)
    if pid and process_alive(pid):
        raise MasterError(f"process {pid} of {pidfile} is running, but has no control socket beside it ({path}): "
                          "it is not a resqued master; signal it instead (QUIT: stop after the job, "
                          "USR2: pause, CONT: resume)", EXIT_FAILURE)
