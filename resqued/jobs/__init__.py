"""What a payload may run: the allow-list of job classes (allowlist), one
reserved job and how it is performed (job), and lifecycle events (events).
"""
