"""A job's stdout, stderr (at the fd level) and logging records come out as
resqued's log lines carrying its id, class and queue: one JSON object a
line with ``log.format: json``, lines prefixed "job <id> <class>: " in
text. Real masters, forking workers (with and without a job forker) and an
inline (``fork: false``) one."""

import io
import json
import logging
import re

import pytest

from conftest import log_text, stop, wait_until
from resqued.process import logs
from resqued.worker.execution.jobcapture import MAX_LINE, Lines

JOBS = '''
import logging
import os
import subprocess
import sys


class Talks:
    def perform(self):
        print("said on stdout", self.args["word"])
        os.write(2, b"written to fd 2 " + self.args["word"].encode() + b"\\n")
        logging.getLogger("app").warning("app warns %s", self.args["word"])
        subprocess.run(["echo", "from a subprocess"], check=True)
        sys.stdout.write("no newline at the end")


class Breaks:
    def perform(self):
        print("about to fail")
        raise KeyError("no such thing")


class LeavesOne:
    def perform(self):
        subprocess.Popen(["sleep", "30"])


class Floods:
    def perform(self):
        os.write(1, b"x" * 100000 + b"\\n")
        print("after the flood")


class Wide:
    def perform(self):
        os.write(1, "\\U0001f600\\x1b".encode() * 3000 + b"\\n")
        print("after the wide line")
'''

POOL = "queues: [default]\ncount: 1"


def start(master_factory, tmp_path, fmt, pool=POOL, **top):
    (tmp_path / "outjobs.py").write_text(JOBS)
    master = master_factory([pool], jobs=f"[{tmp_path / 'outjobs.py'}]", log=f"{{level: info, format: {fmt}}}",
                            **top)
    master.wait_workers(1)
    return master


def run_jobs(master, resque, r):
    resque.enqueue("default", "Talks", {"word": "hello"})
    resque.enqueue("default", "Breaks", {})
    wait_until(lambda: int(r.get("resque:stat:processed") or 0) == 2, message="both jobs recorded")
    assert stop(master.proc) == 0
    return log_text(master.proc)


def json_lines(text):
    lines = text.splitlines()
    assert lines
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not JSON: {line!r}\n\n{text[-3000:]}") from None
    return parsed


@pytest.mark.parametrize("pool", [POOL, POOL + "\njob_forker: false", POOL + "\nfork: false"],
                         ids=["forker", "no-forker", "inline"])
def test_json_every_line_is_an_object_and_a_jobs_lines_carry_its_id(master_factory, tmp_path, resque, r, pool):
    master = start(master_factory, tmp_path, "json", pool)
    entries = json_lines(run_jobs(master, resque, r))
    for entry in entries:
        assert {"time", "level", "logger", "pid", "event", "message"} <= entry.keys(), entry
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"]), entry
    talks = next(e for e in entries if e["event"] == "job_started" and e["class"] == "Talks")
    job = {"job_id": talks["job_id"], "class": "Talks", "queue": "default"}
    mine = [e for e in entries if e.get("job_id") == talks["job_id"]]
    outputs = {(e["stream"], e["message"]) for e in mine if e["event"] == "job_output"}
    assert outputs == {("stdout", "said on stdout hello"), ("stderr", "written to fd 2 hello"),
                       ("stdout", "from a subprocess"), ("stdout", "no newline at the end")}, mine
    logged = [e for e in mine if e["event"] == "job_log"]
    assert [(e["logger"], e["level"], e["message"]) for e in logged] == [("app", "warning", "app warns hello")]
    for e in mine:
        assert {k: e[k] for k in job} == job, e
    done = next(e for e in mine if e["event"] == "job_done")
    assert isinstance(done["duration_ms"], (int, float)) and done["worker"]
    # Its lines come before its outcome's.
    assert max(entries.index(e) for e in mine if e["event"] != "job_done") < entries.index(done)
    failed = next(e for e in entries if e["event"] == "job_failed")
    assert failed["class"] == "Breaks" and failed["exception"] == "KeyError" and "no such thing" in failed["error"]
    assert "duration_ms" in failed
    assert any(e["event"] == "job_output" and e["message"] == "about to fail" and e["job_id"] == failed["job_id"]
               for e in entries)
    assert any(e["event"] == "worker_starting" for e in entries)
    assert any(e["event"] == "master_started" for e in entries)


def test_text_a_jobs_lines_are_prefixed_with_its_id(master_factory, tmp_path, resque, r):
    master = start(master_factory, tmp_path, "text")
    text = run_jobs(master, resque, r)
    job_id = re.search(r"job (\S+) Talks on default started", text).group(1)
    for line in (f"INFO job {job_id} Talks: said on stdout hello", f"WARNING job {job_id} Talks: written to fd 2 hello",
                 f"WARNING job {job_id} Talks: app: app warns hello", f"INFO job {job_id} Talks: no newline at the end"):
        assert re.search(r"^\S+ \S+ resqued\[\d+\] " + re.escape(line) + "$", text, re.M), (line, text)
    # Nothing of a job's is written raw.
    assert not re.search(r"^(said on stdout|written to fd 2|app warns)", text, re.M), text


