"""``resquectl delayed`` against a real redis-server: list, show, remove, run."""

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from resqued.ctl.cli import main

TS = 1800000000


@pytest.fixture
def ctl(redis_url, capsys, monkeypatch):
    for name in ("REDIS_URL", "REDIS_BACKEND", "REDIS_BACKEND_DB", "PREFIX"):
        monkeypatch.delenv(name, raising=False)

    def run(*args):
        code = main(["--redis", redis_url, *args])
        out, err = capsys.readouterr()
        if out.startswith("Redis "):
            out = out.split("\n", 1)[1]
        return code, out, err
    return run


@pytest.fixture
def scheduled(resque, r):
    resque.enqueue_at(TS, "mail", "Mailer", {"to": "a@b.c"})
    resque.enqueue_at_call(TS, "mail", "Archive", 1, 2)
    resque.enqueue_at(TS + 60, "default", "Mailer", {"to": "x@y.z"})
    r.rpush(f"resque:delayed:{TS + 60}", b"{broken")
    return resque


def test_list_pages_timestamps_with_counts(ctl, scheduled):
    code, out, _ = ctl("delayed")
    assert code == 0
    assert "1800000000   2027-01-15T08:00:00Z  2" in out and "1800000060" in out
    assert "4 delayed jobs in all" in out
    code, out, _ = ctl("delayed", "list", "--start", "1", "--count", "1", "--json")
    data = json.loads(out)
    assert data["timestamps"] == [{"timestamp": TS + 60, "at": "2027-01-15T08:01:00Z", "jobs": 2}]
    assert (data["total_timestamps"], data["total_jobs"]) == (2, 4)


def test_show_lists_the_jobs_of_a_timestamp_and_a_raw_one(ctl, scheduled):
    code, out, _ = ctl("delayed", "show", "2027-01-15T08:01:00Z", "--json")
    assert code == 0
    assert json.loads(out) == [{"index": 0, "class": "Mailer", "args": [{"to": "x@y.z"}], "queue": "default"},
                               {"index": 1, "class": None, "args": [], "raw": "{broken"}]
    code, out, _ = ctl("delayed", "show", str(TS))
    assert "[1] Archive on mail args [1, 2]" in out
    code, _, err = ctl("delayed", "show", "12")
    assert code == 1 and "no delayed jobs at 12" in err


def test_remove_as_remove_delayed_and_nothing_matching_fails(ctl, scheduled, r):
    code, out, _ = ctl("delayed", "remove", "mail", "Archive", "[1, 2]", "--call")
    assert code == 0 and "removed 1" in out
    code, _, err = ctl("delayed", "remove", "mail", "Archive", "[1, 2]", "--call")
    assert code == 1 and "nothing removed" in err
    code, out, _ = ctl("delayed", "remove", "mail", "Mailer", '{"to": "a@b.c"}', "--at", str(TS), "--json")
    assert json.loads(out) == {"ok": True, "removed": 1}
    assert not r.exists(f"resque:delayed:{TS}")
    code, _, err = ctl("delayed", "remove", "mail", "Mailer", '"text"')
    assert code == 2 and "JSON_ARGS must be" in err


def test_run_moves_a_timestamp_or_one_job_now(ctl, scheduled, r):
    code, out, _ = ctl("delayed", "run", str(TS + 60), "--index", "1")
    assert code == 0 and "moved 1" in out
    assert json.loads(r.lindex("resque:failed", 0))["payload"]["raw"] == "{broken"
    code, out, _ = ctl("delayed", "run", str(TS))
    assert code == 0 and "moved 2" in out
    jobs = [json.loads(raw) for raw in r.lrange("resque:queue:mail", 0, -1)]
    assert [job["class"] for job in jobs] == ["Mailer", "Archive"] and all(len(j["id"]) == 32 for j in jobs)
    assert r.zrange("resque:delayed_queue_schedule", 0, -1) == [str(TS + 60).encode()]
    code, _, err = ctl("delayed", "run", str(TS))
    assert code == 1 and "no delayed jobs at 1800000000" in err
    code, _, err = ctl("delayed", "run", str(TS + 60), "--index", "5")
    assert code == 1 and "no delayed job at index 5" in err


def test_a_bad_timestamp_is_a_usage_error(redis_url):
    proc = subprocess.run([sys.executable, "-m", "resqued.ctl", "--redis", redis_url, "delayed", "show", "soon"],
                          env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "not a timestamp (epoch seconds or ISO 8601): 'soon'" in proc.stderr
