"""The command line of a helper the master starts with its settings on a
descriptor (the metrics exporter, the fleet advertiser): ``--settings-fd N``
and the log arguments (process/logs.py). The settings are JSON on a memfd
(master/keptprocess.py writes it), not arguments: the Redis URL may hold a
password, which a command line would show to anyone running ``ps``."""

import argparse
import json
import os

from resqued.process import logs


def settings_from_argv(prog: str, argv=None) -> dict:
    """Parse ``argv`` (sys.argv's by default), set up logging as it says, and
    return the settings read from its descriptor (which is closed)."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--settings-fd", type=int, required=True)
    logs.add_exec_arguments(parser)
    args = parser.parse_args(argv)
    logs.apply_exec_arguments(args)
    with os.fdopen(args.settings_fd, "rb") as f:
        return json.load(f)
