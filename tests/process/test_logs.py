"""The log formatters: a JSON line is one object with the event's fields;
the text line is the message alone, escaped, whatever fields it carries."""

import io
import json
import logging
import re

import pytest

from resqued.config.redisurl import redact
from resqued.process import logs


class FakeJob:
    id, job_class, queue, label = "j1", "Evil\nClass", "default", "j1"


@pytest.fixture
def logged():
    """(logger, stream): resqued's logger writing to a string, JSON or text."""
    def make(fmt):
        stream = io.StringIO()
        logs.setup("debug", fmt, stream=stream)
        return logging.getLogger("resqued.test"), stream
    yield make
    logging.getLogger("resqued").handlers[:] = []


def test_json_has_the_base_fields_and_the_events_fields(logged):
    log, stream = logged("json")
    log.info("job %s done", "j1", extra=logs.job_event("job_done", FakeJob(), duration_ms=1.5, worker=None))
    entry = json.loads(stream.getvalue())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])
    assert entry == {"time": entry["time"], "level": "info", "logger": "resqued.test", "pid": entry["pid"],
                     "event": "job_done", "message": "job j1 done", "job_id": "j1", "class": "Evil\nClass",
                     "queue": "default", "duration_ms": 1.5}


def test_json_lines_without_an_event_say_log_and_keep_one_line(logged):
    log, stream = logged("json")
    log.warning("payload said %s", "a\nfake line\x1b[31m")
    try:
        raise KeyError("x")
    except KeyError:
        log.exception("it broke")
    first, second = stream.getvalue().splitlines()
    assert json.loads(first)["event"] == "log" and json.loads(first)["message"] == "payload said a\nfake line\x1b[31m"
    broke = json.loads(second)
    assert broke["exception"] == "KeyError" and "Traceback" in broke["traceback"]


def test_text_is_the_message_alone_escaped(logged):
    log, stream = logged("text")
    log.info("job %s started", "j\n1", extra=logs.job_event("job_started", FakeJob()))
    log.info("%s", "a line", extra={**logs.job_event("job_output", FakeJob()), "text_prefix": "job j1 Evil\nClass: "})
    first, second = stream.getvalue().splitlines()
    assert first.endswith(" INFO job j\\n1 started")
    assert second.endswith(" INFO job j1 Evil\\nClass: a line")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_redis_password_stays_masked(logged, fmt):
    log, stream = logged(fmt)
    log.error("cannot reach Redis at %s", redact("redis://user:s3cret@host:6379/0"))
    assert "s3cret" not in stream.getvalue()


def test_exit_fields():
    assert logs.exited(4) == {"exit_code": 4}
    assert logs.exited(-9) == {"signal": "SIGKILL"}
