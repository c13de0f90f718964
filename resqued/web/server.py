"""``resqued web``: the dashboard's command line and HTTP server.

The server is the standard library's (wsgiref) with a thread per request:
a dashboard serves a few operators, each page is a few Redis round trips,
and no other server is worth a dependency for that. Behind a reverse proxy
(docs/dashboard.md) the proxy carries TLS and the load.

A client that connects and then sends nothing (or a byte a minute) holds
a thread: each connection's reads and writes time out
(``--client-timeout``), and at most MAX_CONNECTIONS are served at once;
one more is answered 503 at once and closed, without a thread.
"""

import argparse
import logging
import os
import signal
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from resqued.config.redisurl import BadRedisURL, redact
from resqued.ctl.cli import connection_settings
from resqued.ctl.output import CtlError
from resqued.exits import EX_CONFIG, EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from resqued.process import logs
from resqued.process.httpserver import BoundedThreadingMixIn, family_for
from resqued.redisio.connection import connect
from resqued.resque.client import Resque
from resqued.web import pools
from resqued.web.app import Dashboard
from resqued.web.reads import Reads
from resqued.web.security import Guard, exposure_problem
from resqued.numbers import is_whole_number

log = logging.getLogger("resqued.web")

DEFAULT_LISTEN = "127.0.0.1:5640"
TOKEN_ENV = "RESQUED_WEB_TOKEN"
CLIENT_TIMEOUT = 15.0
MAX_CONNECTIONS = 64
BUSY = (b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Retry-After: 1\r\nConnection: close\r\n\r\ntoo many connections: try again\n")


def parse_listen(text: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port``; port 0 takes a free one (printed at start)."""
    host, sep, port = text.rpartition(":")
    if not sep or not is_whole_number(port) or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"not HOST:PORT: {text!r} (e.g. 127.0.0.1:5640, [::1]:5640)")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def parse_auth(text: str) -> str:
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise argparse.ArgumentTypeError("--auth takes USER:PASSWORD (both non-empty)")
    return text


def parse_timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0.1 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 0.1 and 3600 seconds: {text!r}")
    return value


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
    p.add_argument("--trust-forwarded-proto", action="store_true",
                   help="believe X-Forwarded-Proto: https (set by your TLS proxy) and mark cookies Secure")
    p.add_argument("--client-timeout", type=parse_timeout, default=CLIENT_TIMEOUT, metavar="SECONDS",
                   help=f"drop a connection idle this long within a request (default {CLIENT_TIMEOUT:g})")
    p.add_argument("-v", "--verbose", action="count", default=0, help="-v log each request")
    return p


class ThreadingServer(BoundedThreadingMixIn, WSGIServer):
    allow_reuse_address = True
    request_queue_size = 128
    max_connections = MAX_CONNECTIONS

    def refuse(self, request, client_address):
        log.warning("%d connections already: refused one from %s", self.max_connections, client_address[0])
        try:
            request.setblocking(False)   # a client that reads nothing holds nothing up
            request.send(BUSY)
        except OSError:
            pass

    def handle_error(self, request, client_address):
        # A client that went quiet (timed out) or away: one line, not a traceback.
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            log.debug("connection from %s dropped: %s", client_address[0], exc)
        else:
            log.exception("error serving %s", client_address[0])


class QuietHandler(WSGIRequestHandler):
    """Requests logged through logging (at debug), not to stderr raw."""

    timeout = CLIENT_TIMEOUT   # socketserver sets it on the connection: every read and write

    def log_message(self, fmt, *args):
        log.debug("%s %s", self.address_string(), fmt % args)


def make_server(host: str, port: int, app, client_timeout: float = CLIENT_TIMEOUT) -> ThreadingServer:
    server_class = type("Server", (ThreadingServer,), {"address_family": family_for(host)})
    handler = type("Handler", (QuietHandler,), {"timeout": client_timeout})
    server = server_class((host, port), handler)
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
    guard = Guard(token, args.auth, args.allow_host, generate_token=not args.read_only,
                  trust_forwarded_proto=args.trust_forwarded_proto)
    app = Dashboard(Reads(resque), guard, read_only=args.read_only,
                    master_socket=pools.socket_path(args.config, args.socket, args.pidfile),
                    base_path=args.base_path, refresh=max(0, args.refresh), redis_label=label, redis_url=url)
    try:
        server = make_server(host, port, app, args.client_timeout)
    except OSError as exc:
        print(f"resqued web: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILURE
    bound_host, bound_port = server.server_address[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    if guard.generated:
        # Only who reads this output can act: the pages are open, the actions need this login.
        # Said before the line that says it listens, so whoever waits for that one has both.
        print(f"resqued web: to act, log in at http://{shown}:{bound_port}{args.base_path}/login?token={guard.token}",
              flush=True)
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
