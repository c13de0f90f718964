"""The exporter's HTTP server under awkward clients: one that resets
mid-reply, many at once, scrapes that come together. A real master, its
exporter process, a real Redis."""

import socket
import struct
import threading

from conftest import log_text, stop, wait_until
from test_metrics import free_port, scrape, serving, value

MANY_QUEUES = 20000   # a scrape's Redis read takes a while, and its reply is ~2 MB


def many_queues(r):
    pipe = r.pipeline(transaction=False)
    for i in range(MANY_QUEUES):
        pipe.sadd("resque:queues", f"q{i:05}")
    pipe.execute()


def smembers_calls(r) -> int:
    return r.info("commandstats").get("cmdstat_smembers", {}).get("calls", 0)


def test_a_client_reset_mid_reply_is_one_line_not_a_traceback(master_factory, r):
    many_queues(r)
    address = f"127.0.0.1:{free_port()}"
    master = master_factory(["queues: metrics\ncount: 1"], metrics=address)
    wait_until(lambda: serving(address), timeout=30, message="the exporter serving")
    host, port = address.split(":")
    for _ in range(3):
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.recv(100)   # the reply has begun
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))   # close: RST
    wait_until(lambda: "went away" in log_text(master.proc), timeout=20, message="the reset logged")
    assert value(scrape(address, timeout=10), "resqued_up") == 1
    assert "Traceback" not in log_text(master.proc)
    assert stop(master.proc) == 0


def test_scrapes_that_come_together_share_one_read(master_factory, r):
    many_queues(r)
    address = f"127.0.0.1:{free_port()}"
    # No worker: a worker's reads of the queues paused fleet-wide are SMEMBERS too.
    master = master_factory(["queues: metrics\ncount: 0"], metrics=address)
    wait_until(lambda: serving(address), timeout=30, message="the exporter serving")
    before = smembers_calls(r)
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(scrape(address, timeout=30))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 8 and all(value(a, "resqued_queue_length", queue="q00000") == 0 for a in answers)
    assert smembers_calls(r) - before < 8
    assert stop(master.proc) == 0


def test_clients_past_the_bound_are_closed_and_scrapes_go_on(master_factory, r):
    address = f"127.0.0.1:{free_port()}"
    master = master_factory(["queues: metrics\ncount: 1"], metrics=address)
    wait_until(lambda: serving(address), timeout=30, message="the exporter serving")
    host, port = address.split(":")
    idle = [socket.create_connection((host, int(port))) for _ in range(40)]   # connect, say nothing
    try:
        for sock in idle:
            sock.settimeout(5)

        def closed(sock):
            try:
                return sock.recv(1) == b""
            except (TimeoutError, ConnectionError):
                return False
        assert sum(closed(sock) for sock in idle[-20:]) >= 15   # not each holding a thread
    finally:
        for sock in idle:
            sock.close()
    wait_until(lambda: serving(address), timeout=15, message="scrapes served again")
    assert stop(master.proc) == 0
