"""The fleet's keys, under ``<ns>:resqued:`` (stdlib only: the master's
side may import it)."""

ADVERTISE_EVERY = 2.0    # seconds between a master's records
RECORD_TTL = 10          # seconds: a record not renewed for this long is gone (five missed writes)


class FleetKeys:
    def __init__(self, namespace: str = "resque"):
        p = (namespace.rstrip(":") or "resque") + ":resqued:"
        # A sorted set: "host:pid" of each master, scored by when its record was last written.
        self.masters = p + "fleet:masters"
        # The queues no resqued worker takes from, on any host: a set of names.
        self.paused_queues = p + "paused_queues"
        self._record = p + "fleet:master:"

    def record(self, member: str) -> str:
        """The JSON record (a string with a TTL) of the master ``host:pid``."""
        return self._record + member
