"""``resquectl top``: one frame (``--once``, ``--once --json``) against a real
master, its workers and php- and Ruby-shaped ones; the rates; the live
curses view under a real pseudo-terminal, resized, quit with ``q``."""

import fcntl
import json
import os
import select
import socket
import struct
import subprocess
import sys
import termios
import time

import pytest

from conftest import ROOT, wait_until
from helpers import wait_log
from masters import Master
from redis_server import RedisServer
from resqued.ctl import topview
from resqued.ctl.topframe import Sampler, rate
from resqued.resque import wire
from resqued.resque.client import Resque
from resqued.resque.keys import Keys

KEYS = Keys()
HOST = socket.gethostname()
MISSING_SOCKET = "unix:///nonexistent/resqued-test/redis.sock"


def run_top(*args, env=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "resqued.ctl", *args, "top", "--once"],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT, "COLUMNS": "200", **(env or {})})


def enqueue_aged(r, queue, *ages, job_class="Report"):
    r.sadd(KEYS.queues, queue)
    for age in ages:
        r.rpush(KEYS.queue(queue), wire.dumps(wire.payload(job_class, [], wire.new_job_id(),
                                                           queue_time=time.time() - age)))


def foreign_workers(r):
    """A php-resque worker busy for 90 s and an idle Ruby one, registered as
    their own code does (tests/golden: php-resque's run_at, Ruby's payload
    without an id), and a Ruby queue: payloads without queue_time."""
    php = "web7:14608:reports"
    r.sadd(KEYS.workers, php)
    r.set(KEYS.worker_started(php), "Sun Nov 22 01:47:42 UTC 2026")
    run_at = time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(time.time() - 90))
    r.set(KEYS.worker(php), json.dumps({"queue": "reports", "run_at": run_at, "payload": {
        "class": "PhpReport", "args": [{}], "id": "fdeb30bdd8257bb454644f80d13bedd2", "queue_time": 1.0}}))
    ruby = "rb1:4077:golden,other"
    r.sadd(KEYS.workers, ruby)
    r.set(KEYS.worker_started(ruby), "2026-11-22 02:24:52 +0000")
    r.hset(KEYS.heartbeats, ruby, wire.heartbeat_time(time.time()))
    r.sadd(KEYS.queues, "golden")
    r.rpush(KEYS.queue("golden"), '{"class":"GoodJob","args":[1,"two"]}', '{"class":"GoodJob","args":["x"]}',
            '{"class":"GoodJob","args":[]}')


