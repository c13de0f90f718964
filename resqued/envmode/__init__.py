"""php-resque's environment-variable mode (``resqued`` without ``-c``): the
variables (variables) and, for COUNT > 1, the pool of workers that the
master's arbiter keeps (pool).
"""
