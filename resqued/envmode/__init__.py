"""php-resque's environment-variable mode (``resqued`` without ``-c``): the
variables (variables) and, for COUNT > 1 (or PIDFILE), its master: the
master's arbiter over one pool built from them (master).
"""
