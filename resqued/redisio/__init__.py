"""redis-py plumbing: building a client from a URL (connection), commands on a
held connection in one round trip (direct), and replies read later (deferred).
"""