def rows(text, header):
    """The rows of the table whose header row starts with ``header``, split
    on whitespace, up to the next blank line."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == [header])
    table = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        table.append(line.split())
    return table


def test_once_shows_queues_ages_workers_and_the_masters_pools(procs, tmp_path, redis_url, r):
    master = Master(procs, tmp_path, redis_url, ["queues: [mail]\ncount: 1", "queues: [low]\ncount: 1"])
    master.wait_workers(2)
    Resque(redis_url).enqueue("mail", "Slow", {"seconds": 60})
    wait_log(r, "started")
    enqueue_aged(r, "backlog", 300, 20, 5)
    foreign_workers(r)
    r.set(KEYS.processed, 41)
    r.set(KEYS.failed_count, 7)
    r.rpush(KEYS.failed, "{}", "{}")
    try:
        result = master.ctl("top", "--once")
        assert result.returncode == 0 and result.stderr == "", result.stderr
        text = result.stdout
        first, counters, master_line = text.splitlines()[:3]
        assert first == f"Redis {redis_url} namespace resque (redis: of {master.config})"
        assert "processed 41 (-)  failed 7 (-)  failures 2  workers 4  queues 3  paused no" in counters
        assert master_line.startswith(f"master {master.pid} running  config {master.config}")
        assert rows(text, "POOL") == [["mail", "1", "1", "ok"], ["low", "1", "1", "ok"]]
        queues = rows(text, "QUEUE")
        # Longest first; the oldest backlog job is 5 minutes old; Ruby's payloads have no age.
        assert [q[:2] for q in queues] == [["backlog", "3"], ["golden", "3"], ["mail", "0"]]
        assert queues[0][2].startswith("5m0") and queues[1][2] == "-"
        workers = rows(text, "HOST")
        busy = [w for w in workers if w[3] == "busy"]
        assert sorted((w[0], w[4], w[5]) for w in busy) == sorted(
            [(HOST, "mail", "Slow"), ("web7", "reports", "PhpReport")])
        php = next(w for w in busy if w[0] == "web7")
        assert php[1:3] == ["14608", "reports"] and php[6].startswith("1m3")
        idle = [w for w in workers if w[3] == "idle"]
        assert sorted((w[0], w[2]) for w in idle) == sorted([(HOST, "low"), ("rb1", "golden,other")])

        frame = json.loads(master.ctl("top", "--once", "--json").stdout)
        assert frame["redis"] == f"{redis_url} namespace resque" and frame["redis_up"] is True
        assert (frame["processed"], frame["failed"], frame["failures"], frame["workers_registered"],
                frame["queue_count"], frame["paused"]) == (41, 7, 2, 4, 3, False)
        assert frame["processed_per_second"] is None and frame["failed_per_second"] is None
        by_name = {q["name"]: q for q in frame["queues"]}
        assert 300 <= by_name["backlog"]["latency"] < 330 and by_name["golden"]["latency"] is None
        assert (by_name["backlog"]["length"], by_name["golden"]["length"]) == (3, 3)
        assert [q["name"] for q in frame["queues"]][:2] == ["backlog", "golden"]
        slow = next(w for w in frame["workers"] if w["class"] == "Slow")
        assert (slow["host"], slow["state"], slow["queues"]) == (HOST, "busy", ["mail"])
        assert slow["pid"] in master.workers() and slow["for"] >= 0
        assert frame["master"]["pid"] == master.pid
        assert [(p["queues"], p["count"], p["alive"]) for p in frame["master"]["pools"]] == \
            [(["mail"], 1, 1), (["low"], 1, 1)]

        # Without -c: this user's one master whose pool.yml reads this Redis
        # and namespace (another namespace's queues are not its pools).
        assert run_top("--redis", redis_url).stdout.splitlines()[2].startswith(f"master {master.pid} running")
        assert run_top("--redis", redis_url, "--namespace", "other").stdout.splitlines()[2] == topview.NO_MASTER
    finally:
        r.rpush("test:release", 1)


def test_once_without_a_master_says_none(redis_url, r, tmp_path):
    enqueue_aged(r, "backlog", 65)
    r.set(KEYS.pause_all, "true")
    # A pidfile with no master beside it: no pools, one word.
    result = run_top("--redis", redis_url, "--pidfile", str(tmp_path / "resqued.pid"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[2] == topview.NO_MASTER and "paused YES (pause-all-workers)" in lines[1]
    ((name, length, latency),) = rows(result.stdout, "QUEUE")
    assert (name, length) == ("backlog", "1") and latency.startswith("1m0")
    assert "no workers registered" in result.stdout


def test_once_with_redis_unreachable_fails_in_one_line():
    for args in ([], ["--json"]):
        result = run_top("--redis", MISSING_SOCKET, *args)
        assert result.returncode == 1
        assert result.stderr.startswith("resquectl: cannot reach Redis at unix:///nonexistent/") \
            and result.stderr.count("\n") == 1
    assert json.loads(result.stdout)["ok"] is False


@pytest.mark.parametrize("args, message", [
    ([], "top draws on a terminal"),
    (["--json"], "give --once with it"),
    (["--interval", "0"], "must be between 0.1 and 3600 seconds"),
    # Once curses took its wait in milliseconds as a C int: OverflowError.
    (["--interval", "1e9"], "must be between 0.1 and 3600 seconds"),
    (["--interval", "1e9", "--once"], "must be between 0.1 and 3600 seconds"),
    (["--interval", "soon"], "not a number of seconds"),
])
def test_usage_errors(redis_url, args, message):
    result = subprocess.run([sys.executable, "-m", "resqued.ctl", "--redis", redis_url, "top", *args],
                            capture_output=True, text=True, timeout=60, cwd=ROOT, stdin=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": ROOT})
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


# -- rates ----------------------------------------------------------------------

def test_rate_arithmetic():
    assert rate((100.0, 10), (102.0, 40)) == 15.0
    assert rate((100.0, 10), (100.5, 10)) == 0.0
    assert rate(None, (100.0, 10)) is None               # one frame: no rate yet
    assert rate((100.0, 10), (100.0, 20)) is None        # no time passed
    assert rate((100.0, 50), (101.0, 3)) is None         # the counter was reset


def test_the_dashboards_rates_are_tops_arithmetic_over_about_a_minute():
    from resqued.resque.rates import Rates   # the one helper both use
    rates = Rates(window=60.0)
    assert rates.add(1000.0, 10, 1) == {"processed": None, "failed": None, "window": None}
    assert rates.add(1000.5, 20, 1)["processed"] is None       # half a second: noise, not a rate
    assert rates.add(1010.0, 110, 6) == {"processed": 10.0, "failed": 0.5, "window": 10.0}
    # Readings older than the window go, but the newest of them stays: the
    # span is the window plus at most one gap between two reads.
    rates.add(1070.0, 710, 6)
    assert rates.add(1080.0, 810, 6) == {"processed": rate((1010.0, 110), (1080.0, 810)), "failed": 0.0,
                                         "window": 70.0}
    # A counter that went back (reset) starts the rates again: none, not a negative or a zero.
    assert rates.add(1090.0, 5, 6)["processed"] is None
    assert rates.add(1092.0, 25, 6)["processed"] == 10.0


def test_rates_from_two_frames(redis_url, r):
    sampler = Sampler(Resque(redis_url), "test")
    r.set(KEYS.processed, 100)
    r.set(KEYS.failed_count, 4)
    first = sampler.frame()
    t0 = sampler.last[0]
    assert first["processed_per_second"] is None and first["failed_per_second"] is None
    wait_until(lambda: r.time()[0] > int(t0) + 0.2, message="Redis's clock to move")
    r.incrby(KEYS.processed, 30)
    r.incrby(KEYS.failed_count, 3)
    second = sampler.frame()
    elapsed = sampler.last[0] - t0
    assert second["processed_per_second"] == pytest.approx(30 / elapsed)
    assert second["failed_per_second"] == pytest.approx(3 / elapsed)
    assert "processed 130 (" + topview.per_second(30 / elapsed) in topview.render(second, 200)[1]


# -- the live view, under a pseudo-terminal --------------------------------------

class Terminal:
    """``resquectl top`` on a real pseudo-terminal (its controlling one, so
    that a resize signals it), its screen output collected."""

    def __init__(self, redis_url, rows=40, cols=120):
        self.fd, child = os.openpty()
        self.resize(rows, cols)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "resqued.ctl", "--redis", redis_url, "top", "--interval", "0.2"],
            stdin=child, stdout=child, stderr=child, cwd=ROOT, start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
            env={**os.environ, "PYTHONPATH": ROOT, "TERM": "xterm"})
        os.close(child)
        self.output = b""

    def resize(self, rows, cols):
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def read(self):
        while select.select([self.fd], [], [], 0.05)[0]:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:   # EIO: the program has exited and closed the terminal
                return self.output
            if not chunk:
                break
            self.output += chunk
        return self.output

    def wait_for(self, *words, after=0, timeout=15):
        return wait_until(lambda: all(w in self.read()[after:] for w in words), timeout=timeout,
                          message=f"{words} on the screen; seen: {self.output[after:][-2000:]!r}")

    def quit(self, timeout=10):
        os.write(self.fd, b"q")
        code = wait_until(lambda: (self.read() is not None and self.proc.poll() is not None
                                   and str(self.proc.returncode)), timeout=timeout,
                          message=f"top to quit; seen: {self.output[-2000:]!r}")
        return int(code)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        os.close(self.fd)


@pytest.fixture
def terminal():
    opened = []

    def open_terminal(redis_url, **size):
        opened.append(Terminal(redis_url, **size))
        return opened[-1]
    yield open_terminal
    for t in opened:
        t.close()


def test_live_view_draws_resizes_and_quits_with_q(redis_url, r, terminal):
    enqueue_aged(r, "backlog", 125, 3)
    enqueue_aged(r, "mail", 1)
    enqueue_aged(r, "low", 1)
    foreign_workers(r)
    screen = terminal(redis_url)
    screen.wait_for(b"QUEUE", b"backlog", b"2m0", b"PhpReport", b"quit")
    assert b"more" not in screen.output
    # A later frame has a rate (the first one's is "-").
    screen.wait_for(b"/s")
    # 12 rows hold the header, 1 queue of 4 (with "... 3 more queues") and both workers.
    seen = len(screen.output)
    screen.resize(12, 80)
    screen.wait_for(b"more", b"queues", after=seen)
    assert screen.quit() == 0


def test_live_view_says_redis_is_unreachable_and_keeps_trying(tmp_path, terminal):
    server = RedisServer(str(tmp_path / "later"))
    screen = terminal(server.url)
    screen.wait_for(b"UNREACHABLE")
    server.start()
    try:
        enqueue = server.url
        client = Resque(enqueue)
        client.enqueue("arrived", "Job")
        seen = len(screen.output)
        screen.wait_for(b"arrived", b"LATENCY", after=seen)
        client.redis.close()
        assert screen.quit() == 0
    finally:
        server.stop()


@pytest.mark.parametrize("queues, workers, room, shown", [
    (3, 2, 10, (3, 2)),        # all fit
    (30, 2, 10, (7, 2)),       # the workers need less than half: the queues take the rest
    (2, 30, 10, (2, 7)),
    (30, 30, 10, (4, 4)),      # half each, each with its "... more" line
    (30, 30, 9, (4, 3)),       # the odd line to the queues
    (30, 30, 0, (0, 0)),
])
def test_rows_split_between_queues_and_workers(queues, workers, room, shown):
    assert topview.split_rows(queues, workers, room) == shown


def test_a_tiny_screen_gets_no_more_lines_than_it_has():
    frame = {"redis": "r", "time": "t", "redis_up": True, "error": None, "processed": 0, "failed": 0,
             "processed_per_second": None, "failed_per_second": None, "failures": 0, "paused": False,
             "workers_registered": 0, "queue_count": 1, "master": None, "workers": [],
             "queues": [{"name": "q", "length": 1, "latency": None, "error": None}]}
    for height in range(0, 12):
        assert len(topview.render(frame, 80, height)) <= height
