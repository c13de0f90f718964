"""Up-front checks of what the master will write, so that ``--check`` and a
start say it in one line (``pool.yml:9: pid_dir: ...``, exit 78) instead of
every worker dying at boot with a traceback and its pool going FAILED: the
directories of the pidfile and the control socket, and pid_dir, must exist
or be creatable, and be writable; pid_dir must not be a symbolic link."""

import os

from resqued.config.model import ConfigError
from resqued.config.yamlnodes import LocatedError, NodeReader, read_text

KEYS = ("pidfile", "control_socket", "pid_dir")


def check_paths(config) -> None:
    """Raise ConfigError naming the first key whose directory cannot be written."""
    for key in KEYS:
        path = getattr(config, key)
        if not path:
            continue
        directory = path if key == "pid_dir" else os.path.dirname(path)
        problem = _unwritable(directory)
        if key == "pid_dir" and os.path.islink(path):
            # Workers write their pidfiles in it (as root, if the master runs
            # as root): a link someone swapped in would send them anywhere.
            problem = f"{path} is a symbolic link; name the directory it points to"
        if problem:
            raise ConfigError(problem, file=config.path, line=_line_of(config.path, key), path=key)


def _unwritable(directory: str) -> str | None:
    existing = directory
    while not os.path.lexists(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            break
        existing = parent
    if not os.path.isdir(existing):
        if existing == directory:
            return f"{directory} exists and is not a directory"
        return f"{existing} is not a directory, so {directory} cannot be created"
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "cannot be created in" if existing != directory else "is not writable by"
        return f"{directory} {what} uid {os.geteuid()}" + (f" ({existing} is not writable)" if existing != directory else "")
    return None


def _line_of(path: str, key: str) -> int | None:
    """The line of a top-level key in the file, for the error (None when the
    value is a default, or the file is resque-pool's format)."""
    try:
        with NodeReader(read_text(path), base_dir=os.path.dirname(path)) as reader:
            top = reader.mapping(reader.root(), "")
    except (LocatedError, OSError):
        return None
    found = top.get(key)
    return found[0].start_mark.line + 1 if found else None
