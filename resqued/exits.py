"""Every exit code resqued's processes use as a protocol, in one place.

Exit codes tell whoever waits for a process why it left (gunicorn's idea):
the master and env mode decide from a worker's code whether to recover its
jobs, count a recycle or back off; a shell script decides from resqued's or
resquectl's whether to retry or fix the configuration. The sysexits.h values
keep their C names (EX_*); the others are resqued's own (EXIT_*).

Imports nothing: the master imports it and must never load redis-py.
"""

# -- every process --------------------------------------------------------
EXIT_OK = 0                # done as asked (a worker: stopped, unregistered, nothing in flight)
EXIT_FAILURE = 1           # failed at run time: resqued could not start (pidfile, socket), a
                           # resquectl command failed, a worker or recovery run crashed (a
                           # worker's jobs are then recovered: not a clean exit)
EXIT_USAGE = 2             # a bad command line (argparse's own code)

# -- a worker, to the master or env mode that waits for it -------------------
# The master trusts these (and EXIT_OK) only when the worker announced the
# exit on its report pipe just before (worker/reports.announce_exit): a job
# running inside the worker (fork: false) can end the process with any code,
# and a worker whose last report was "busy" died mid-job whatever its code.
EXIT_BOOT_ERROR = 3        # could not boot (job modules, an old Redis): back off, then give up
EXIT_RECYCLE_JOBS = 4      # recycled after max_jobs: replace it at once, count the recycle
EXIT_RECYCLE_MEMORY = 5    # recycled over max_memory (its own processes, between jobs)

EXIT_REASONS = {
    EXIT_BOOT_ERROR: "could not boot",
    EXIT_RECYCLE_JOBS: "recycled after max_jobs",
    EXIT_RECYCLE_MEMORY: "recycled over max_memory",
}
# Exits after which a worker that announced them with its in-flight lists
# emptied left nothing to recover; after any other, or one it did not
# announce so, its supervisor recovers its jobs.
CLEAN_EXITS = (EXIT_OK, EXIT_BOOT_ERROR, EXIT_RECYCLE_JOBS, EXIT_RECYCLE_MEMORY)

# -- sysexits.h -------------------------------------------------------------
EX_UNAVAILABLE = 69        # the metrics exporter cannot listen on its address (in use): tried again later
EX_TEMPFAIL = 75           # a recovery run found Redis unavailable: the master tries again later
EX_CONFIG = 78             # invalid configuration (pool.yml, env variables, job modules, a
                           # reload resquectl asked for and the master refused)

# -- resquectl --------------------------------------------------------------
EXIT_INTERRUPTED = 130     # Ctrl-C (128 + SIGINT, as a shell reports it)
