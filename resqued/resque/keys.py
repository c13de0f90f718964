"""Every Redis key resqued reads or writes, in one place.

The names are Resque's (php-resque and Ruby Resque agree on them), so that
resque-web, PHP and Ruby applications see our workers, queues and failures.
Keys of our own live under ``<namespace>:resqued:`` so they never collide with
anything Resque may add.
"""


def check_queue_name(queue) -> str:
    # A worker id joins its queues with ',', so a comma would corrupt it.
    # Any whitespace (also \v, \f, U+00A0, ...) is refused, not only " \t\r\n".
    if not isinstance(queue, str) or not queue or "," in queue or any(c.isspace() for c in queue):
        raise ValueError(f"invalid queue name {queue!r}: a non-empty name without commas or whitespace")
    return queue


def status_prefix(prefix) -> str:
    """What a payload's ``prefix`` adds to its status key: php-resque's
    ``empty($prefix) ? '' : "{$prefix}_"``. Only a string or an integer is
    a prefix (PHP's empty() also counts "0" as none); anything else is none."""
    if isinstance(prefix, int) and not isinstance(prefix, bool):
        prefix = str(prefix)
    if not isinstance(prefix, str) or prefix in ("", "0"):
        return ""
    return prefix + "_"


class Keys:
    def __init__(self, namespace: str = "resque"):
        # php-resque adds the missing trailing colon to PREFIX; so do we.
        namespace = namespace.rstrip(":") or "resque"
        self.namespace = namespace
        self.prefix = namespace + ":"
        p = self.prefix
        self.queues = p + "queues"
        self.workers = p + "workers"
        self.heartbeats = p + "workers:heartbeat"
        self.prune_lock = p + "pruning_dead_workers_in_progress"
        self.pause_all = p + "pause-all-workers"
        self.failed = p + "failed"
        self.processed = p + "stat:processed"
        self.failed_count = p + "stat:failed"
        self._queue_prefix = p + "queue:"
        # resqued's own (Resque's tools never read these):
        # worker id -> its heartbeat interval in seconds, so that a pruner
        # judges each worker by its own beat; a worker not in it (Ruby, PHP)
        # is judged by Resque's 60 s.
        self.heartbeat_intervals = p + "resqued:heartbeat_intervals"
        # worker id -> Redis time it was first seen unregistered and silent
        # (presence.py settles its in-flight lists five intervals later).
        self.vanished = p + "resqued:vanished"
        # Whose turn it is to settle dead resqued workers' lists; Resque's
        # own prune lock may be held for a minute by a 60 s worker.
        self.settle_lock = p + "resqued:settle_lock"
        self._inflight_prefix = p + "resqued:inflight:"
        # worker id -> when it paused (UTC ISO 8601), while a resqued worker
        # takes no jobs: the master's pause, USR2 or pause-all-workers.
        self.paused_workers = p + "resqued:paused"
        # recurring job name -> the last occurrence (epoch seconds) enqueued
        # (scheduler/recurring.py claims each in the script that pushes it).
        self.schedule_claims = p + "resqued:schedule_claims"

    def queue(self, name: str) -> str:
        return self._queue_prefix + name

    def queue_name(self, key) -> str:
        """The queue name inside a ``<prefix>queue:<name>`` key (as BLPOP returns it)."""
        if isinstance(key, bytes):
            key = key.decode()
        return key[len(self._queue_prefix):]

    def status(self, job_id: str, prefix="") -> str:
        """A tracked job's status. php-resque >= 1.3 may give a job a status
        prefix (``Resque::enqueue($q, $class, $args, true, 'tenant1')``): its
        status is then ``job:tenant1_<id>:status``."""
        return f"{self.prefix}job:{status_prefix(prefix)}{job_id}:status"

    def job_status(self, payload) -> str | None:
        """The status key of a decoded payload, from its ``id`` and its
        ``prefix`` (php-resque >= 1.3 writes one in every payload, often
        ``""``); None for a payload without an id (Ruby's)."""
        job_id = payload.get("id") if isinstance(payload, dict) else None
        if not isinstance(job_id, str) or not job_id:
            return None
        return self.status(job_id, payload.get("prefix"))

    def worker(self, worker_id: str) -> str:
        return f"{self.prefix}worker:{worker_id}"

    def worker_started(self, worker_id: str) -> str:
        return f"{self.prefix}worker:{worker_id}:started"

    def worker_processed(self, worker_id: str) -> str:
        return f"{self.processed}:{worker_id}"

    def worker_failed(self, worker_id: str) -> str:
        return f"{self.failed_count}:{worker_id}"

    # -- resqued's own keys (Resque's tools never read these) ---------------
    def inflight(self, worker_id: str, queue: str) -> str:
        """The job a worker has reserved from ``queue`` and not yet settled."""
        return f"{self._inflight_prefix}{worker_id}:{queue}"

    def inflight_pattern(self) -> str:
        """A SCAN pattern for every worker's in-flight lists (the namespace's
        own glob characters escaped)."""
        return "".join("\\" + c if c in "\\*?[]" else c for c in self._inflight_prefix) + "*"

    def inflight_owner(self, key) -> tuple[str, str]:
        """(worker id, queue) of an in-flight list's key. A queue name may
        hold ':' (Ruby allows it), so the split is where the queue is one of
        the worker id's queues (or the id's queues include ``*``)."""
        if isinstance(key, bytes):
            key = key.decode(errors="replace")
        rest = key[len(self._inflight_prefix):]
        host, _, rest = rest.partition(":")
        pid, _, rest = rest.partition(":")
        start = 0
        while (cut := rest.find(":", start)) >= 0:
            queues, queue = rest[:cut], rest[cut + 1:]
            if queue in queues.split(",") or "*" in queues.split(","):
                return f"{host}:{pid}:{queues}", queue
            start = cut + 1
        queues, _, queue = rest.rpartition(":")
        return f"{host}:{pid}:{queues}", queue
