"""Which master a master command means: its control socket, pidfile and
shutdown_timeout, from ``-c pool.yml``, ``--pidfile`` or ``--socket``.

A pool.yml edited since its master started may no longer validate: its
pidfile and control_socket keys, read leniently, still find the master.
"""

import os
import sys

import yaml

from resqued.config.loader import load_config
from resqued.config.model import ConfigError
from resqued.config.settings import default
from resqued.config.yamlnodes import MAX_FILE_BYTES
from resqued.ctl.output import CtlError
from resqued.exits import EX_CONFIG, EXIT_FAILURE, EXIT_USAGE
from resqued.process.pidfile import read_pid, socket_beside
from resqued.process.signals import process_alive


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
    """pool.yml no longer validates (edited since the master started, say):
    the operator must still reach the running master, to see it or stop it.
    Its pidfile and control_socket keys alone, read leniently, find it."""
    paths = read_paths(path)
    if paths is None or not os.path.exists(paths[0]):
        where = f" (no master answers at {paths[0]})" if paths else ""
        raise MasterError(f"{error}{where}; to reach a running master anyway, give --pidfile PATH "
                          "or --socket PATH", EX_CONFIG)
    print(f"resquectl: warning: {error}; using its pidfile and control_socket keys to reach the "
          f"master at {paths[0]}", file=sys.stderr)
    return paths


def read_paths(path: str):
    """(control socket, pidfile, shutdown_timeout) from pool.yml's keys (or
    their defaults), whatever else in the file is wrong; None if it is not
    even YAML (or larger than a config file can be)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read(MAX_FILE_BYTES + 1)
        data = yaml.safe_load(text) if len(text) <= MAX_FILE_BYTES else None
    except (OSError, yaml.YAMLError, RecursionError):
        return None
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
