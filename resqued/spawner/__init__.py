"""The worker spawner: a child of the master, started as a fresh interpreter
(``python -m resqued.spawner``), that holds redis-py and the worker's code
and forks the master's workers and recovery runs (main); what those run
(entrypoints); and the throwaway check of a config's Redis URL and job
modules (probe), exec'd the same way. The master reaches none of these: it
speaks to the spawner through protocols/spawnersocket.py, which both import.
"""
