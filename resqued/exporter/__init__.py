"""The metrics exporter: a process the master starts (master/exporterlink.py)
when ``metrics: HOST:PORT`` is set, serving Prometheus's text format at
``/metrics`` (docs/metrics.md): ``collector`` (what a scrape answers),
``redisside`` (queues, failures and registered workers, read from Redis),
``masterside`` (what the master counted, asked over its control socket),
``__main__`` (the process and its HTTP server).

A process of its own, not the master: a scrape reads Redis, which the
master never waits on (it does not even load redis-py), and a slow scrape
or client must never delay the master's loop. It imports prometheus_client,
which neither the master nor the workers load.
"""
