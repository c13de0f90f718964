"""The metrics exporter's process (``python -m resqued.exporter``, started
by the master: master/exporterlink.py): an HTTP server for ``/metrics``.
Its settings come on a descriptor (--settings-fd), as JSON: the Redis URL
may hold a password. An address it cannot listen on is one line and exit
69 (EX_UNAVAILABLE): the master tries again later, the pools run on."""

import logging
import os
import signal
import socketserver
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from resqued.config.checks import split_listen_address
from resqued.exits import EX_UNAVAILABLE, EXIT_OK
from resqued.exporter.collector import ResquedCollector
from resqued.exporter.masterside import MasterSide
from resqued.exporter.redisside import RedisSide
from resqued.process.httpserver import BoundedThreadingMixIn, family_for
from resqued.process.settingsfd import settings_from_argv
from resqued.process.signals import exit_on_parent_death
from resqued.process.title import set_raw_title
from resqued.config.redisurl import redact

log = logging.getLogger("resqued.exporter")


def registry_for(settings: dict) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ResquedCollector(MasterSide(settings.get("control_socket")),
                                       RedisSide(settings["redis_url"], settings["namespace"])))
    # The master's own CPU, memory and descriptors (process_* of prometheus_client, prefixed).
    master_pid = settings["master_pid"]
    ProcessCollector(namespace="resqued_master", pid=lambda: master_pid, registry=registry)
    return registry


MAX_CLIENTS = 16        # connections served at once; more are closed at once (a thread each, and memory)
CLIENT_TIMEOUT = 10.0   # seconds a client may take to send its request or to read a reply


class MetricsServer(BoundedThreadingMixIn, HTTPServer):
    max_connections = MAX_CLIENTS   # more are closed at once, not queued

    def __init__(self, address, registry):
        self.registry = registry
        self.address_family = family_for(address[0])
        super().__init__(address, MetricsHandler)

    def server_bind(self):
        # HTTPServer's own asks the resolver for the host's name (getfqdn),
        # which may hang on a host without DNS: the name is not needed.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address):
        # socketserver's own prints a traceback to stderr: a client that
        # resets mid-reply is routine, one line says it.
        exc = sys.exc_info()[1]
        log.info("metrics: a client at %s went away: %s", client_address[0], exc)


class MetricsHandler(BaseHTTPRequestHandler):
    timeout = CLIENT_TIMEOUT   # a client that sends nothing must not hold its slot for good

    def do_GET(self):
        if self.path.split("?", 1)[0] != "/metrics":
            self._send(404, b"resqued's metrics are at /metrics\n", "text/plain; charset=utf-8")
            return
        try:
            body = generate_latest(self.server.registry)
        except Exception:
            log.exception("metrics: the scrape failed")
            self._send(500, b"the scrape failed: see resqued's log\n", "text/plain; charset=utf-8")
            return
        self._send(200, body, CONTENT_TYPE_PLAIN_0_0_4)

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass   # a line per scrape would drown the log


def main(argv=None) -> int:
    settings = settings_from_argv("python -m resqued.exporter", argv)
    # Nothing to finish, and the address must be free for the next master.
    exit_on_parent_death(signal.SIGTERM)
    if os.getppid() != settings["master_pid"]:
        return EXIT_OK   # the master is gone already
    set_raw_title(settings["title"])
    listen = settings["listen"]
    try:
        server = MetricsServer(split_listen_address(listen), registry_for(settings))
    except OSError as exc:
        log.error("metrics: cannot listen on %s: %s", listen, exc.strerror or exc)
        return EX_UNAVAILABLE
    log.info("metrics: serving http://%s/metrics (Redis at %s)", listen, redact(settings["redis_url"]))
    with server:
        server.serve_forever()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
