"""This host's master, as ``resquectl status`` sees it: its status over its
control socket (resquectl's client, ctl/masterclient.py), never through
Redis. Which socket: ``-c pool.yml``'s (read leniently, as resquectl reads
it), ``--socket``, or the one beside ``--pidfile``."""

import os

from resqued.ctl import masterclient
from resqued.ctl.locate import read_paths
from resqued.process.pidfile import socket_beside
from resqued.protocols.controlsocket import ControlError

# A master answers status from its loop at once; a page is not held up by one that does not.
STATUS_TIMEOUT = 1.0


def socket_path(config: str | None, socket: str | None, pidfile: str | None) -> str | None:
    if socket:
        return os.path.abspath(socket)
    if pidfile:
        return os.path.abspath(socket_beside(pidfile))
    if config:
        paths = read_paths(config)
        return paths[0] if paths else None
    return None


def master_status(path: str | None) -> dict:
    """``{"status": ..., "note": None}`` or ``{"status": None, "note": why}``."""
    if path is None:
        return {"status": None, "note": "no master to ask: start the dashboard with -c pool.yml "
                                        "(or --socket PATH) to see this host's pools"}
    try:
        answer = masterclient.request(path, "status", timeout=STATUS_TIMEOUT)
    except (ControlError, OSError, ValueError) as exc:
        return {"status": None, "note": f"this host's master cannot be asked: {exc}"}
    if not isinstance(answer, dict) or not isinstance(answer.get("pools"), list):
        return {"status": None, "note": f"the master at {path} gave no status"}
    return {"status": answer, "note": None}
