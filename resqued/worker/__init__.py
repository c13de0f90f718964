"""One worker process: its loop (worker), what it runs with (settings), taking
jobs crash-safely (reserve), when to be replaced (recycle), riding out Redis
outages (outage), and how a job is executed (execution/).
"""
