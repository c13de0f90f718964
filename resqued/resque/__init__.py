"""The Resque protocol and the client library: Redis keys, the bytes on the
wire, enqueue/dequeue/status (client), outcomes and failures, a worker's
presence (registration, heartbeat, prune) and the recovery of a dead worker's
jobs. Imports redis-py; the master never imports this package except keys,
wire and outcome (pure modules).
"""
