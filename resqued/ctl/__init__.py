"""``resquectl``: the command line (cli), the commands that talk to a running
master (mastercommands), and human tables (tables).
"""
