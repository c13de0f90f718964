"""How a worker runs its jobs: a child per job, forked ahead (standbys) by a
job forker beside the worker (jobforker), watched until it reports
(childwatch); the job child itself (jobchild), or inline in the worker.
"""
