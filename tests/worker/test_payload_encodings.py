"""A payload in UTF-16 or UTF-32 (json.loads reads them from bytes) gets the
same checks as UTF-8: a lone surrogate in it fails the job as an invalid
payload instead of crashing the worker. Real worker and Redis."""


import pytest

from conftest import stop, wait_until
from helpers import failures, wait_log, wait_registered
from resqued.resque import wire

# "\ud800" escaped, so that the text encodes; json.loads makes it a lone surrogate.
LONE = '{"class":"PhpJob","args":[],"id":"\\ud800"}'


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16", "utf-32", "utf-8-sig"])
def test_a_lone_surrogate_in_any_encoding_json_reads_is_an_invalid_payload(encoding):
    with pytest.raises(wire.InvalidPayload, match="surrogate"):
        wire.decode_payload(LONE.encode(encoding))
    assert wire.decode_payload(LONE.replace("\\ud800", "x").encode(encoding))["id"] == "x"


def test_a_utf16_payload_with_a_lone_surrogate_fails_and_the_worker_goes_on(procs, redis_url, r, resque):
    r.rpush("resque:queue:default", LONE.encode("utf-16-le"))
    resque.enqueue("default", "PhpJob", {"tag": "after"})
    proc = procs.resqued(redis_url, extra_env={"FORK_PER_JOB": "false"})
    wait_registered(r, proc)
    wait_log(r, "perform:after")
    wait_until(lambda: r.get("resque:stat:processed") == b"2", message="2 processed")
    assert [f["exception"] for f in failures(r)] == ["resqued.InvalidPayload"]
    assert proc.poll() is None
    stop(proc)
