"""Pausing a queue on every host: a member of ``<ns>:resqued:paused_queues``
(a set of queue names), which every resqued worker reads with its takes
(worker/queuepause.py). Any tool may SADD or SREM it: docs/fleet.md."""

from resqued.fleet.keys import FleetKeys


def pause(client, namespace: str, queue: str) -> bool:
    """Whether it was not paused already."""
    return bool(client.sadd(FleetKeys(namespace).paused_queues, queue))


def resume(client, namespace: str, queue: str) -> bool:
    """Whether it was paused."""
    return bool(client.srem(FleetKeys(namespace).paused_queues, queue))


def paused_queues(client, namespace: str) -> list[str]:
    return sorted(q.decode(errors="replace") for q in client.smembers(FleetKeys(namespace).paused_queues))
