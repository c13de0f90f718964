"""A thread per connection, with a bound: what the metrics exporter
(exporter/__main__.py) and the dashboard (web/server.py) serve HTTP with.

A client that connects and sends nothing holds a thread; thousands of them
would hold thousands. So at most ``max_connections`` are served at once, and
one more is refused (``refuse``) and closed at once, without a thread,
rather than queued behind the others.
"""

import socket
import socketserver
import threading


class BoundedThreadingMixIn(socketserver.ThreadingMixIn):
    """Mixed in before the server class (``class S(BoundedThreadingMixIn, HTTPServer)``)."""

    daemon_threads = True   # a client that never reads must not keep the process from exiting
    max_connections = 16

    def server_activate(self):
        super().server_activate()
        self.slots = threading.BoundedSemaphore(self.max_connections)

    def refuse(self, request, client_address) -> None:
        """One connection too many, before it is closed: nothing by default."""

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            self.refuse(request, client_address)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()   # no thread started: it would have released it
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


def family_for(host: str) -> int:
    """AF_INET6 for an IPv6 literal (it holds a colon), else AF_INET."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET
