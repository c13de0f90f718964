def test_private_redis_server_answers(r):
    assert r.ping()
    assert r.connection_pool.connection_kwargs.get("path")  # a unix socket, no TCP port
