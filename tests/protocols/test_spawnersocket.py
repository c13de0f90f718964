"""The spawner's socket protocol (resqued/protocols/spawnersocket.py): what
one end encodes the other decodes; anything else is refused, with why."""

import json

import pytest

from resqued.protocols import spawnersocket as protocol


def test_requests_carry_their_settings():
    spec_json = json.dumps({"queues": ["default"], "aliases": {f"Job{i}": "add" for i in range(20000)}})
    worker = protocol.ForkWorker(spec_json)
    assert worker.kind == b"W" and protocol.decode_request(b"W", 2, worker.settings()) == worker
    recovery = protocol.ForkRecovery({"workers": [["host:1:default", "lost"]]})
    assert recovery.kind == b"L" and protocol.decode_request(b"L", 1, recovery.settings()) == recovery


@pytest.mark.parametrize("kind, fds, settings, problem", [
    (b"X", 1, b"{}", "unknown request b'X'"),
    (b"W", 1, b"{}", "request W with 1 descriptors, not 2"),
    (b"L", 2, b"{}", "request L with 2 descriptors, not 1"),
    (b"L", 1, b"not json", "request L with unreadable settings"),
    (b"W", 2, b"\xff{}", "request W with unreadable settings"),
    (b"L", 1, b"[1, 2]", "request L with settings that are no JSON object"),
])
def test_a_malformed_request_is_refused(kind, fds, settings, problem):
    with pytest.raises(protocol.SpawnerMessageRefused) as refused:
        protocol.decode_request(kind, fds, settings)
    assert str(refused.value).startswith(problem)


def test_the_wire_as_before_and_garbage_refused():
    assert protocol.SpawnerReady().encode() == b"R" and protocol.decode_notice(b"R") == protocol.SpawnerReady()
    assert protocol.Forked(7).encode() == b"P 7" and protocol.decode_reply(b"P 7") == protocol.Forked(7)
    assert protocol.NotForked("fork failed").encode() == b"E fork failed"
    assert protocol.decode_reply(b"E fork failed") == protocol.NotForked("fork failed")
    for garbage in (b"P", b"P x", b"Q 1", b"R"):
        with pytest.raises(protocol.SpawnerMessageRefused):
            protocol.decode_reply(garbage)
    with pytest.raises(protocol.SpawnerMessageRefused):
        protocol.decode_notice(b"P 1")
