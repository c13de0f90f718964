"""resquectl: look into Resque from the command line — enqueue a job, list
queues, workers, in-flight jobs, failures and delayed jobs, retry or remove
failures, follow a job's status.

These commands talk to Redis only, so they work against php-resque and Ruby
workers too. The commands that drive a running master (pause, resume, reload,
restart, stop, status) reach it through its control socket instead
(mastercommands.py). Each topic has its module (failed, queues, workers);
how every command answers and fails is output.py's.
"""

import argparse
import json
import math
import os
import sys
import time

from resqued.config.loader import load_config
from resqued.config.model import ConfigError
from resqued.ctl import delayed, failed, fleet, mastercommands, queues, schedule, tables, top, workers
from resqued.ctl.output import CtlError, UsageError, emit, fail, print_json, scrub
from resqued.exits import EX_CONFIG, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from resqued.fleet.paused import paused_queues as fleet_paused_queues
from resqued.config.redisurl import DEFAULT_URL, BadRedisURL, normalize_url, redact
from resqued.redisio.connection import connect
from resqued.resque.failures import FailureError
from resqued.resque.wire import utc_iso
from resqued.version import __version__

WATCH_INTERVAL = 0.2
# A watched job's final states, and the exit code each one ends the watch with.
FINAL_STATUSES = {"complete": EXIT_OK, "failed": EXIT_FAILURE}
CONNECT_TIMEOUT = 5.0


# -- where Redis is -----------------------------------------------------------

def connection_settings(args, environ) -> tuple[str, str, str]:
    """The Redis URL, the key namespace, and where the URL came from (for
    the line human output starts with): a flag beats the environment, which
    beats ``-c pool.yml``'s ``redis`` and ``namespace`` (SPEC: REDIS_URL
    overrides the file), which beat php-resque's variables and the defaults."""
    # The file's own redis:, so that an override can say what it overrode.
    config = _config(args, {name: value for name, value in environ.items() if name != "REDIS_URL"})
    if args.redis:
        url, origin = normalize_url(args.redis), "--redis"
    elif environ.get("REDIS_URL"):
        url, origin = normalize_url(environ["REDIS_URL"]), "REDIS_URL"
    elif config is not None:
        url, origin = config.redis_url, f"redis: of {config.path}"
    else:
        # php-resque's pair; its REDIS_BACKEND_DB also applies to the default server.
        url = normalize_url(environ.get("REDIS_BACKEND") or DEFAULT_URL, environ.get("REDIS_BACKEND_DB"))
        origin = "REDIS_BACKEND" if environ.get("REDIS_BACKEND") else \
            "the default: no --redis, REDIS_URL, REDIS_BACKEND or -c pool.yml"
    if config is not None and url != config.redis_url:
        origin += f", overriding redis: {redact(config.redis_url)} of {config.path}"
    namespace = args.namespace or (config.namespace if config else None) or environ.get("PREFIX") or "resque"
    return url, namespace, origin


def _config(args, environ):
    if not getattr(args, "config", None):
        return None
    try:
        return load_config(args.config, getattr(args, "environment", None), environ)
    except ConfigError as exc:
        raise CtlError(str(exc), EX_CONFIG) from None


# -- commands -----------------------------------------------------------------

