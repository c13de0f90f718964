"""A worker's outcome records (worker/reports.py) on a real pipe: each
finished job reaches the master exactly once, however full the pipe is
when the worker reports. No process but a pipe: the records wait in the
worker until a line carrying them is written whole."""

import fcntl
import logging
import os
import select
import threading

import pytest

from resqued.protocols.reportpipe import JobOutcome, StateReport, WorkerState, decode
from resqued.worker.reports import MasterReports

F_SETPIPE_SZ = 1031


@pytest.fixture
def pipe():
    read_fd, write_fd = os.pipe()
    fcntl.fcntl(write_fd, F_SETPIPE_SZ, 4096)   # one page: full after a few lines
    os.set_blocking(read_fd, False)
    yield read_fd, write_fd
    for fd in (read_fd, write_fd):
        try:
            os.close(fd)
        except OSError:
            pass


def fill(write_fd) -> None:
    os.set_blocking(write_fd, False)
    while True:
        try:
            os.write(write_fd, b"x" * 64 + b"\n")
        except BlockingIOError:
            return


def drain(read_fd) -> list:
    """The state reports read, the filler left out."""
    data = b""
    while True:
        try:
            chunk = os.read(read_fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        data += chunk
    return [decode(line) for line in data.split(b"\n") if line.startswith(b"{")]


def finish(reports, n, start=0):
    for i in range(start, start + n):
        reports.finished(f"q{i}", "Echo", JobOutcome.DONE, 0.01, {"queue_time": 100.0}, picked=101.5)


def test_records_wait_while_the_pipe_is_full_and_go_once_it_drains(pipe):
    read_fd, write_fd = pipe
    reports = MasterReports(write_fd)
    assert reports.send({"state": WorkerState.IDLE}, pid=1, jobs=0, paused=False)
    assert [r.state for r in drain(read_fd)] == ["idle"]
    fill(write_fd)
    finish(reports, 3)
    assert reports.send({"state": WorkerState.IDLE}, pid=1, jobs=3, paused=False)   # full: not written
    assert len(reports.pending) == 3
    drain(read_fd)
    # The same state said again, since records wait: they go now, once.
    assert reports.send({"state": WorkerState.IDLE}, pid=1, jobs=3, paused=False)
    got = drain(read_fd)
    assert [tuple(o) for r in got for o in r.outcomes] == [(f"q{i}", "Echo", "done", 0.01, 1.5) for i in range(3)]
    assert reports.pending == []
    assert reports.send({"state": WorkerState.IDLE}, pid=1, jobs=3, paused=False)
    assert drain(read_fd) == []   # nothing new: the same line is not said again


def test_no_record_is_lost_or_doubled_however_often_the_pipe_fills(pipe):
    read_fd, write_fd = pipe
    reports = MasterReports(write_fd)
    seen = []
    for round_ in range(200):
        finish(reports, 7, start=7 * round_)
        if round_ % 3 == 0:
            fill(write_fd)   # the master is busy elsewhere
        reports.send({"state": WorkerState.BUSY, "job": {"class": "Echo", "id": str(round_), "queue": "q"}},
                     pid=1, jobs=round_, paused=False)
        if round_ % 5 == 0:
            seen += drain(read_fd)
    seen += drain(read_fd)
    reports.flush(timeout=0)
    seen += drain(read_fd)
    reports.flush(timeout=1)
    seen += drain(read_fd)
    queues = [o[0] for r in seen for o in r.outcomes]
    assert sorted(queues) == sorted(f"q{i}" for i in range(1400))   # each once
    assert reports.pending == []


def test_flush_waits_for_room_and_sends_what_is_left(pipe):
    read_fd, write_fd = pipe
    reports = MasterReports(write_fd)
    reports.send({"state": WorkerState.STOPPING}, pid=1, jobs=0, paused=False)
    fill(write_fd)
    finish(reports, 300)
    reports.flush(timeout=0.05)   # nobody reads: it gives up in time
    assert len(reports.pending) == 300
    # The master reads again (a thread here): the flush waits for room, line after line.
    os.set_blocking(read_fd, True)
    data = []
    reader = threading.Thread(target=lambda: data.extend(iter(lambda: os.read(read_fd, 65536), b"")))
    reader.start()
    reports.flush(timeout=10)
    os.close(write_fd)
    reader.join(10)
    seen = [decode(line) for line in b"".join(data).split(b"\n") if line.startswith(b"{")]
    assert sum(len(r.outcomes) for r in seen) == 300 and reports.pending == []
    assert all(isinstance(r, StateReport) and r.state == "stopping" for r in seen)


def test_a_job_without_queue_time_has_no_wait_and_an_unresolved_class_is_unknown(pipe):
    read_fd, write_fd = pipe
    reports = MasterReports(write_fd)
    reports.finished("q", None, JobOutcome.FAILED, 0.0, None, picked=5.0)
    reports.finished("q", "Echo", JobOutcome.DONE, 0.5, {"queue_time": "yesterday"}, picked=5.0)
    reports.send({"state": WorkerState.IDLE}, pid=1, jobs=2, paused=False)
    (report,) = drain(read_fd)
    assert report.outcomes == (["q", "(unknown)", "failed", 0.0, None], ["q", "Echo", "done", 0.5, None])


@pytest.mark.parametrize("queued", [10 ** 400, -1e308, float("nan"), "-Infinity", 5.0 + 2 * 86400])
def test_a_queue_time_no_clock_could_give_has_no_wait_and_no_crash(pipe, queued):
    read_fd, write_fd = pipe
    reports = MasterReports(write_fd)
    reports.finished("q", "Echo", JobOutcome.DONE, 0.5, {"queue_time": queued}, picked=5.0)
    reports.send({"state": WorkerState.IDLE}, pid=1, jobs=1, paused=False)
    (report,) = drain(read_fd)
    assert report.outcomes == (["q", "Echo", "done", 0.5, None],)


def test_without_a_master_nothing_is_kept():
    reports = MasterReports(None)
    reports.finished("q", "Echo", JobOutcome.DONE, 0.5, {}, picked=1.0)
    assert reports.pending == []


def test_an_error_report_of_escaped_characters_stays_one_whole_line(pipe):
    # 500 characters that JSON escapes to 12 bytes each: 6,000 bytes cut at
    # 500 characters, past PIPE_BUF. On a nearly full pipe such a write went
    # in part, and the next state line (with its records) glued to it.
    from resqued.spawner.entrypoints import ErrorReports
    read_fd, write_fd = pipe
    fcntl.fcntl(write_fd, F_SETPIPE_SZ, 65536)   # room for a line of 6,000 bytes to go in part
    reports = MasterReports(write_fd)
    handler = ErrorReports(write_fd)
    for _ in range(40):
        fill(write_fd)
        drain_some(read_fd, 5000)
        handler.emit(logging.makeLogRecord({"msg": "\U0001f600" * 600, "levelno": logging.ERROR}))
        finish(reports, 1)
        reports.send({"state": WorkerState.IDLE}, pid=1, jobs=1, paused=False)
    data = b""
    while True:
        try:
            chunk = os.read(read_fd, 65536)
        except BlockingIOError:
            break
        data += chunk
    lines = [line for line in data.split(b"\n") if line.startswith(b"{")]   # the rest: cut by drain_some
    for line in lines:
        assert len(line) < select.PIPE_BUF
        decode(line)   # no fragment: each line is a whole report
    assert len(lines) > 20


def drain_some(read_fd, n):
    while n > 0:
        try:
            n -= len(os.read(read_fd, min(n, 4096)))
        except BlockingIOError:
            return
