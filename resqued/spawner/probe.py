"""``python -m resqued.spawner.probe``: a throwaway interpreter that loads
what a worker loads (redis-py, the job modules) to check a config before the
master uses it, and writes its answer to a pipe. The master's side, and what
each check means, is master/codeprobe.py.

  --check probe      the Redis URL's options (redis-py's parser) and the job
                     modules and aliases: the error as "<key>: <problem>",
                     exit 1; nothing, exit 0
  --check warnings   what ``--check`` warns of, one line each
The config comes as JSON on --config-fd, the answer goes to --answer-fd.

A reload's probe runs the same check in a child the spawner forks
(``forked``): it already holds redis-py and resqued, and a worker forked
after the reload imports the job modules just as that child does.
"""

import argparse
import json
import os
import signal
import sys

from resqued.config.redisurl import redact
from resqued.config.sentinelurl import is_sentinel
from resqued.jobs.allowlist import JobRegistry, RegistryError
from resqued.process import logs
from resqued.process.signals import exit_on_parent_death
from resqued.process.title import set_raw_title
from resqued.protocols.spawnersocket import ProbeVerdict


def main(argv) -> int:
    p = argparse.ArgumentParser(prog="python -m resqued.spawner.probe")
    p.add_argument("--check", choices=("probe", "warnings"), required=True)
    p.add_argument("--config-fd", type=int, required=True)
    p.add_argument("--answer-fd", type=int, required=True)
    p.add_argument("--timeout", type=float, default=2.0)
    logs.add_exec_arguments(p)
    args = p.parse_args(argv)
    exit_on_parent_death(signal.SIGKILL)   # the master waits for the answer: nobody else would
    logs.apply_exec_arguments(args, app_code=True)
    with os.fdopen(args.config_fd, "rb") as f:
        config = json.load(f)
    if not args.log_level and config.get("log", [None, None])[1] == "json":
        args.log_level, args.log_format = config["log"]
        logs.apply_exec_arguments(args, app_code=True)
    if args.check == "warnings":
        try:
            warnings(config, args.timeout, args.answer_fd)
        except BaseException:
            pass   # a warning the check could not make is no error of the config
        return 0
    try:
        problem = probe(config)
    except BaseException as exc:
        problem = f"jobs: {type(exc).__name__}: {exc}"
    if problem is not None:
        os.write(args.answer_fd, problem.encode()[:60000])
    return 0 if problem is None else 1


def forked(config, answer_fd, title: str) -> int:
    """In the spawner's child: the probe, its verdict on ``answer_fd``
    (protocols/spawnersocket.ProbeVerdict)."""
    set_raw_title(title)
    try:
        problem = probe(config)
    except BaseException as exc:
        problem = f"jobs: {type(exc).__name__}: {exc}"
    os.write(answer_fd, ProbeVerdict(problem).encode())
    return 0 if problem is None else 1


def probe(config) -> str | None:
    """The problem, as "<key>: <problem>", or None."""
    from resqued.redisio.connection import check_url  # here: only this check needs redis-py's URL parser
    try:
        check_url(config["redis_url"])
    except ValueError as exc:
        return f"redis: {exc}"
    try:
        JobRegistry.build(config["jobs"], config["aliases"])
    except RegistryError as exc:
        return f"jobs: {exc}"
    return None


def warnings(config, timeout, answer_fd) -> None:
    def warn(text):
        os.write(answer_fd, " ".join(text.split())[:2000].encode() + b"\n")

    try:
        from resqued.redisio.connection import connect  # here: the check loads what a worker loads
        client = connect(config["redis_url"], socket_timeout=timeout, socket_connect_timeout=timeout)
        client.ping()
        if is_sentinel(config["redis_url"]):
            from resqued.redisio.connection import describe  # here, as connect
            os.write(answer_fd, f"info: redis: {describe(config['redis_url'], timeout)}\n".encode())
    except BaseException as exc:
        warn(f"cannot reach Redis at {redact(config['redis_url'])}: {exc}")
    else:
        from resqued.redisio.permissions import missing_commands  # here, as connect
        missing = missing_commands(client, config["namespace"])
        if missing:
            warn(f"the Redis user may not run what workers need: {', '.join(missing)}; its workers would "
                 f"fail at start (grant it, e.g. ACL SETUSER <user> {' '.join('+' + m for m in missing if ' ' not in m)})")
    # Here, not at the top: the start's and every reload's probe need none of
    # them (psutil and decimal cost ~25 ms of each probe's start).
    from resqued.config.sizes import format_size
    from resqued.process.memory import approx_size, tree_memory
    try:
        import resqued.worker.worker  # noqa: F401  (here: what a worker imports, measured below)
        # probe() said what the job classes' attributes ignore: not again.
        JobRegistry.build(config["jobs"], config["aliases"], warn=False)
        idle = tree_memory(os.getpid())
    except BaseException:
        return   # the start's own check (probe) reports job modules that do not import
    for index, max_memory in enumerate(config["max_memory"]):
        if max_memory and max_memory < idle * 1.1:
            warn(f"pools[{index}].max_memory ({format_size(max_memory)}) is below what an idle worker "
                 f"of this config uses (about {approx_size(idle)}, an estimate: the figure resquectl status "
                 "shows shrinks as more workers share pages): its workers would be recycled after every job")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
