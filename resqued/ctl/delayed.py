"""``resquectl delayed``: the delayed jobs waiting in resque-scheduler's keys
(resqued's, Ruby's and PHP's alike): list the timestamps, show one, remove
jobs as ``remove_delayed`` does, and run a timestamp's jobs (or one) now,
in the scheduler's atomic step (resque/delayedmove.py)."""

import argparse
import json
import socket
from datetime import datetime

from resqued.ctl.failed import _paging
from resqued.ctl.output import CtlError, UsageError, emit, heading, print_json
from resqued.exits import EXIT_OK
from resqued.process.logs import printable
from resqued.resque.wire import utc_iso
from resqued.numbers import is_whole_number


def cmd_delayed_list(resque, args) -> int:
    stamps = resque.delayed_timestamps(args.start, args.count)
    total = resque.redis.zcard(resque.delayed.keys.schedule)
    data = {"timestamps": [{"timestamp": ts, "at": utc_iso(ts), "jobs": n} for ts, n in stamps],
            "start": args.start, "total_timestamps": total, "total_jobs": resque.delayed_count()}
    if args.json:
        print_json(data)
        return EXIT_OK
    heading(args)
    if not stamps:
        print("no delayed jobs" if total == 0 else f"no timestamps from index {args.start} (there are {total})")
        return EXIT_OK
    print(f"{'TIMESTAMP':<12} {'AT (UTC)':<21} JOBS")
    for row in data["timestamps"]:
        print(f"{row['timestamp']:<12} {row['at']:<21} {row['jobs']}")
    last = args.start + len(stamps) - 1
    if args.start > 0 or last < total - 1:
        print(f"showing timestamps {args.start}-{last} of {total} (see --start, --count)")
    print(f"{data['total_jobs']} delayed jobs in all")
    return EXIT_OK


def cmd_delayed_show(resque, args) -> int:
    jobs = resque.delayed_at(args.timestamp, args.start, args.count)
    if not jobs and not args.start:
        raise CtlError(f"no delayed jobs at {args.timestamp} ({utc_iso(args.timestamp)})")
    data = [{"index": args.start + i, **job} for i, job in enumerate(jobs)]

    def render(rows):
        lines = [f"delayed jobs at {args.timestamp} ({utc_iso(args.timestamp)}):"]
        for row in rows:
            if "raw" in row:
                lines.append(f"  [{row['index']}] (cannot be decoded) {printable(row['raw'])}")
            else:
                lines.append(f"  [{row['index']}] {printable(row.get('class'))} on {printable(row.get('queue'))} "
                             f"args {printable(json.dumps(row.get('args')))}")
        return "\n".join(lines)
    emit(args, data, render)
    return EXIT_OK


def cmd_delayed_remove(resque, args) -> int:
    job_args = _job_args(args)
    try:
        if args.call:
            removed = resque.remove_delayed_call(args.queue, args.job_class, *job_args, at=args.at)
        else:
            removed = resque.remove_delayed(args.queue, args.job_class, job_args, at=args.at)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not removed:
        raise CtlError(f"no delayed {args.job_class} on {args.queue} with args {_shown(args, job_args)}"
                       + (f" at {args.at}" if args.at is not None else "") + ": nothing removed")
    emit(args, {"ok": True, "removed": removed}, lambda d: f"removed {d['removed']} delayed job(s)")
    return EXIT_OK


def cmd_delayed_run(resque, args) -> int:
    """Move a timestamp's jobs (or the one at --index) to their queues now."""
    # Here, not at the top: it loads redis-py, which resquectl's master commands never need.
    from resqued.resque.delayedmove import Mover, WrongType
    mover = Mover(resque.redis, resque.keys, owner=f"{socket.gethostname()}:resquectl")
    ts = args.timestamp
    try:
        if args.index is None:
            if resque.redis.zscore(resque.delayed.keys.schedule, str(ts)) is None:
                raise CtlError(f"no delayed jobs at {ts} ({utc_iso(ts)})")
            moved = mover.move_timestamp(str(ts))
        else:
            raw = resque.redis.lindex(resque.delayed.keys.delayed(ts), args.index)
            if raw is None:
                raise CtlError(f"no delayed job at index {args.index} of {ts} ({utc_iso(ts)})")
            moved = int(mover.move_one(ts, raw))
            if not moved:
                raise CtlError(f"the job at index {args.index} of {ts} was moved or removed meanwhile")
    except WrongType as exc:
        raise CtlError(f"{exc.key} is not of the type resque-scheduler keeps there: nothing moved") from None
    emit(args, {"ok": True, "moved": moved}, lambda d: f"moved {d['moved']} delayed job(s) to their queues")
    return EXIT_OK


# -- arguments ----------------------------------------------------------------

def _job_args(args):
    if args.json_args is None:
        return [] if args.call else None
    try:
        value = json.loads(args.json_args)
    except ValueError as exc:
        raise UsageError(f"JSON_ARGS is not valid JSON ({exc}): {args.json_args!r}") from None
    if args.call and not isinstance(value, list):
        raise UsageError("--call takes a JSON array of the job's positional arguments, e.g. '[\"a.png\", 10]'")
    if value is not None and not isinstance(value, (dict, list)):
        raise UsageError(f"JSON_ARGS must be a JSON object, array or null: {args.json_args!r}")
    return value


def _shown(args, job_args) -> str:
    return printable(json.dumps(job_args if args.call else [job_args]))


def _timestamp(text: str) -> int:
    """Epoch seconds, or a UTC ISO 8601 time as resquectl prints them."""
    if is_whole_number(text):
        return int(text)
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a timestamp (epoch seconds or ISO 8601): {text!r}") from None


def _index(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"not an index (0 or more): {text!r}")
    return int(text)


def add_commands(commands, command) -> None:
    """``delayed`` and its actions (see failed.add_commands)."""
    delayed = command(commands, "delayed", cmd_delayed_list,
                      "list and manage delayed jobs (resque-scheduler's keys; default: list)")
    _paging(delayed, top=True)
    actions = delayed.add_subparsers(dest="action", metavar="ACTION")
    _paging(command(actions, "list", cmd_delayed_list, "timestamps, earliest first, with their jobs"), top=False)
    show = command(actions, "show", cmd_delayed_show, "the jobs waiting at one timestamp")
    show.add_argument("timestamp", metavar="TIMESTAMP", type=_timestamp, help="epoch seconds or ISO 8601")
    _paging(show, top=True)
    remove = command(actions, "remove", cmd_delayed_remove,
                     "remove the delayed jobs of this queue, class and args (as remove_delayed)")
    remove.add_argument("queue", metavar="QUEUE")
    remove.add_argument("job_class", metavar="CLASS")
    remove.add_argument("json_args", metavar="JSON_ARGS", nargs="?",
                        help="the args given to enqueue_at (JSON; none given: null, or [] with --call)")
    remove.add_argument("--call", action="store_true",
                        help="JSON_ARGS is the array of positional arguments (Ruby's enqueue_at, enqueue_at_call)")
    remove.add_argument("--at", metavar="TIMESTAMP", type=_timestamp, help="only at this timestamp")
    run = command(actions, "run", cmd_delayed_run, "move the jobs of TIMESTAMP (or one) to their queues now")
    run.add_argument("timestamp", metavar="TIMESTAMP", type=_timestamp, help="epoch seconds or ISO 8601")
    run.add_argument("--index", metavar="N", type=_index, help="only the job at this index (as `show` lists)")
