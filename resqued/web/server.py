"""``resqued web``: the dashboard's command line and HTTP server.

The server is the standard library's (wsgiref) with a thread per request:
a dashboard serves a few operators, each page is a few Redis round trips,
and no other server is worth a dependency for that. Behind a reverse proxy
(docs/dashboard.md) the proxy carries TLS and the load.
"""

import argparse
import logging
import os
import signal
import socket
import socketserver
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from resqued.config.redisurl import BadRedisURL, redact
from resqued.ctl.cli import connection_settings
from resqued.ctl.output import CtlError
from resqued.exits import EX_CONFIG, EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from resqued.process import logs
from resqued.redisio.connection import connect
from resqued.resque.client import Resque
from resqued.web import pools
from resqued.web.app import Dashboard
from resqued.web.reads import Reads
from resqued.web.security import Guard, exposure_problem

log = logging.getLogger("resqued.web")

DEFAULT_LISTEN = "127.0.0.1:5640"
TOKEN_ENV = "RESQUED_WEB_TOKEN"


def parse_listen(text: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port``; port 0 takes a free one (printed at start)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"not HOST:PORT: {text!r} (e.g. 127.0.0.1:5640, [::1]:5640)")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def parse_auth(text: str) -> str:
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise argparse.ArgumentTypeError("--auth takes USER:PASSWORD (both non-empty)")
    return text


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="resqued web", description="Serve the web dashboard.")
    p.add_argument("--listen", type=parse_listen, default=parse_listen(DEFAULT_LISTEN), metavar="HOST:PORT",
                   help=f"where to listen (default {DEFAULT_LISTEN}); beyond loopback needs --token or --auth")
    p.add_argument("-c", "--config", metavar="POOL_YML",
                   help="a master's pool.yml: its Redis, namespace and control socket (this host's pools)")
    p.add_argument("-E", "--environment", metavar="ENV", help="environment section of a resque-pool style file")
    p.add_argument("--redis", metavar="URL", help="Redis URL (default: $REDIS_URL, pool.yml's, "
                                                  "$REDIS_BACKEND, redis://127.0.0.1:6379/0)")
    p.add_argument("--namespace", metavar="NS", help="key namespace (default: pool.yml's, $PREFIX, resque)")
    p.add_argument("--socket", metavar="PATH", help="the master's control socket (default: -c pool.yml's)")
    p.add_argument("--pidfile", metavar="PATH", help="the master's pidfile (its control socket is beside it)")
    p.add_argument("--token", metavar="TOKEN", help=f"a token for every page and action (default: ${TOKEN_ENV}); "
                                                    "log in with it, or send Authorization: Bearer TOKEN")
    p.add_argument("--auth", type=parse_auth, metavar="USER:PASSWORD", help="HTTP basic auth for every page")
    p.add_argument("--read-only", action="store_true", help="show everything, change nothing (no actions)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="a Host name to serve besides loopback names (a reverse proxy's), and an origin "
                        "its forms may come from; repeatable")
    p.add_argument("--base-path", default="", metavar="/PREFIX",
                   help="the path prefix a reverse proxy serves the dashboard under, e.g. /resque")
    p.add_argument("--refresh", type=int, default=5, metavar="SECONDS",
                   help="auto-refresh period of the live pages (default 5; 0: off; a toggle on each page)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="-v log each request")
    return p


class ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True   # a slow client never holds up the stop
    allow_reuse_address = True


class QuietHandler(WSGIRequestHandler):
    """Requests logged through logging (at debug), not to stderr raw."""

    def log_message(self, fmt, *args):
        log.debug("%s %s", self.address_string(), fmt % args)


def make_server(host: str, port: int, app) -> ThreadingServer:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server_class = type("Server", (ThreadingServer,), {"address_family": family})
    server = server_class((host, port), QuietHandler)
    server.set_app(app)
    return server


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    logs.setup(logging.DEBUG if args.verbose else logging.INFO)
    token = args.token or os.environ.get(TOKEN_ENV) or None
    host, port = args.listen
    problem = exposure_problem(host, token, args.auth)
    if problem:
        print(f"resqued web: {problem}", file=sys.stderr)
        return EX_CONFIG
    if args.base_path and not args.base_path.startswith("/"):
        print(f"resqued web: --base-path must start with /: {args.base_path!r}", file=sys.stderr)
        return EXIT_USAGE
    try:
        url, namespace, origin = connection_settings(args, os.environ)
        client = connect(url, socket_connect_timeout=5, socket_timeout=30, health_check_interval=30)
    except BadRedisURL as exc:
        print(f"resqued web: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CtlError as exc:
        print(f"resqued web: {exc}", file=sys.stderr)
        return exc.code
    resque = Resque(url, namespace, redis=client)
    label = f"{redact(url)} namespace {resque.keys.namespace}"
    app = Dashboard(Reads(resque), Guard(token, args.auth, args.allow_host), read_only=args.read_only,
                    master_socket=pools.socket_path(args.config, args.socket, args.pidfile),
                    base_path=args.base_path, refresh=max(0, args.refresh), redis_label=label)
    try:
        server = make_server(host, port, app)
    except OSError as exc:
        print(f"resqued web: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILURE
    bound_host, bound_port = server.server_address[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    print(f"resqued web: http://{shown}:{bound_port}{args.base_path}/ on Redis {label} ({origin})"
          + ("; read-only" if args.read_only else ""), flush=True)
    return serve(server)


def serve(server) -> int:
    """Serve until TERM or INT; the handlers only record the request to stop."""
    stopping = []

    def stop(signum, frame):
        stopping.append(signum)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.timeout = 0.5
    try:
        while not stopping:
            server.handle_request()
    finally:
        server.server_close()
    log.info("resqued web: stopped")
    return EXIT_OK
