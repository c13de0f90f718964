"""The report pipe's messages (resqued/protocols/reportpipe.py) without
processes: each round-trips through its bytes, the bytes are those earlier
versions wrote and read, and a line that is no report is refused."""

import json
import random

import pytest

from resqued.protocols.reportpipe import (LINE_LIMIT, UNKNOWN_CLASS, ErrorReport, ExitAnnouncement, JobOutcome,
                                          ReportRefused, StateReport, WorkerState, decode, outcome_record,
                                          state_line, state_line_carrying)


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
    (b'{"state": "busy", "since": true}', "since is malformed"),   # a bool is no number here
    (b'{"state": "busy", "child": false}', "child is malformed"),
    (b'{"state": {"busy": 1}}', "unknown state"),                   # not hashable: refused all the same
])
def test_a_line_that_is_no_report_is_refused_with_its_reason_in_one_line(line, reason):
    with pytest.raises(ReportRefused, match=reason) as refused:
        decode(line)
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 100


# -- finished jobs' outcome records -------------------------------------------------

def test_outcomes_ride_on_a_state_report_and_a_line_without_them_is_unchanged():
    fields = {"state": WorkerState.IDLE, "pid": 7, "jobs": 3, "paused": False}
    assert state_line(fields) == b'{"state": "idle", "pid": 7, "jobs": 3, "paused": false}\n'
    records = [outcome_record("q", "Echo", JobOutcome.DONE, 0.25, 1.5),
               outcome_record("q", UNKNOWN_CLASS, JobOutcome.FAILED, 0.0, None)]
    line, carried = state_line_carrying(fields, records)
    assert carried == 2
    assert line == (b'{"state": "idle", "pid": 7, "jobs": 3, "paused": false, "outcomes": '
                    b'[["q", "Echo", "done", 0.25, 1.5], ["q", "(unknown)", "failed", 0.0, null]]}\n')
    report = decode(line.rstrip(b"\n"))
    assert report == StateReport(WorkerState.IDLE, pid=7, jobs=3, paused=False,
                                 outcomes=(["q", "Echo", "done", 0.25, 1.5], ["q", "(unknown)", "failed", 0.0, None]))


def test_a_line_carrying_outcomes_fits_a_pipe_write_whatever_its_names():
    worst = "\U0001F600" * 5000
    fields = {"state": WorkerState.BUSY, "job": {"class": worst, "id": worst, "queue": worst}, "pid": 1}
    records = [outcome_record(worst, worst, JobOutcome.DIRTY_EXIT, 1e9, 1e9) for _ in range(50)]
    line, carried = state_line_carrying(fields, records)
    assert len(line) <= LINE_LIMIT and carried == 1
    assert decode(line.rstrip(b"\n")).outcomes[0][0] == "\U0001F600" * 100
    line, carried = state_line_carrying({"state": WorkerState.IDLE}, [outcome_record("q", "C", "done", 1, 1)] * 500)
    assert len(line) <= LINE_LIMIT and 100 < carried < 500


@pytest.mark.parametrize("outcomes", [
    '"done"', '[["q", "C", "exploded", 1, 1]]', '[["q", "C", "done", "1", 1]]', '[["q", "C", "done", 1]]',
    '[["q", 5, "done", 1, 1]]', '[["%s", "C", "done", 1, 1]]' % ("q" * 101), '[["q", "C", "done", true, 1]]',
    '[["q", "C", ["done"], 1, 1]]', '[["q", "C", {"done": 1}, 1, 1]]'])   # unhashable: refused, not a TypeError
def test_malformed_outcomes_refuse_the_line(outcomes):
    # A line must not create label values at will: an outcome of JobOutcome's, names of bounded length.
    with pytest.raises(ReportRefused, match="outcomes"):
        decode(b'{"state": "idle", "outcomes": %s}' % outcomes.encode())


def test_a_line_carrying_records_reuses_the_plain_line_it_is_given():
    # A worker has the line without records already (it compares it with
    # the last one): carrying records must not encode the fields again.
    fields = {"state": "idle", "pid": 7, "jobs": 1, "paused": False}
    record = outcome_record("q", "Echo", "done", 0.5, None)
    plain = state_line(fields)
    line, carried = state_line_carrying(fields, [record], plain)
    assert line.startswith(plain[:-2]) and carried == 1
    assert decode(line.rstrip(b"\n")).outcomes == (["q", "Echo", "done", 0.5, None],)
    marked = plain.replace(b'"idle"', b'"busy"')   # not what the fields say: seen only if reused
    assert state_line_carrying(fields, [record], marked)[0].startswith(marked[:-2])


def test_any_json_line_decodes_to_a_report_or_is_refused_never_an_other_error():
    # The master's loop catches ReportRefused only: any other exception out of
    # decode (an unhashable outcome name was one) would stop it. Seeded: the
    # same 20,000 lines each run, shaped like reports with any value anywhere.
    rng = random.Random(23)
    values = [None, True, 1, -1, 1.5, "", "busy", "idle", "done", "x" * 300, [], {}, [1], {"a": 1}, ["done"],
              float("nan")]
    keys = ["state", "job", "since", "child", "error", "pid", "jobs", "paused", "outcomes", "exit", "settled"]

    def record():
        return [rng.choice(values + ["q"]) for _ in range(rng.choice((4, 5, 5, 6)))]

    for _ in range(20_000):
        fields = {key: rng.choice(values) for key in rng.sample(keys, rng.randint(0, 5))}
        if rng.random() < 0.7:
            fields["state"] = rng.choice(["busy", "idle", "paused", rng.choice(values)])
        if rng.random() < 0.5:
            fields["outcomes"] = [record() for _ in range(rng.randint(0, 3))]
        line = json.dumps(fields).encode()
        try:
            decode(line)
        except ReportRefused:
            pass
