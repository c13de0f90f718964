"""``resquectl failed``: list, show, retry (and retry-and-remove), remove and
clear the entries of Resque's failed list (resqued/resque/failures.py).

An entry is named by its index (a number, as ``failed`` lists them) or by its
job's id. Indexes shift when an entry is removed, so every name is looked up
first and every change then made to the entry as it was read: a command
never acts on a neighbour, and if one name is unknown it changes nothing.
A job retried and failed again has several entries: ``show`` and ``retry``
take its newest, ``remove`` (and ``retry --remove``) all of them.
"""

import argparse
import re
import sys
import time

from resqued.ctl import tables
from resqued.ctl.output import CtlError, emit, heading, print_json
from resqued.exits import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from resqued.process.logs import printable
from resqued.resque.failures import FailureError
from resqued.resque.wire import utc_iso


def parse_ref(text: str):
    """An index (ASCII digits) or a job id; ``id:X`` is always a job id
    (php-resque lets callers choose ids, so an id can be all digits)."""
    if text.startswith("id:"):
        return text[3:]
    if re.fullmatch(r"[0-9]{1,10}", text):
        return int(text)
    if re.fullmatch(r"-[0-9]+", text):
        raise CtlError(f"failure index must be 0 or more, not {text}")
    return text


def lookup(failures, texts) -> list[list]:
    """For each name, the entries it names: the one at an index, or a job's
    (oldest first). Every name is looked up before anything is changed."""
    groups = []
    for text in texts:
        ref = parse_ref(text)
        if isinstance(ref, int):
            if failures.find(str(ref)):
                raise CtlError(f"{ref} is both an index and a job's id: say id:{ref} for the job",
                               EXIT_USAGE)
            found = [failures.get(ref)]
        else:
            found = failures.find(ref)
        if not found:
            raise FailureError(f"no failure of job {ref} (give a job id or an index, as `failed` lists them)")
        groups.append(found)
    return groups


def by_index(entries) -> list:
    """``entries`` once each, in list order."""
    return list({e["index"]: e for e in sorted(entries, key=lambda e: e["index"])}.values())


def _label(entry) -> str:
    payload = entry.get("payload") if isinstance(entry.get("payload"), dict) else {}
    return " ".join(printable(part) for part in (payload.get("class"), payload.get("id")) if part)


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
    failures = resque.failures
    if args.all:
        entries, others = failures.all(0, failures.count()), []
    else:
        # A job is put back once, from its newest entry; with --remove its
        # other entries go too.
        groups = lookup(failures, args.refs)
        entries = by_index(group[-1] for group in groups)
        retried_at = {e["index"] for e in entries}
        others = by_index(e for group in groups for e in group[:-1] if e["index"] not in retried_at)
    retried, errors = [], []
    requeued_jobs = set()
    for entry in entries:
        try:
            retried.append({"index": entry["index"], **failures.requeue(entry, remove=args.remove),
                            "removed": args.remove})
            requeued_jobs.add(str(entry.job_id))
        except FailureError as exc:
            errors.append({"index": entry["index"], "error": str(exc)})
    # A job's earlier entries go only once its newest was put back: never
    # every record of a job that is not on its queue either.
    removed = [_removed(e) for e in others
               if args.remove and str(e.job_id) in requeued_jobs and _remove(failures, e, errors)]
    if args.json:
        print_json({"ok": not errors, "retried": retried, "removed": removed, "errors": errors})
    elif not entries:
        print("no failures to retry")
    else:
        done = "retried and removed" if args.remove else "retried"
        for entry in retried:
            print(f"{done} failure {entry['index']}: {_label(entry)} -> queue {printable(entry['queue'])}")
        for entry in removed:
            print(f"removed failure {entry['index']}: {_label(entry)} (an earlier failure of the job)")
    return _errors(errors)


def cmd_failed_remove(resque, args) -> int:
    failures = resque.failures
    errors = []
    entries = by_index(e for group in lookup(failures, args.refs) for e in group)
    removed = [_removed(e) for e in entries if _remove(failures, e, errors)]
    emit(args, {"ok": not errors, "removed": removed, "errors": errors},
         lambda d: "\n".join(f"removed failure {e['index']}: {_label(e)}" for e in d["removed"]))
    return _errors(errors)


def _remove(failures, entry, errors) -> bool:
    try:
        failures.remove(entry)
        return True
    except FailureError as exc:
        errors.append({"index": entry["index"], "error": str(exc)})
        return False


def _removed(entry) -> dict:
    """What ``--json`` says of a removed entry: where it was, and whose."""
    return {"index": entry["index"], "queue": entry.get("queue"), "payload": entry.get("payload")}


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
