"""Where drain1_io's job spends its time in a fresh job child (issue 23):
``python bench/io_profile.py REDIS_URL [children]``.

Forks children one at a time from a process that imported what a worker
imports (redis-py, resqued's worker), as the job forker does, and in each
times the steps of jobs_resqued.WriteKeyJob: build the client
(``Redis.from_url``), connect it (the pool's first connection: the socket
and redis-py's handshake), the SET itself; then the same SET on a client
built in the parent and connected before the "job" (what a childReady
listener does, bench/jobs_resqued_warm.py), and on a raw socket. Prints
the median of each step in microseconds, and the top of a cProfile of one
child's cold job.
"""

import cProfile
import io
import os
import pstats
import socket
import statistics
import sys
import time

import redis

import resqued.worker.worker  # noqa: F401 (the worker's imports, as a job child has them)


def _cold(url: str) -> dict:
    t0 = time.perf_counter()
    client = redis.Redis.from_url(url)
    t1 = time.perf_counter()
    conn = client.connection_pool.get_connection()
    client.connection_pool.release(conn)
    t2 = time.perf_counter()
    client.set("bench:io:cold", 1)
    t3 = time.perf_counter()
    return {"build the client": t1 - t0, "connect (socket + handshake)": t2 - t1, "SET": t3 - t2,
            "cold job in all": t3 - t0}


def _raw(url: str) -> float:
    path = url[len("unix://"):] if url.startswith("unix://") else None
    t0 = time.perf_counter()
    if path:
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(path)
    else:
        host, _, port = url.split("//", 1)[1].split("/")[0].partition(":")
        sock = socket.create_connection((host, int(port or 6379)))
    sock.sendall(b"*3\r\n$3\r\nSET\r\n$11\r\nbench:io:rw\r\n$1\r\n1\r\n")
    sock.recv(64)
    sock.close()
    return time.perf_counter() - t0


def in_children(step, n: int) -> list:
    results = []
    for _ in range(n):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.write(w, repr(step()).encode())
            os._exit(0)
        os.close(w)
        data = b""
        while chunk := os.read(r, 65536):
            data += chunk
        os.close(r)
        os.waitpid(pid, 0)
        results.append(eval(data.decode()))   # our own child's repr of a dict or float
    return results


def main() -> None:
    url, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 200
    warm = redis.Redis.from_url(url)
    warm.ping()   # as the worker has connected before it forks (redis-py caches its version lookup then)

    def warmed():
        warm.connection_pool.release(warm.connection_pool.get_connection())   # the listener's part
        t0 = time.perf_counter()
        warm.set("bench:io:warm", 1)
        return time.perf_counter() - t0

    cold = in_children(lambda: _cold(url), n)
    rows = {k: statistics.median(c[k] for c in cold) for k in cold[0]}
    rows["SET, client connected ahead (childReady)"] = statistics.median(in_children(warmed, n))
    rows["raw socket: connect + SET"] = statistics.median(in_children(lambda: _raw(url), n))
    print(f"median of {n} fresh children, microseconds:")
    for name, seconds in rows.items():
        print(f"  {name:42s} {seconds * 1e6:8.0f}")

    def profiled():
        prof = cProfile.Profile()
        prof.enable()
        _cold(url)
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(12)
        return out.getvalue()

    print(in_children(profiled, 1)[0])


if __name__ == "__main__":
    main()
