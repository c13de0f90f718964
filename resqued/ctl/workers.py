"""``resquectl workers`` and ``resquectl inflight``: the workers as Redis
sees them (any worker, Ruby's and PHP's too), and the jobs resqued workers
hold in flight. ``resquectl status`` is the master's own view of its workers;
both name a worker's state with the same words
(protocols/reportpipe.WorkerState; Redis's view has idle, busy and paused)."""

from resqued.ctl import tables
from resqued.ctl.output import emit
from resqued.exits import EXIT_OK


def cmd_workers(resque, args) -> int:
    emit(args, resque.workers(), lambda ws: tables.workers_table(ws) if ws else "no workers registered")
    return EXIT_OK


def cmd_inflight(resque, args) -> int:
    emit(args, resque.inflight(), lambda jobs: tables.inflight_table(jobs) if jobs else "no jobs in flight")
    return EXIT_OK


def add_commands(commands, command) -> None:
    """``workers`` and ``inflight`` (see failed.add_commands)."""
    command(commands, "workers", cmd_workers,
            "list registered workers: state (idle, busy, paused), job and since when, counts, heartbeat")
    command(commands, "inflight", cmd_inflight,
            "list the jobs resqued workers have taken and not yet settled, each with its worker "
            "and whether that worker is alive")
