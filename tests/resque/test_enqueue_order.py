"""A tracked job's status is written before the job is pushed: a worker may
take it at once, and a status written after its outcome would stay
"waiting" for ever (no TTL). Real Redis, read through MONITOR."""


def _writes(r, enqueue) -> list[str]:
    """The names of the writes ``enqueue`` sends, in the order the server runs them."""
    with r.monitor() as monitor:
        enqueue()
        seen = []
        while "RPUSH" not in seen:
            seen.append(monitor.next_command()["command"].split()[0].upper())
    return [name for name in seen if name in ("SET", "RPUSH")]


def test_enqueue_writes_the_status_before_the_push(resque, r):
    assert _writes(r, lambda: resque.enqueue("default", "PhpJob", track_status=True)) == ["SET", "RPUSH"]
    assert _writes(r, lambda: resque.enqueue_many("default", "PhpJob", [{}, {}], track_status=True)) == [
        "SET", "SET", "RPUSH"]