def parse_job_args(text):
    """JSON_ARGS as php-resque's ``enqueue`` takes them: an object, an array or null."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"JSON_ARGS is not valid JSON ({exc}): {text!r}") from None
    if value is not None and not isinstance(value, (dict, list)):
        kind = {str: "a string", bool: "a boolean"}.get(type(value), "a number")
        raise UsageError(f"JSON_ARGS must be a JSON object, array or null, not {kind}: {text!r}")
    return value


def cmd_enqueue(resque, args) -> int:
    # No JSON_ARGS means no arguments: perform() with none (a php-style job's
    # self.args is then {}), not one None, which a zero-argument job refuses.
    job_args = [] if args.json_args is None else parse_job_args(args.json_args)
    if args.call and not isinstance(job_args, list):
        raise UsageError("--call takes a JSON array of the job's positional arguments, e.g. '[\"a.png\", 10]'")
    try:
        if args.call or args.json_args is None:   # Ruby's Resque.enqueue(Klass, *args): perform(*args)
            job_id = resque.enqueue_call(args.queue, args.job_class, *job_args, track_status=args.track)
        else:           # php-resque's Resque::enqueue: one argument, self.args
            job_id = resque.enqueue(args.queue, args.job_class, job_args, track_status=args.track)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if job_id is None:
        raise CtlError("a beforeEnqueue listener cancelled the job")
    data = {"id": job_id, "queue": args.queue, "class": args.job_class, "args": job_args,
            "tracked": args.track}
    emit(args, data, lambda d: d["id"])
    return EXIT_OK


def cmd_stats(resque, args) -> int:
    emit(args, resque.stats(), tables.stats_text)
    return EXIT_OK


def cmd_job(resque, args) -> int:
    last = None
    while True:
        status = resque.status(args.job_id, args.prefix)
        if status is None:
            with_prefix = f" with status prefix {args.prefix!r}" if args.prefix else ""
            raise CtlError(f"job {args.job_id}{with_prefix} is not tracked (or its status expired) "
                           f"in {args.redis_read}")
        status = {"id": args.job_id, **status}
        if args.json:   # php-resque's epoch seconds, in resquectl's one time format
            status.update({key: utc_iso(status[key]) for key in ("updated", "started")
                           if isinstance(status.get(key), (int, float)) and not isinstance(status[key], bool)})
        if not args.watch:
            emit(args, status, lambda s: tables.job_status_line(args.job_id, s))
            return EXIT_OK
        if status != last:
            # A stream of changes: with --json, one compact document per line.
            if args.json:
                print_json(status, compact=True)
            else:
                print(tables.job_status_line(args.job_id, status))
            sys.stdout.flush()
            last = status
        if status["status"] in FINAL_STATUSES:
            return FINAL_STATUSES[status["status"]]
        time.sleep(WATCH_INTERVAL)


# -- parser -------------------------------------------------------------------

def _add_common(parser, top: bool) -> None:
    """Options every command takes, before or after its name. Below the top
    level they default to SUPPRESS, so they only override what was given.
    (``-c pool.yml`` and ``--pidfile`` join these with master control.)"""
    unset = None if top else argparse.SUPPRESS
    parser.add_argument("--redis", metavar="URL", default=unset,
                        help="Redis URL or host:port (default: $REDIS_URL, else $REDIS_BACKEND "
                             f"with $REDIS_BACKEND_DB, else {DEFAULT_URL})")
    parser.add_argument("--namespace", metavar="NS", default=unset,
                        help="key namespace, php-resque's PREFIX (default: $PREFIX, else resque)")
    parser.add_argument("--json", action="store_true", default=False if top else argparse.SUPPRESS,
                        help="print one machine-readable JSON document")
    parser.add_argument("-c", "--config", metavar="POOL_YML", default=unset,
                        help="the master's pool.yml: its Redis, namespace and control socket")
    parser.add_argument("-E", "--environment", metavar="ENV", default=unset,
                        help="environment section of a resque-pool style file")
    parser.add_argument("--pidfile", metavar="PATH", default=unset,
                        help="the master's pidfile (its control socket is beside it)")
    parser.add_argument("--socket", metavar="PATH", default=unset, help="the master's control socket")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be above 0 seconds: {text!r}")
    return value


class Parser(argparse.ArgumentParser):
    """argparse's, but a usage error is raised (main reports it, as JSON too
    with --json) after the usage and the error are printed as argparse does."""

    def error(self, message):
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise ParseError(f"{self.prog}: error: {message}")


class ParseError(UsageError):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="resquectl", description="Inspect and manage Resque queues, "
                    "workers, failures and jobs.")
    parser.add_argument("--version", action="version", version=f"resquectl {__version__}")
    _add_common(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(group, name, handler, help_text):
        sub = group.add_parser(name, help=help_text, description=help_text)
        _add_common(sub, top=False)
        sub.set_defaults(handler=handler)
        return sub

    enqueue = command(commands, "enqueue", cmd_enqueue, "enqueue one job and print its id")
    enqueue.add_argument("queue", metavar="QUEUE")
    enqueue.add_argument("job_class", metavar="CLASS")
    enqueue.add_argument("json_args", metavar="JSON_ARGS", nargs="?",
                         help="the job's args: a JSON object, array or null (none given: "
                              "the job gets no arguments)")
    enqueue.add_argument("--track", action="store_true", help="track the job's status")
    enqueue.add_argument("--call", action="store_true",
                         help="JSON_ARGS is an array of positional arguments, as Ruby's Resque.enqueue "
                              "(perform(*args)); without it, JSON_ARGS is the job's one argument, "
                              "as php-resque's (self.args)")

    queues.add_commands(commands, command)
    workers.add_commands(commands, command)
    command(commands, "stats", cmd_stats, "processed, failed, pending, workers, failures (each explained)")

    job = command(commands, "job", cmd_job, "show a tracked job's status")
    job.add_argument("job_id", metavar="ID")
    job.add_argument("--watch", action="store_true",
                     help="follow the status until the job completes (exit 0) or fails (exit 1)")
    job.add_argument("--prefix", default="", metavar="PREFIX",
                     help="the job's status prefix, as given to php-resque 1.3's Resque::enqueue "
                          "(its status is job:PREFIX_ID:status)")

    failed.add_commands(commands, command)
    delayed.add_commands(commands, command)
    schedule.add_commands(commands, command)
    top.add_commands(commands, command)
    fleet.add_commands(commands, command)

    for name, help_text in (("status", "the running master: pools and each worker, its job and memory"),
                            ("pause", "pause every worker: returns once none takes a new job (running "
                                      "jobs finish; --wait waits for them too)"),
                            ("resume", "resume every worker"),
                            ("reload", "re-read pool.yml; returns once applied, or fails with the error"),
                            ("restart", "replace every worker (or those of POOL...) with one running the code "
                                        "on disk, one at a time; refused if the code does not import"),
                            ("stop", "stop the master gracefully (running jobs finish); waits until it is gone")):
        sub = command(commands, name, None, help_text)
        sub.set_defaults(master_command=name)
        if name == "stop":
            sub.add_argument("--now", action="store_true",
                             help="kill running jobs instead of waiting (they go back to their queues)")
        if name == "restart":
            sub.add_argument("pools", metavar="POOL", nargs="*", help="a pool, by its queues (high,default)")
        if name in ("pause", "resume"):
            sub.add_argument("--queue", metavar="QUEUE", help=f"{name} this queue only, on every host (with --fleet)")
            sub.add_argument("--fleet", action="store_true",
                             help=f"{name} --queue QUEUE for every resqued worker on every host (through Redis)")
        if name == "pause":
            sub.add_argument("--wait", metavar="SECONDS", nargs="?", type=_seconds, const=mastercommands.PAUSE_WAIT,
                             help="also wait until running jobs have finished, at most SECONDS "
                                  f"(default {mastercommands.PAUSE_WAIT:g}); exit 1 if some still run then")
    return parser


# -- entry point --------------------------------------------------------------

# The commands that report what Redis holds: their human output starts with
# the Redis they read (output.heading).
READS = (queues.cmd_queues, workers.cmd_workers, workers.cmd_inflight, cmd_stats, failed.cmd_failed_list,
         failed.cmd_failed_show, top.cmd_top, delayed.cmd_delayed_list, delayed.cmd_delayed_show,
         schedule.cmd_schedule, fleet.cmd_fleet)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
    except ParseError as exc:  # printed as argparse does; with --json, as JSON too
        if "--json" in argv:
            print_json({"ok": False, "error": str(exc), "exit": exc.code})
        return exc.code
    except SystemExit as exc:  # argparse has printed the help or the version
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE

    def report(message, code):
        return fail(message, code, as_json=args.json, compact=getattr(args, "watch", False))

    try:
        fleet.check_pause_arguments(args)
    except UsageError as exc:
        return report(str(exc), exc.code)
    if getattr(args, "master_command", None) in ("pause", "resume") and args.fleet:
        args.handler = fleet.cmd_pause_queue     # through Redis, not this master
    elif getattr(args, "master_command", None):
        if args.master_command == "status" and (getattr(args, "config", None) or getattr(args, "redis", None)):
            args.fleet_paused = _paused_queues(args)
        try:
            return mastercommands.run(args)
        except CtlError as exc:
            return report(str(exc), exc.code)
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            return _reader_gone()
    # Here, not at the top: redis-py (and the asyncio it loads) is a third of
    # resquectl's start-up, and the master's commands above never use it.
    import redis
    from resqued.resque.client import Resque
    try:
        url, namespace, origin = connection_settings(args, os.environ)
        client = connect(url, socket_connect_timeout=CONNECT_TIMEOUT)
    except BadRedisURL as exc:
        return report(str(exc), EXIT_USAGE)
    except CtlError as exc:
        return report(str(exc), exc.code)
    # Which Redis was read, said before what was found there: an empty answer
    # from the wrong server must not pass for an empty system.
    resque = Resque(url, namespace, redis=client)
    args.redis_read = f"{redact(url)} namespace {resque.keys.namespace}"
    args.heading = f"Redis {args.redis_read} ({origin})" if args.handler in READS else None
    try:
        return args.handler(resque, args)
    except CtlError as exc:
        return report(str(exc), exc.code)
    except FailureError as exc:
        return report(str(exc), EXIT_FAILURE)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        return report(f"cannot reach Redis at {redact(url)}: {scrub(str(exc), url)}", EXIT_FAILURE)
    except redis.RedisError as exc:
        return report(f"Redis error at {redact(url)}: {scrub(str(exc), url)}", EXIT_FAILURE)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return _reader_gone()
    finally:
        client.close()


def _paused_queues(args):
    """The queues paused fleet-wide, for ``status`` (which asks the master,
    not Redis: None when Redis does not answer within a second)."""
    import redis   # as in main: only the commands that reach Redis load redis-py
    try:
        url, namespace, _ = connection_settings(args, os.environ)
        client = connect(url, socket_connect_timeout=1.0, socket_timeout=1.0)
    except (BadRedisURL, CtlError):
        return None
    try:
        return fleet_paused_queues(client, namespace)
    except redis.RedisError:
        return None
    finally:
        client.close()


def _reader_gone() -> int:
    """The reader went away (`resquectl status | head -3`): silence the final
    flush, which would print a BrokenPipeError traceback."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_FAILURE
