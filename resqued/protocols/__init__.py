"""One module per protocol between resqued's processes, imported by both
ends (as gunicorn's ctl/protocol.py and Supervisor's states.py): the
messages as types, their encoding on the wire, and the refusal of a line
that is none of them. Pure: no redis-py, nothing of worker/ or master/, no
I/O and no logging (the receiving end logs a refusal, in its own words).

- ``reportpipe``: a worker's reports to its master, and WorkerState
- ``controlsocket``: resquectl's requests to a master and its answers
- ``forkersocket``: a forking worker and its job forker
- ``spawnersocket``: the master and its worker spawner
"""
