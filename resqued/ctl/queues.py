"""``resquectl queues``: list queues and their sizes, and clear a queue's
pending jobs."""

from resqued.ctl import tables
from resqued.ctl.output import CtlError, UsageError, emit
from resqued.exits import EXIT_OK
from resqued.resque.keys import check_queue_name


def cmd_queues(resque, args) -> int:
    emit(args, resque.stats()["queues"], lambda sizes: tables.queues_table(sizes) if sizes else "no queues")
    return EXIT_OK


def cmd_queues_clear(resque, args) -> int:
    """Delete the pending jobs of each queue named, once ``--yes`` says so.
    The queues stay known (a ``*`` worker still watches them); jobs a worker
    has taken are not pending, and finish."""
    queues = list(dict.fromkeys(args.queues))
    for queue in queues:
        try:
            check_queue_name(queue)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    known = set(resque.queues())
    sizes = {queue: resque.size(queue) for queue in queues}
    unknown = [q for q in queues if q not in known and not sizes[q]]
    if unknown:
        raise CtlError(f"no queue named {', '.join(unknown)} (queues: {', '.join(sorted(known)) or 'none'}); "
                       "nothing cleared")
    if not args.yes:
        raise UsageError(f"this deletes {_jobs(sum(sizes.values()))} ("
                         + ", ".join(f"{q}: {n}" for q, n in sizes.items()) + "); add --yes to do it")
    cleared = {queue: resque.dequeue(queue) for queue in queues}
    emit(args, {"ok": True, "cleared": cleared},
         lambda d: "\n".join(f"cleared {_jobs(n)} from queue {q}" for q, n in d["cleared"].items()))
    return EXIT_OK


def _jobs(n: int) -> str:
    return f"{n} job" if n == 1 else f"{n} jobs"


def add_commands(commands, command) -> None:
    """``queues`` and its actions (see failed.add_commands)."""
    queues = command(commands, "queues", cmd_queues, "list queues and their sizes (default: list)")
    actions = queues.add_subparsers(dest="action", metavar="ACTION")
    command(actions, "list", cmd_queues, "list queues and their sizes")
    clear = command(actions, "clear", cmd_queues_clear,
                    "delete the pending jobs of QUEUE (running jobs finish; the queue stays listed); "
                    "refused without --yes, which says how many it would delete")
    clear.add_argument("queues", metavar="QUEUE", nargs="+")
    clear.add_argument("--yes", action="store_true", help="really delete them")
