"""The report pipe's messages (resqued/protocols/reportpipe.py) without
processes: each round-trips through its bytes, the bytes are those earlier
versions wrote and read, and a line that is no report is refused."""

import json

import pytest

from resqued.protocols.reportpipe import (LINE_LIMIT, ErrorReport, ExitAnnouncement, ReportRefused, StateReport,
                                          WorkerState, decode)


def test_the_states_are_the_words_on_the_wire_and_in_json():
    assert [s.value for s in WorkerState] == ["starting", "idle", "busy", "paused", "redis-down", "stopping"]
    assert json.dumps({"state": WorkerState.REDIS_DOWN}) == '{"state": "redis-down"}'
    assert WorkerState.BUSY == "busy" and f"{WorkerState.IDLE}" == "idle"


@pytest.mark.parametrize("report, line", [
    (StateReport(WorkerState.IDLE, pid=7, jobs=3, paused=False),
     b'{"state": "idle", "pid": 7, "jobs": 3, "paused": false}\n'),
    (StateReport("busy", job={"class": "Slow", "id": "j1", "queue": "q"}, since=1.5, child=9, pid=7, jobs=0,
                 paused=True),
     b'{"state": "busy", "job": {"class": "Slow", "id": "j1", "queue": "q"}, "since": 1.5, "child": 9, '
     b'"pid": 7, "jobs": 0, "paused": true}\n'),
    (StateReport(WorkerState.REDIS_DOWN, since=2.0, error="Connection refused", pid=7, jobs=1, paused=False),
     b'{"state": "redis-down", "since": 2.0, "error": "Connection refused", "pid": 7, "jobs": 1, "paused": false}\n'),
    (ErrorReport("ValueError: no"), b'{"error": "ValueError: no"}\n'),
    (ExitAnnouncement(75, True), b'{"state": "stopping", "exit": 75, "settled": true}\n'),
])
def test_each_message_has_the_bytes_of_earlier_versions_and_round_trips(report, line):
    assert report.encode() == line
    assert decode(line.rstrip(b"\n")) == report


def test_an_exit_announcement_is_told_from_a_state_report_and_settled_only_when_true():
    assert decode(b'{"state": "stopping", "exit": 1}') == ExitAnnouncement(1, False)
    assert decode(b'{"state": "stopping", "exit": 1, "settled": 1}') == ExitAnnouncement(1, False)
    assert decode(b'{"state": "stopping", "pid": 4}') == StateReport(WorkerState.STOPPING, pid=4)


def test_keys_a_message_does_not_know_are_ignored():
    assert decode(b'{"state": "idle", "pid": 4, "new": [1]}') == StateReport(WorkerState.IDLE, pid=4)


def test_a_state_report_fits_a_pipe_write():
    escaped = "\U0001F600" * 5000
    line = StateReport(WorkerState.BUSY, job={"class": escaped, "id": escaped, "queue": "q"}, pid=1).encode()
    assert len(line) <= LINE_LIMIT
    assert decode(line.rstrip(b"\n")).job["id"].endswith("(5000 characters)")


def test_an_unknown_state_is_refused_where_it_is_built():
    with pytest.raises(ValueError):
        StateReport("napping")


@pytest.mark.parametrize("line, reason", [
    (b"", "not JSON"),
    (b'{"state": "idle"', "not JSON"),
    (b"\xff", "not JSON"),
    (b"[" * 100_000, "not JSON"),
    (b'["idle"]', "not a JSON object"),
    (b'{"state": "napping"}', "unknown state 'napping'"),
    (b'{"pid": 4}', "unknown state 'None'"),
    (b'{"state": ["idle"]}', "unknown state"),
    (b'{"error": 3}', "error is not a string"),
    (b'{"state": "stopping", "exit": "1"}', "exit is not a number"),
    (b'{"state": "stopping", "exit": true}', "exit is not a number"),
    (b'{"state": "busy", "job": "Slow"}', "job is malformed"),
    (b'{"state": "idle", "pid": "4"}', "pid is malformed"),
    (b'{"state": "idle", "paused": 1}', "paused is malformed"),
    (b'{"state": "busy", "since": "now"}', "since is malformed"),
])
def test_a_line_that_is_no_report_is_refused_with_its_reason_in_one_line(line, reason):
    with pytest.raises(ReportRefused, match=reason) as refused:
        decode(line)
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 100
