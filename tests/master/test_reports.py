"""A worker's report lines to its master (resqued/protocols/reportpipe.py): each
one reaches the master whole, whatever the job's payload holds, and the master
(Child.read_reports) keeps them typed and refuses a line that is no report."""

import json
import os
from types import SimpleNamespace

from conftest import stop, wait_until
from helpers import failures, wait_log
from resqued.master.workerprocess import Child
from resqued.resque import wire
from resqued.protocols.reportpipe import (LINE_LIMIT, ErrorReport, ExitAnnouncement, StateReport, WorkerState,
                                          report_line)


def busy_job(m):
    busy = [w for w in m.status()["workers"] if w["state"] == "busy"]
    return busy and busy[0]["job"]


def test_a_job_id_of_100_kb_shows_cut_and_the_status_moves_on_to_the_next_job(master_factory, r):
    m = master_factory(["queues: [default]\ncount: 1"])
    [worker] = m.wait_workers(1)
    huge = "h" * 100_000
    r.rpush("resque:queue:default", wire.dumps(wire.payload("Slow", [], huge)))
    wait_log(r, "started:")
    job = wait_until(lambda: busy_job(m), message="the busy report of the job with the 100 KB id")
    assert job["class"] == "Slow" and job["id"].startswith("hhhh") and job["id"].endswith("(100000 characters)")
    r.rpush("resque:queue:default", wire.dumps(wire.payload("Slow", [], "next-job")))
    r.rpush("test:release", 1)
    wait_log(r, "started:", 2)
    assert wait_until(lambda: (job := busy_job(m)) and job["id"] == "next-job" and job)
    r.rpush("test:release", 1)
    wait_log(r, "finished:", 2)
    assert failures(r) == [] and m.workers() == [worker]
    assert stop(m.proc) == 0


def test_a_report_line_always_fits_what_a_pipe_writes_whole():
    escaped = "\U0001F600" * 5000       # 12 bytes each, escaped
    report = {"state": "busy", "job": {"class": escaped, "id": escaped, "queue": escaped}, "pid": 1}
    line = report_line(report)
    assert len(line) <= LINE_LIMIT and line.endswith(b"\n")
    shown = json.loads(line)
    assert shown["state"] == "busy" and shown["job"]["id"].endswith("(5000 characters)")
    small = {"state": "idle", "pid": 1}
    assert report_line(small) == json.dumps(small).encode() + b"\n"


def test_the_master_keeps_typed_reports_and_refuses_a_line_that_is_none_with_one_warning(caplog):
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    child = Child(pid=123, pool=SimpleNamespace(queues=("q",)), settings=(), report_fd=read_fd)
    try:
        assert not child.ready and child.reported == WorkerState.STARTING
        lines = [StateReport(WorkerState.BUSY, job={"class": "Slow", "id": "j", "queue": "q"}, since=1.0, pid=123,
                             jobs=2, paused=True).encode(),
                 b'{"state": "napping", "pid": 123}\n', b"[1, 2]\n", b"not json\n",
                 ErrorReport("ValueError: boom").encode(), ExitAnnouncement(0, True).encode()]
        os.write(write_fd, b"".join(lines) + b'{"state": "id')   # and half a line, kept for later
        with caplog.at_level("WARNING", logger="resqued.master"):
            child.read_reports()
        assert child.busy and child.paused and child.report.jobs == 2 and child.job_label() == "job j (Slow)"
        assert child.last_error == "ValueError: boom" and child.announced(0) and child.settled
        refused = [r.getMessage() for r in caplog.records]
        assert len(refused) == 3 and all(m.startswith("worker 123 sent a line that is no report") for m in refused)
        assert "unknown state 'napping'" in refused[0] and child.buffer == b'{"state": "id'
    finally:
        os.close(read_fd)
        os.close(write_fd)
