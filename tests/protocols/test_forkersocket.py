"""The job forker's messages (resqued/protocols/forkersocket.py) without
processes: each round-trips through its bytes, and anything else is refused."""

import pytest

from resqued.protocols.forkersocket import (MAX_MESSAGE, STANDBY_FDS, ChildExited, ForkerMessageRefused,
                                            ForkerReady, StandbyForked, StandbyWanted, decode_ask, decode_news)


@pytest.mark.parametrize("ask, message", [(StandbyWanted(False), b"S0"), (StandbyWanted(True), b"S1")])
def test_a_standby_asked_for_round_trips(ask, message):
    assert ask.encode() == message and decode_ask(message) == ask


@pytest.mark.parametrize("news, message, fds", [
    (ForkerReady(), b"R", 0),
    (StandbyForked(1234), b"P 1234 0", STANDBY_FDS),
    (StandbyForked(1234, says=True), b"P 1234 1", STANDBY_FDS),
    (ChildExited(1234, 9), b"X 1234 9", 0),
    (ChildExited(4194304, 65535), b"X 4194304 65535", 0),
])
def test_what_the_forker_says_round_trips(news, message, fds):
    assert news.encode() == message and len(message) <= MAX_MESSAGE
    assert decode_news(message, fds) == news


@pytest.mark.parametrize("message", [b"", b"S", b"S2", b"s1", b"S1 "])
def test_an_unknown_ask_is_refused(message):
    with pytest.raises(ForkerMessageRefused, match="unknown request"):
        decode_ask(message)


@pytest.mark.parametrize("message, fds, problem", [
    (b"P 12 0", 1, "a standby with 1 descriptors, not 4"),
    (b"P 12 1", 0, "a standby with 0"),
    (b"P 12", 4, "unknown message"),
    (b"P 12 2", 4, "unknown message"),
    (b"P", 2, "unknown message"),
    (b"X 12", 0, "unknown message"),
    (b"X 12 x", 0, "malformed"),
    (b"X -1 0", 0, "malformed"),
    (b"R 1", 0, "unknown message"),
    (b"Q", 0, "unknown message"),
])
def test_what_is_no_news_is_refused(message, fds, problem):
    with pytest.raises(ForkerMessageRefused, match=problem):
        decode_news(message, fds)
