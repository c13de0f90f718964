"""``resqued -c pool.yml``: the arbiter loop (arbiter), its pure decisions
(reconcile), the workers it keeps (workerprocess), its handle on the spawner
that forks them (spawnerlink), recovery runs for dead workers (recoveryruns),
the check of new code (codeprobe), and the control socket (control) with the
answers to resquectl (requests). Only what runs in the master process: none
of it reaches redis-py, resqued.worker or resqued.redisio
(tests/test_architecture.py); the spawner and the probe, started as fresh
interpreters, are resqued/spawner/.
"""
