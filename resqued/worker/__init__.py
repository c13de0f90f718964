"""One worker process: its loop (worker), taking jobs crash-safely
(reserve), when to be replaced (recycle), riding out Redis outages
(outage), and how a job is executed (execution/). What it runs with is its
spec, config/workerspec.py.
"""
