"""The fleet: every resqued master on every host that shares one Redis.

Each master's advertiser (advertiser.py, a process the master keeps:
master/advertiserlink.py) writes a record of that master every few seconds,
with a TTL a few times that: a master gone (even SIGKILLed with its whole
tree) drops out within the TTL. ``resquectl fleet`` and the dashboard read
them (view.py). Queues paused fleet-wide (paused.py) are a set every
resqued worker reads with its takes. Keys: docs/wire-format.md.
"""
