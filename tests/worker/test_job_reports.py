"""What a worker says about a job, run for real: the log line as it starts,
the failure record of a perform called with the wrong arguments, and of a
PHP class name that is not allowed."""

import json
import re

import pytest

from conftest import JOBS_FILE, log_text, stop, wait_until
from helpers import failures, wait_registered

# Forking (the default) and inline: both paths report a job the same way.
MODES = {"fork": {}, "inline": {"FORK_PER_JOB": "false"}}


@pytest.fixture(params=sorted(MODES))
def worker(request, procs, redis_url, r):
    proc = procs.resqued(redis_url, extra_env=MODES[request.param])
    wait_registered(r, proc)
    yield proc
    stop(proc)


def test_a_job_start_is_logged_before_its_end(worker, resque, r):
    job_id = resque.enqueue_call("default", "RubyJob", 2, 3)
    started, done = f"job {job_id} RubyJob on default started", f"job {job_id} RubyJob on default done in "
    wait_until(lambda: done in log_text(worker), message="the job's end line")
    text = log_text(worker)
    assert started in text and text.index(started) < text.index(done)
    assert text.count(started) == 1


def test_perform_called_with_the_wrong_arguments_has_a_backtrace(worker, resque, r):
    # RubyJob.perform(a, b), enqueued php-style: one argument.
    resque.enqueue("default", "RubyJob", {"to": "ada@example.com"})
    wait_until(lambda: r.llen("resque:failed") == 1, message="a failure")
    [entry] = failures(r)
    assert entry["exception"] == "TypeError" and "missing 1 required positional argument" in entry["error"]
    call, defined = entry["backtrace"]
    assert re.fullmatch(r".*/resqued/jobs/job\.py:\d+:in `_call'", call), call
    source = open(JOBS_FILE).read().splitlines()
    # Where perform is defined: its first line, the @staticmethod above the def.
    line = next(n for n, text in enumerate(source, 1) if text.startswith("class RubyJob")) + 1
    assert defined == f"{JOBS_FILE}:{line}:in `perform'"


def test_an_unknown_php_class_is_shown_as_written(worker, r):
    r.rpush("resque:queue:default", json.dumps({"class": "App\\Jobs\\Mail", "args": [{}], "id": "php1"}))
    wait_until(lambda: r.llen("resque:failed") == 1, message="a failure")
    [entry] = failures(r)
    assert entry["exception"] == "resqued.UnknownJob"
    assert entry["payload"]["class"] == "App\\Jobs\\Mail"
    expected = (f"job class 'App\\Jobs\\Mail' is not allowed: it is neither an alias nor a job defined in "
                f"the job modules ({JOBS_FILE})")
    assert entry["error"] == expected
    wait_until(lambda: f"job php1 on default refused: {expected}" in log_text(worker), message="the log line")
    assert "\\\\" not in log_text(worker) and "resqued_app_" not in log_text(worker)
