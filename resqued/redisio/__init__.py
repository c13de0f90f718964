"""redis-py plumbing: building a client from a URL (connection), commands on a
held connection in one round trip (direct), and replies read later (deferred).
The master imports connection only, for its URL helpers: redis-py loads when
a client is built.
"""
