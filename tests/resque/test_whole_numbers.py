"""Numbers read from text others wrote: "²".isdigit() is true and int("²")
raises, so a registration, a count or a pid file holding such a digit once
crashed whoever read it (every worker's prune on the host, resquectl
status). Now it reads as no number."""

import socket
import time

import pytest

from conftest import wait_until
from helpers import wait_registered
from resqued.numbers import is_whole_number, whole_number
from resqued.process.pidfile import read_pid
from resqued.resque import wire
from resqued.resque.presence import split_worker_id


@pytest.mark.parametrize("text,value", [("42", 42), (b"7", 7), ("²", None), ("٣", None), ("", None),
                                        ("-1", None), ("1.5", None), (" 1", None), (None, None)])
def test_only_ascii_digits_are_whole_numbers(text, value):
    assert whole_number(text) == value and is_whole_number(text) == (value is not None)


def test_a_pid_file_with_a_stray_digit_reads_as_no_pid(tmp_path):
    path = tmp_path / "w.pid"
    path.write_text("²\n")
    assert read_pid(str(path)) is None
    assert split_worker_id("host:²:default") == ("host", None, "default")


def test_odd_registrations_and_counts_do_not_stop_workers_or_status(procs, redis_url, r, resque):
    here = socket.gethostname()
    beats = {f"{here}:²:default": "2020-01-01T00:00:00+00:00",   # long dead: pruned
             "elsewhere:٣:mail": wire.heartbeat_time(time.time())}   # alive elsewhere: kept
    for odd, beat in beats.items():
        r.sadd("resque:workers", odd)
        r.hset("resque:workers:heartbeat", odd, beat)
        r.set(f"resque:stat:processed:{odd}", "lots")
    worker = procs.resqued(redis_url)
    wait_registered(r, worker)
    resque.enqueue_call("default", "add", 1, 2)
    wait_until(lambda: r.get("resque:stat:processed") == b"1", message="the job ran")
    assert worker.poll() is None
    rows = {w["id"]: w for w in resque.workers()}
    assert rows["elsewhere:٣:mail"]["pid"] is None and rows["elsewhere:٣:mail"]["processed"] == 0
    assert f"{here}:²:default" not in rows
