"""Supervision decisions shared by every supervisor (the master, and env mode,
which runs on the master's arbiter), as pure code with the clock passed in:
one backoff rule (backoff), a pool's supervision record and states, and the verdict on a worker's
exit (states). Acting on them (forking, signalling, settling lost jobs in
Redis) is the master's.
"""