def test_a_line_without_end_is_cut_and_does_not_block(master_factory, tmp_path, resque, r):
    master = start(master_factory, tmp_path, "json")
    resque.enqueue("default", "Floods", {})
    wait_until(lambda: int(r.get("resque:stat:processed") or 0) == 1, message="the job recorded")
    assert stop(master.proc) == 0
    outputs = [e["message"] for e in json_lines(log_text(master.proc)) if e["event"] == "job_output"]
    # Pieces of 16 KiB, each shown cut so that its log line stays under PIPE_BUF.
    assert outputs == [f"{'x' * 2998}… (cut: {16384 - 2998} bytes)"] * 6 + ["x" * (100000 - 6 * 16384),
                                                                          "after the flood"]


IMPORT_TALK = '''
import logging
import sys
import warnings

print("printed at import")
sys.stderr.write("written to stderr at import\\n")
warnings.warn("an old API")
logging.getLogger("app").warning("the app logs at import")
'''


@pytest.mark.parametrize("pool", [POOL, POOL + "\nfork: false"], ids=["forking", "inline"])
def test_json_what_the_app_says_outside_a_job_is_json_lines_too(master_factory, tmp_path, resque, r, pool):
    (tmp_path / "outjobs.py").write_text(IMPORT_TALK + JOBS)
    master = master_factory([pool], jobs=f"[{tmp_path / 'outjobs.py'}]", log="{level: info, format: json}")
    master.wait_workers(1)
    entries = json_lines(run_jobs(master, resque, r))   # each line is JSON
    said = {(e["event"], e["message"]) for e in entries if e["event"] in ("app_output", "app_log")}
    assert {("app_output", "printed at import"), ("app_output", "written to stderr at import"),
            ("app_log", "the app logs at import")} <= said, said
    assert any(event == "app_log" and "an old API" in message for event, message in said), said
    assert not [e for e in entries if e["event"] in ("app_output", "app_log") and "job_id" in e]
    # A job's own output still carries its job.
    assert any(e["event"] == "job_output" and e["message"] == "said on stdout hello" and e.get("job_id")
               for e in entries)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_wide_line_is_cut_so_that_its_log_line_is_written_whole(master_factory, tmp_path, resque, r, fmt):
    # Escaped, each of these characters takes up to 12 bytes: a 15,000-byte
    # line made a JSON line of ~100 KB, which a write to a shared stderr
    # can interleave with other processes' lines past PIPE_BUF (4096).
    master = start(master_factory, tmp_path, fmt)
    resque.enqueue("default", "Wide", {})
    wait_until(lambda: int(r.get("resque:stat:processed") or 0) == 1, message="the job recorded")
    assert stop(master.proc) == 0
    text = log_text(master.proc)
    lines = text.splitlines()
    assert all(len(line.encode()) < 4096 for line in lines), max(len(line.encode()) for line in lines)
    (cut,) = [line for line in lines if "(cut: " in line]
    assert re.search(r"(…|\\u2026) \(cut: \d+ bytes\)", cut) and "after the wide line" in text


def test_resqueds_own_lines_in_a_job_child_are_not_the_jobs_output(master_factory, tmp_path, resque, r):
    master = start(master_factory, tmp_path, "json", term_timeout=1)
    resque.enqueue("default", "LeavesOne", {})
    wait_until(lambda: int(r.get("resque:stat:processed") or 0) == 1, message="the job recorded")
    assert stop(master.proc) == 0
    entries = json_lines(log_text(master.proc))
    left = [e for e in entries if "left processes running" in e["message"]]
    assert [(e["event"], e["logger"]) for e in left] == [("log", "resqued.worker")], entries
    assert not [e for e in entries if e["event"] == "job_output"], entries


def test_job_output_lines_are_cut_at_the_bound_and_flushed():
    stream = io.StringIO()
    logs.setup("info", "json", stream=stream)
    try:
        lines = Lines("stdout", logging.INFO)
        lines.feed(b"one\r\ntw")
        lines.feed(b"o\n" + b"x" * (MAX_LINE * 2 + 5))
        assert len(lines.buffer) == 5
        lines.feed(b"\xff")
        lines.flush()
    finally:
        logging.getLogger("resqued").handlers[:] = []
    messages = [json.loads(line)["message"] for line in stream.getvalue().splitlines()]
    assert messages == ["one", "two", *[f"{'x' * 2998}… (cut: {MAX_LINE - 2998} bytes)"] * 2, "xxxxx\\xff"]
