"""``resquectl top``: a live terminal view of queues, rates and workers,
for hosts without a browser. A frame is read (topframe.py) every
``--interval`` seconds and drawn with curses (topview.py) until ``q``.

``--once`` prints one frame as plain text (``--json``: its data) and exits,
for scripts; its rates are ``-`` (a rate needs two frames). Without
``--once`` top needs a terminal: piped, it refuses with a usage error
rather than fill a file with screen codes.

Redis unreachable: the live view says so and keeps trying at each refresh;
``--once`` fails with the usual one-line error.
"""

import argparse
import curses
import locale
import os
import sys
import time

import psutil

from resqued.config.loader import load_config
from resqued.config.model import ConfigError
from resqued.ctl import masterclient, tables, topview
from resqued.ctl.locate import locate
from resqued.ctl.output import CtlError, UsageError, print_json
from resqued.exits import EXIT_OK
from resqued.protocols.controlsocket import ControlError
from resqued.redisio.connection import connect
from resqued.resque.keys import Keys

DEFAULT_INTERVAL = 2.0
MIN_INTERVAL = 0.1
MAX_INTERVAL = 3600.0
# curses takes the wait for a key as a C int of milliseconds: a minute at
# most (the loop waits again until the refresh is due).
MAX_WAIT_MS = 60_000
# Every read has a deadline: a Redis that stopped answering must not
# freeze the screen (nor keep `q` from quitting) for longer than this.
REDIS_TIMEOUT = 3.0
MASTER_TITLE = "resqued-master["
PROBE_TIMEOUT = 1.0   # a master answers status from its loop at once


def cmd_top(resque, args) -> int:
    if args.json and not args.once:
        raise UsageError("top --json prints one frame's data: give --once with it")
    if not args.once and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("top draws on a terminal, and its input or output is not one: "
                         "give --once for one frame as plain text (with --json, as JSON)")
    # Here, not at the top: resquectl imports this module for its arguments,
    # and its other commands never need redis-py (topframe and the client load it).
    from resqued.ctl.topframe import Sampler
    from resqued.resque.client import Resque
    client = connect(resque.url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT)
    try:
        sampler = Sampler(Resque(resque.url, resque.keys.namespace, redis=client), args.redis_read,
                          master_socket(args, resque))
        if args.once:
            frame = sampler.frame(strict=True)   # Redis unreachable: main's one-line error
            if args.json:
                print_json(frame)
            else:
                print("\n".join(topview.render(frame, tables.terminal_width(), heading=args.heading)))
        else:
            live(sampler, args.interval, args.heading)
    finally:
        client.close()
    return EXIT_OK


# -- this host's master -------------------------------------------------------

def master_socket(args, resque) -> str | None:
    """The control socket of the master whose pools top shows: the one
    ``-c pool.yml``, ``--pidfile`` or ``--socket`` names, else this user's
    one running master whose pool.yml names the Redis and namespace top
    reads (none such, or several: no pools shown)."""
    if any(getattr(args, name, None) for name in ("config", "pidfile", "socket")):
        try:
            return locate(argparse.Namespace(**{**vars(args), "master_command": "status"}))[0]
        except CtlError:
            return None
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.uids().real != os.getuid() or not " ".join(proc.cmdline()).startswith(MASTER_TITLE):
                continue
            # Its title names its config's file, not where its socket is:
            # the unix socket it listens on that answers a status is.
            paths = sorted({c.laddr for c in proc.net_connections(kind="unix") if isinstance(c.laddr, str)
                            and c.laddr})
        except psutil.Error:
            continue
        found += [path for path in paths if _serves(path, resque)][:1]
    return found[0] if len(found) == 1 else None


def _serves(path: str, resque) -> bool:
    """Does the master answering on ``path`` run a pool.yml whose Redis
    and namespace are ``resque``'s? (Another master's pools, beside this
    Redis's queues, would mislead.)"""
    try:
        # Without the workers: top probes every master of this user, and a
        # master reads /proc for each worker to answer with its memory.
        master = masterclient.request(path, "status", timeout=PROBE_TIMEOUT, memory=False,
                                      workers=False).get("master")
        # The file as the master reads it: REDIS_URL here is top's, not the master's.
        config = load_config(master["config"], environ={k: v for k, v in os.environ.items() if k != "REDIS_URL"})
    except (ControlError, ConfigError, OSError, ValueError, TypeError, KeyError):
        return False
    return config.redis_url == resque.url and Keys(config.namespace).namespace == resque.keys.namespace


# -- the live view ------------------------------------------------------------

def live(sampler, interval: float, heading: str) -> None:
    locale.setlocale(locale.LC_ALL, "")   # curses then draws queue and class names in UTF-8
    try:
        curses.wrapper(_run, sampler, interval, heading)
    except curses.error as exc:
        raise CtlError(f"cannot draw on this terminal (TERM={os.environ.get('TERM', '')}): {exc}; "
                       "give --once for plain text") from None


def _run(screen, sampler, interval: float, heading: str) -> None:
    try:
        curses.curs_set(0)
    except curses.error:   # a terminal that cannot hide its cursor
        pass
    frame, due = None, 0.0
    while True:
        if time.monotonic() >= due:
            frame = sampler.frame()
            due = time.monotonic() + interval
        draw(screen, frame, heading, interval)
        # Wait for a key until the next refresh is due; a resize (KEY_RESIZE)
        # wakes us too, and the loop redraws at the new size.
        screen.timeout(min(MAX_WAIT_MS, max(1, int((due - time.monotonic()) * 1000))))
        if screen.getch() in (ord("q"), ord("Q")):
            return


def draw(screen, frame: dict, heading: str, interval: float) -> None:
    height, width = screen.getmaxyx()
    screen.erase()
    lines = topview.render(frame, width, height - 1, heading=heading)
    lines += [""] * (height - 1 - len(lines)) + [f"q: quit   refreshed every {interval:g}s"]
    for y, line in enumerate(lines[:height]):
        try:
            # Never the screen's last cell: curses raises after writing it.
            screen.addnstr(y, 0, line, max(width - 1, 0))
        except curses.error:
            pass
    screen.refresh()


# -- the command line ---------------------------------------------------------

def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not MIN_INTERVAL <= value <= MAX_INTERVAL:
        raise argparse.ArgumentTypeError(f"must be between {MIN_INTERVAL:g} and {MAX_INTERVAL:g} seconds: {text!r}")
    return value


def add_commands(commands, command) -> None:
    """``top`` (see failed.add_commands)."""
    top = command(commands, "top", cmd_top,
                  "a live view of queues (length, age of the oldest job), processed and failed rates, "
                  "workers, and this host's master's pools; q quits")
    top.add_argument("--interval", metavar="SECONDS", type=_interval, default=DEFAULT_INTERVAL,
                     help=f"refresh every SECONDS (default {DEFAULT_INTERVAL:g})")
    top.add_argument("--once", action="store_true",
                     help="print one frame as plain text (with --json, its data) and exit; no terminal needed")
