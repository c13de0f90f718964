"""The control socket's messages (resqued/protocols/controlsocket.py) without
a master: requests and answers round-trip through their bytes, the bytes
are those resquectl and the master have always exchanged, and a request
that is none is refused (tests/test_fuzz.py feeds it random bytes)."""

import json

import pytest

from resqued.protocols.controlsocket import (COMMANDS, Answer, BadRequest, Command, Refusal, Request,
                                             decode_answer, decode_request, typed_answer)

STATUS = {"master": {"pid": 1, "config": "pool.yml", "state": "running", "rss": 10},
          "spawner": {"pid": 2, "state": "ready", "rss": 5}, "pools": [], "workers": []}


@pytest.mark.parametrize("request_, line", [
    (Request(Command.STATUS), b'{"command": "status"}\n'),
    (Request("pause"), b'{"command": "pause"}\n'),
    (Request(Command.PAUSE, wait=30), b'{"command": "pause", "wait": 30}\n'),
    (Request(Command.RESUME), b'{"command": "resume"}\n'),
    (Request(Command.RELOAD), b'{"command": "reload"}\n'),
    (Request(Command.RESTART), b'{"command": "restart", "pools": []}\n'),
    (Request(Command.RESTART, pools=["a,b"]), b'{"command": "restart", "pools": ["a,b"]}\n'),
    (Request(Command.STOP, now=True), b'{"command": "stop", "now": true}\n'),
    (Request(Command.STOP), b'{"command": "stop", "now": false}\n'),
])
def test_each_request_has_resquectls_bytes_and_round_trips(request_, line):
    assert request_.encode() == line
    assert decode_request(line) == request_


def test_arguments_of_another_command_and_unknown_keys_are_ignored():
    assert decode_request(b'{"command": "status", "wait": "x", "pools": 3, "now": 1, "pad": []}') == \
        Request(Command.STATUS)
    assert decode_request(b'{"command": "stop", "now": 1}') == Request(Command.STOP, now=True)


@pytest.mark.parametrize("line, problem", [
    (b'{"command": "shutdown"}', "unknown command 'shutdown'; commands are status, pause, resume, reload, "
                                "restart, stop"),
    (b'{}', r"unknown command \(none given\)"),
    (b'"status"', "not a JSON object"),
    (b'{"command": "restart", "pools": "a"}', "pools must be a list"),
    (b'{"command": "pause", "wait": 0}', "wait must be a number of seconds above 0"),
    (b'{"command": "pause", "wait": true}', "wait must be"),
])
def test_a_bad_request_is_refused_with_one_clear_line(line, problem):
    with pytest.raises(BadRequest, match=problem):
        decode_request(line)


def test_the_commands_are_the_words_on_the_wire():
    assert COMMANDS == ("status", "pause", "resume", "reload", "restart", "stop", "metrics")
    with pytest.raises(ValueError):
        Request("shutdown")


@pytest.mark.parametrize("answer, line", [
    (Answer(STATUS), b'{"ok": true, ' + json.dumps(STATUS).encode()[1:] + b"\n"),
    (Answer(STATUS, message="paused"),
     b'{"ok": true, "message": "paused", ' + json.dumps(STATUS).encode()[1:] + b"\n"),
    (Answer(STATUS, pid=1, message="stopping"),
     b'{"ok": true, "pid": 1, "message": "stopping", ' + json.dumps(STATUS).encode()[1:] + b"\n"),
    (Refusal("the master is stopping"), b'{"ok": false, "error": "the master is stopping"}\n'),
    (Refusal("no", unsupported=True), b'{"ok": false, "unsupported": true, "error": "no"}\n'),
    (Refusal("bad", config_error=False), b'{"ok": false, "error": "bad", "config_error": false}\n'),
])
def test_each_answer_has_the_masters_bytes_and_round_trips(answer, line):
    assert answer.encode() == line
    assert typed_answer(decode_answer(line)) == answer


def test_an_answer_that_is_no_json_object_is_refused():
    for data in (b"[1]\n", b"nope\n"):
        with pytest.raises(ValueError):
            decode_answer(data)


def test_a_status_without_memory_travels_and_a_bad_memory_flag_is_refused():
    # The fleet advertiser asks every 2 s: the workers' /proc reads stay out of it.
    from resqued.protocols.controlsocket import BadRequest, Command, Request, decode_request
    line = Request(Command.STATUS, memory=False).encode()
    assert decode_request(line).memory is False
    assert Request(Command.STATUS).encode() == b'{"command": "status"}\n'   # resquectl's line, as always
    assert decode_request(b'{"command": "status"}').memory is True
    try:
        decode_request(b'{"command": "status", "memory": "no"}')
    except BadRequest as exc:
        assert "memory" in str(exc)
    else:
        raise AssertionError("a memory flag that is no boolean was taken")


def test_a_status_without_workers_travels_and_a_bad_workers_flag_is_refused():
    # The fleet advertiser counts workers by state per pool: no record of each.
    from resqued.protocols.controlsocket import BadRequest, Command, Request, decode_request
    line = Request(Command.STATUS, memory=False, workers=False).encode()
    assert json.loads(line) == {"command": "status", "memory": False, "workers": False}
    request = decode_request(line)
    assert request.workers is False and request.memory is False
    assert decode_request(b'{"command": "status"}').workers is True
    assert decode_request(b'{"command": "pause", "workers": false}').workers is True   # status's alone
    with pytest.raises(BadRequest, match="workers must be true or false"):
        decode_request(b'{"command": "status", "workers": 0}')
