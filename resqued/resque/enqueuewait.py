"""``Resque(url, wait_replicas=N)``: an enqueue that waits until N replicas
have it (docs/sentinel.md). The WAIT rides in the enqueue's own round trip,
on its own connection: WAIT counts the writes of the connection it is sent
on, so one sent on another would cover nothing."""

# Seconds a command of Resque(url) waits to connect before it raises, by
# default ("auto"). Behind Sentinel: more than a failover takes with
# Sentinel's down-after-milliseconds of 5 to 10 s (docs/sentinel.md). To a
# plain server: long enough for a restart (its port is closed for a moment),
# short enough that an app whose Redis is down fails its request in
# seconds, not half a minute of every web worker's time (Celery's publish
# retries for about a second).
CONNECT_WAIT_SENTINEL = 30.0
CONNECT_WAIT_PLAIN = 3.0


class NotReplicated(Exception):
    """An enqueue the primary took but fewer replicas than ``wait_replicas``
    acknowledged in time: a failover now could lose it."""

    def __init__(self, job_ids: list, acknowledged: int, asked: int, timeout: float):
        super().__init__(f"enqueued on the primary, but {acknowledged} of {asked} replica(s) acknowledged "
                         f"within {timeout:g}s: a failover now could lose it")
        self.job_ids = job_ids


def commands(replicas: int, timeout: float) -> list[tuple]:
    """What follows the enqueue's commands: nothing when ``replicas`` is 0."""
    return [("WAIT", replicas, max(1, round(timeout * 1000)))] if replicas else []


def check(wait: list[tuple], replies: list, job_ids: list) -> None:
    """Raise NotReplicated if the WAIT (the last of ``replies``) counted too few."""
    if not wait:
        return
    # A WAIT whose reply was lost (a timeout while it waited) confirmed nothing.
    acknowledged = 0 if isinstance(replies[-1], Exception) else int(replies[-1])
    if acknowledged < wait[0][1]:
        _, asked, timeout_ms = wait[0]
        raise NotReplicated(job_ids, acknowledged, asked, timeout_ms / 1000)
