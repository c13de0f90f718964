"""``resquectl failed``: list, show, retry (and retry-and-remove), remove and
clear the entries of Resque's failed list (resqued/resque/failures.py).

An entry is named by its index (a number, as ``failed`` lists them) or by its
job's id; how names are looked up and acted on is resqued/resque/failedjobs.py,
which the web dashboard shares: this module parses and prints.
"""

import argparse
import re
import sys
import time

from resqued.ctl import tables
from resqued.ctl.output import CtlError, emit, heading, print_json
from resqued.exits import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from resqued.process.logs import printable
from resqued.resque import failedjobs
from resqued.resque.failedjobs import AmbiguousRef
from resqued.resque.wire import utc_iso


def lookup(failures, texts) -> list[list]:
    """failedjobs.lookup; a number that is also a job id is a usage error."""
    try:
        return failedjobs.lookup(failures, texts)
    except AmbiguousRef as exc:
        raise CtlError(str(exc), EXIT_USAGE) from None


def cmd_failed_list(resque, args) -> int:
    failures = resque.failures
    entries = failures.all(args.start, args.count)
    if args.json:
        print_json(entries)
        return EXIT_OK
    total = failures.count()
    heading(args)
    if not entries:
        print("no failures" if total == 0 else f"no failures from index {args.start} (there are {total})")
        return EXIT_OK
    print(tables.failures_table(entries))
    last = entries[-1]["index"]
    if args.start > 0 or last < total - 1:
        print(f"showing {args.start}-{last} of {total} failures (see --start, --count)")
    return EXIT_OK


def cmd_failed_show(resque, args) -> int:
    [found] = lookup(resque.failures, [args.ref])

    def render(entry):
        text = tables.failure_details(entry)
        if len(found) > 1:
            text += "\nearlier failures of this job: index " + ", ".join(str(e["index"]) for e in found[:-1])
        return text
    emit(args, found[-1], render)
    return EXIT_OK


def cmd_failed_retry(resque, args) -> int:
    try:
        done = failedjobs.retry(resque.failures, None if args.all else args.refs, remove=args.remove)
    except AmbiguousRef as exc:
        raise CtlError(str(exc), EXIT_USAGE) from None
    retried, removed, errors = done["retried"], done["removed"], done["errors"]
    if args.json:
        print_json({"ok": not errors, "retried": retried, "removed": removed, "errors": errors})
    elif not done["entries"]:
        print("no failures to retry")
    else:
        verb = "retried and removed" if args.remove else "retried"
        for entry in retried:
            print(f"{verb} failure {entry['index']}: {failedjobs.label(entry)} -> queue {printable(entry['queue'])}")
        for entry in removed:
            print(f"removed failure {entry['index']}: {failedjobs.label(entry)} (an earlier failure of the job)")
    return _errors(errors)


def cmd_failed_remove(resque, args) -> int:
    try:
        done = failedjobs.remove(resque.failures, args.refs)
    except AmbiguousRef as exc:
        raise CtlError(str(exc), EXIT_USAGE) from None
    errors = done["errors"]
    emit(args, {"ok": not errors, "removed": done["removed"], "errors": errors},
         lambda d: "\n".join(f"removed failure {e['index']}: {failedjobs.label(e)}" for e in d["removed"]))
    return _errors(errors)


def _errors(errors) -> int:
    for error in errors:
        print(f"resquectl: {error['error']}", file=sys.stderr)
    return EXIT_FAILURE if errors else EXIT_OK


def cmd_failed_clear(resque, args) -> int:
    if args.older_than is None:
        emit(args, {"cleared": resque.failures.clear()}, lambda d: f"cleared {d['cleared']} failures")
        return EXIT_OK
    text, seconds = args.older_than
    cutoff = time.time() - seconds
    result = {**resque.failures.clear_older_than(cutoff), "before": utc_iso(cutoff)}

    def render(d):
        line = (f"cleared {d['cleared']} failures older than {text} (failed before {d['before']}); "
                f"kept {d['kept_newer']} newer")
        if d["kept_undated"]:
            line += (f"; kept {d['kept_undated']} whose failed_at cannot be read "
                     "(`failed remove` or `failed clear` takes them)")
        return line
    emit(args, result, render)
    return EXIT_OK


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _duration(text: str):
    """``--older-than``: a number and a unit (30d, 12h, 45m, 90s, 2w), as
    (the text, seconds); a bare number is refused, its unit a guess."""
    match = re.fullmatch(r"([0-9]{1,9}(?:\.[0-9]{1,6})?)([smhdw])", text.strip(), re.ASCII)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (a number and a unit: "
                                         "30d, 12h, 45m, 90s or 2w)")
    return text.strip(), float(match[1]) * _UNITS[match[2]]


# -- parser -------------------------------------------------------------------

def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return value


def _paging(parser, top: bool) -> None:
    parser.add_argument("--start", type=_count, metavar="N", default=0 if top else argparse.SUPPRESS,
                        help="first index to list (default 0)")
    parser.add_argument("--count", type=_count, metavar="N", default=100 if top else argparse.SUPPRESS,
                        help="how many to list (default 100)")


REF_HELP = "an index, as `failed` lists them, or a job id"


def add_commands(commands, command) -> None:
    """``failed`` and its actions; ``command(group, name, handler, help)``
    adds one command with the options every command takes."""
    failed = command(commands, "failed", cmd_failed_list, "list and manage failed jobs (default: list)")
    _paging(failed, top=True)
    actions = failed.add_subparsers(dest="action", metavar="ACTION")
    _paging(command(actions, "list", cmd_failed_list, "list failures, oldest first"), top=False)
    command(actions, "show", cmd_failed_show, "show one failure in full (a job's newest)").add_argument(
        "ref", metavar="ID|INDEX", help=REF_HELP)
    retry = command(actions, "retry", cmd_failed_retry,
                    "put failed jobs back on their queues; the entries stay, marked retried_at")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("refs", metavar="ID|INDEX", nargs="*", default=[], help=REF_HELP)
    which.add_argument("--all", action="store_true", help="retry every failure")
    retry.add_argument("--remove", action="store_true",
                       help="retry and remove: take the entries out of the failed list (resque-web's "
                            "\"retry and remove\"); a job's other entries go too")
    command(actions, "remove", cmd_failed_remove, "delete failures (every entry of a job id)").add_argument(
        "refs", metavar="ID|INDEX", nargs="+", help=REF_HELP)
    command(actions, "clear", cmd_failed_clear, "delete every failure, or those older than a duration").add_argument(
        "--older-than", type=_duration, metavar="DURATION",
        help="only the failures older than this (30d, 12h, 45m, 90s, 2w); "
             "an entry whose failed_at cannot be read is kept")
