"""``resqued web``: a dashboard of what Redis holds (queues, workers, failures,
jobs, stats) and of this host's master, server-rendered. It reads Redis as
resquectl does and acts through the same modules (resqued/resque/); it loads
no master or worker code."""
