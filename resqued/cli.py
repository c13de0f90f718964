"""``resqued``: run workers.

``resqued -c pool.yml`` runs the master on a pool definition. Without ``-c``
this is php-resque's environment mode (QUEUE, COUNT, INTERVAL, PREFIX,
REDIS_BACKEND, …, or the same as flags). ``resqued web`` serves the
dashboard (resqued/web/)."""

import argparse
import dataclasses
import logging
import os
import sys

# Only what every path needs: the master (run_master) must not load redis-py,
# so the worker's modules are imported where env mode runs them.
from resqued.config import advice, limits
from resqued.config.model import ConfigError
from resqued.envmode import variables
from resqued.exits import EX_CONFIG, EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from resqued.process import logs
from resqued.config.redisurl import redact
from resqued.process.pidfile import Pidfile, PidfileError
from resqued.jobs.allowlist import JobRegistry, RegistryError
from resqued.version import __version__

log = logging.getLogger("resqued")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="resqued", description="Resque-compatible workers for Python. "
                                "`resqued web --help`: the web dashboard.")
    p.add_argument("--version", action="version", version=f"resqued {__version__}")
    p.add_argument("-c", "--config", metavar="POOL_YML", help="run the master on this pool definition")
    p.add_argument("--check", action="store_true", help="with -c: validate, print the resolved pools, exit")
    p.add_argument("-E", "--environment", help="with -c: the environment section of a resque-pool file")
    p.add_argument("--term", choices=("graceful", "immediate"), default="graceful",
                   help="what TERM/INT do: finish jobs within shutdown_timeout (default), or kill them")
    p.add_argument("--daemonize", action="store_true", help="with -c: detach (python-daemon)")
    p.add_argument("--log-file", help="with --daemonize: where logs go (default: beside the pidfile)")
    variables.add_flags(p)
    p.add_argument("--blocking", action="store_true",
                   help="accepted for php-resque compatibility; the reserve always blocks (env BLOCKING)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="-v info, -vv debug (env VERBOSE, VVERBOSE)")
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["web"]:
        # Here, not at the top: the dashboard's modules (Jinja2, redis-py)
        # are nothing the master or a worker needs.
        from resqued.web.server import main as web_main
        return web_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.config:
        return run_master(args)
    if args.check or args.daemonize or args.environment:
        print("resqued: --check, --environment and --daemonize need -c pool.yml", file=sys.stderr)
        return EXIT_USAGE
    try:
        config = variables.load(args, os.environ)
    except ConfigError as exc:
        print(f"resqued: {exc}", file=sys.stderr)
        return EX_CONFIG
    logs.setup(config.log_level)
    if not config.jobs:
        # Every job would fail as unknown: refuse, as pool.yml without jobs: is refused.
        print("resqued: APP_INCLUDE: no job modules: set APP_INCLUDE (or --app) to the module or .py "
              "file that defines your jobs", file=sys.stderr)
        return EX_CONFIG
    if variables.supervised(config):
        return run_env_pool(config)
    try:
        registry = JobRegistry.build(config.jobs)
    except RegistryError as exc:
        print(f"resqued: {exc}", file=sys.stderr)
        return EX_CONFIG
    if not registry.names():
        log.warning("%s define no jobs: every job will fail as unknown", ", ".join(config.jobs))
    log.info("resqued %s: queues %s on %s, namespace %s", __version__, config.pools[0].name,
             redact(config.redis_url), config.namespace)

    # No PIDFILE here: with one, the master's arbiter runs the worker (variables.supervised).
    return run_worker(config, registry)


def run_env_pool(config) -> int:
    """COUNT > 1, recycling or PIDFILE: the master's arbiter over one pool. Like the
    master of ``-c``, this process loads neither redis-py nor the
    application: a throwaway child checks the job modules."""
    # Not at the top: env mode's single worker (COUNT=1) runs in this process,
    # and need not carry the master's modules (~1.6 MB of RSS).
    from resqued.envmode.master import run
    from resqued.master.control import ControlError
    from resqued.master.codeprobe import probe

    error = probe(config)
    if error:
        print(f"resqued: {error}", file=sys.stderr)
        return EX_CONFIG
    log.info("resqued %s: %s for queues %s on %s, namespace %s", __version__,
             logs.counted(config.pools[0].count, "worker"), config.pools[0].name, redact(config.redis_url),
             config.namespace)
    try:
        return run(config)
    except (PidfileError, ControlError, OSError) as exc:
        print(f"resqued: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def run_worker(config, registry) -> int:
    """COUNT=1 (no PIDFILE, no recycling): one worker in this process, as php-resque runs it."""
    # Not at the top: they load redis-py, which the master (run_master,
    # run_env_pool) must not.
    from resqued.resque.client import Resque
    from resqued.config.workerspec import for_pool
    from resqued.worker.worker import Worker

    resque = Resque(config.redis_url, config.namespace)
    worker = Worker(resque, registry, for_pool(config, config.pools[0]))
    return worker.work()


def run_master(args) -> int:
    # Not at the top: env mode's single worker (COUNT=1) runs in this process,
    # and need not carry the master's modules (~1.6 MB of RSS).
    from resqued.master.codeprobe import probe, runtime_warnings
    from resqued.config.describe import describe
    from resqued.config.paths import check_paths
    from resqued.config.loader import load_config
    from resqued.master.control import ControlError, ControlServer
    from resqued.process.daemon import default_log_file, detach
    from resqued.master.arbiter import Arbiter

    # resque-pool files have no `jobs` key: --app / APP_INCLUDE supply (or add to) the allow-list.
    apps = tuple(args.jobs or [a for a in os.environ.get("APP_INCLUDE", "").split(",") if a.strip()])

    def read_config():
        config = load_config(args.config, args.environment)
        if apps:
            config = dataclasses.replace(config, jobs=config.jobs + tuple(a for a in apps if a not in config.jobs))
        if not config.jobs and any(pool.command is None for pool in config.pools):   # command pools run none
            raise ConfigError(f"{config.path}: jobs: no job modules: add `jobs:` to the file, or pass --app")
        check_paths(config)   # at a reload too: a pid_dir swapped for a symlink is refused
        limits.check_worker_count(sum(p.count for p in config.pools), config.max_workers, "pools",
                                  "max_workers", file=config.path)
        return config

    def loader():
        # A reload's code is checked by the arbiter (master/reloadprobe.py), not here.
        config = read_config()
        error = probe(config)
        if error:
            raise ConfigError(f"{config.path}: {error}")
        return config

    try:
        config = loader()
    except ConfigError as exc:
        print(f"resqued: {exc}", file=sys.stderr)
        return EX_CONFIG
    if args.check:
        for warning in limits.warnings(sum(p.count for p in config.pools), config.max_workers) \
                + advice.warnings(config) + runtime_warnings(config):
            # "info: ": what the check found, not a problem (a sentinel URL's primary).
            info = warning.removeprefix("info: ")
            print(f"resqued: {info}" if info != warning else f"resqued: warning: {warning}", file=sys.stderr)
        print(describe(config))
        return EXIT_OK
    try:
        if args.daemonize:
            # All that the master's start would refuse, asked before detaching:
            # the command typed reports it, not a log nobody reads.
            Pidfile(config.pidfile).check()
            if config.control_socket:
                ControlServer(config.control_socket).check()
            log_file = os.path.abspath(args.log_file or default_log_file(config))
            daemon_pid = detach(log_file)
            if daemon_pid is not None:   # the command typed: say where the daemon went
                print(f"resqued: daemon pid {daemon_pid}, log {log_file}")
                return EXIT_OK
        logs.setup(config.log_level, config.log_format)
        for warning in advice.warnings(config):
            log.warning("%s", warning)
        return Arbiter(config, read_config, term_mode=args.term, probe_reloads=True).run()
    except (PidfileError, ControlError, OSError) as exc:
        print(f"resqued: {exc}", file=sys.stderr)
        return EXIT_FAILURE
