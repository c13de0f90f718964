"""``resqued -c pool.yml``: the arbiter loop (arbiter), its pure decisions
(reconcile), the workers it keeps (workerprocess), the spawner that forks them
(spawner), recovery runs for dead workers (recoveryruns), and the control
socket (control) with the answers to resquectl (requests). The master never
imports redis-py: the spawner and the processes it forks do (entrypoints).
"""
