"""resquectl's master commands: pause, resume, reload, restart, stop, status. They talk
to a running master through its control socket (found from ``-c pool.yml``,
``--pidfile`` or ``--socket``), never through Redis (but for ``status``'s
line of queues paused fleet-wide, which cli.py reads from Redis when it
knows which: ``-c`` or ``--redis``; ``pause/resume --queue Q --fleet`` are
Redis commands: ctl/fleet.py).

With ``--json`` each prints one shape: ``{"ok": true, "message": ...}`` and
the master's status (``master``, ``spawner``, ``pools``, ``workers``) when it
answered; ``message`` is the line printed without ``--json``."""

import shlex
import time

import psutil

from resqued.exits import EX_CONFIG, EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from resqued.process.memory import approx_size
from resqued.config.sizes import format_size
from resqued.ctl import masterclient, tables
from resqued.ctl.locate import MasterError, locate, not_a_master
from resqued.ctl.output import print_json
from resqued.process.logs import counted, printable
from resqued.protocols.controlsocket import Answer, Command, ControlError, Refusal, Status, typed_answer
from resqued.protocols.reportpipe import WorkerState
from resqued.resque.wire import utc_iso

RESTART_WAIT = 660.0   # the master gives a restart 600 s to replace every worker
PAUSE_WAIT = 600.0     # pause --wait: how long running jobs may take to finish, unless told


def ask(path: str, command: Command, timeout: float = 90.0, **arguments) -> Answer:
    """The master's answer to ``command`` (with its Request ``arguments``);
    MasterError if it refused it or cannot be asked."""
    try:
        answer = typed_answer(masterclient.request(path, command, timeout=timeout, **arguments))
    except ControlError as exc:
        raise MasterError(str(exc)) from None
    if isinstance(answer, Refusal):
        # A refused reload or restart: the config or the code does not load.
        code = EX_CONFIG if answer.config_error else EXIT_USAGE if answer.unsupported else EXIT_FAILURE
        raise MasterError(f"{command} failed: {answer.error}", code)
    return answer


def run(args) -> int:
    path, pidfile, shutdown_timeout = locate(args)
    not_a_master(path, pidfile)
    command = args.master_command
    if command == Command.STATUS:
        answer = ask(path, Command.STATUS)
        master, workers = answer.status["master"], answer.status["workers"]
        message = f"master {master['pid']} {master['state']}: {counted(len(workers), 'worker')}"
    elif command == Command.PAUSE and args.wait:
        answer = ask(path, Command.PAUSE, timeout=args.wait + 30, wait=args.wait)
        message = f"{counted(len(answer.status['workers']), 'worker')} paused, no job running"
    elif command in (Command.PAUSE, Command.RESUME):
        answer = ask(path, command)
        message = f"{counted(len(answer.status['workers']), 'worker')} {answer.message}"
        running = sum(1 for w in answer.status["workers"] if w.get("job"))
        if command == Command.PAUSE and running:
            message += f"; {counted(running, 'worker')} still running a job (pause --wait waits for it)"
    elif command == Command.RELOAD:
        answer = ask(path, Command.RELOAD, timeout=RESTART_WAIT)   # on_hup: restart makes it a restart too
        message = "reloaded: " + ", ".join(f"{','.join(p['queues'])}={p['count']}"
                                           for p in answer.status["pools"])
    elif command == Command.RESTART:
        answer = ask(path, Command.RESTART, timeout=RESTART_WAIT, pools=args.pools)
        message = "restarted: " + ", ".join(f"{','.join(p['queues'])}={p['alive']}"
                                            for p in answer.status["pools"])
    elif command == Command.STOP:
        answer = ask(path, Command.STOP, now=bool(args.now))
        pid = answer.pid
        # Wait for the master to be gone: a graceful stop lasts as long as the
        # longest running job, up to shutdown_timeout.
        deadline = time.monotonic() + shutdown_timeout + 30
        while _running(pid):
            if time.monotonic() > deadline:
                raise MasterError(f"master {pid} is still running {shutdown_timeout + 30:.0f}s after stop")
            time.sleep(0.05)
        message = f"master {pid} stopped"
    paused_queues = getattr(args, "fleet_paused", None)   # status: read from Redis by cli.py, if it could
    if args.json:
        print_json({**document(answer, message), **({"paused_queues": paused_queues} if paused_queues is not None
                                                     else {})})
    else:
        print(render_status(answer.status) if command == Command.STATUS else message)
        if paused_queues:
            print(f"\nqueues paused fleet-wide (resquectl resume --queue Q --fleet): {', '.join(paused_queues)}")
    return EXIT_OK


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:   # gone between two looks: it is not running
        return False


def document(answer: Answer, message: str) -> dict:
    """What every master command prints with --json: ok, the message, and
    the master's status as it answered (for stop: as it began to stop),
    its times as UTC ISO 8601."""
    status = dict(answer.status)
    if "workers" in status:
        status["workers"] = [{**w, "started": _iso(w.get("started")), "since": _iso(w.get("since"))}
                             for w in status["workers"]]
    return {"ok": True, "message": message, **status}


def _iso(value):
    return utc_iso(value) if isinstance(value, (int, float)) else value


def render_status(status: Status) -> str:
    master, spawner = status["master"], status.get("spawner") or {}
    lines = [f"master {master['pid']} {master['state']}  config {master['config']}  "
             f"rss {approx_size(master['rss'])}"]
    if spawner:  # the process that forks the workers (resqued/spawner/)
        lines[0] += (f"  spawner {spawner['pid'] or '-'} {spawner['state']}"
                     + (f" rss {approx_size(spawner['rss'])}" if spawner.get("rss") else ""))
    # The processes the master keeps beside its workers, when their setting is on.
    kept = [f"{name} {status[name]['pid'] or '-'} {status[name]['state']}"
            + (f" rss {approx_size(status[name]['rss'])}" if status[name].get("rss") else "")
            for name in ("scheduler", "exporter") if (status.get(name) or {}).get("state", "off") != "off"]
    if kept:
        lines.append("  ".join(kept))
    if master["state"] == "winched":
        lines.append("workers stopped by WINCH: SIGHUP or `resquectl reload` starts each pool's COUNT again")
    lines.append("")
    lines.append(tables.table(["POOL", "COUNT", "ALIVE", "STATE", "RECYCLES", "RESTARTS", "MAX_MEMORY", "MAX_JOBS"], [
        [",".join(p["queues"]), p["count"], p["alive"], "FAILED" if p["failed"] else "ok", p["recycles"],
         p["restarts"], format_size(p["max_memory"]) if p["max_memory"] else "-", p["max_jobs"] or "-"] for p in status["pools"]]))
    lines += [f"pool {','.join(p['queues'])} FAILED: {printable(p['reason'])}"
              + (f"; last error: {printable(p['last_error'])}" if p.get("last_error") else "")
              for p in status["pools"] if p.get("reason")]
    lines += [f"pool {','.join(p['queues'])} runs a command: {printable(shlex.join(p['command']))}"
              for p in status["pools"] if p.get("kind") == "command" and p.get("command")]
    lines.append("")
    now = time.time()
    rows = []
    for w in status["workers"]:
        job = w.get("job") or {}
        since = f"{now - w['since']:.0f}s ago" if w.get("since") else "-"
        state = w["state"] + (" (paused)" if w["paused"] and w["state"] == WorkerState.BUSY else "")
        rows.append([w["pid"], ",".join(w["queues"]), state, job.get("class") or "-", job.get("id") or "-",
                     since, approx_size(w["memory"]), w["jobs_done"]])
    lines.append(tables.table(["PID", "QUEUES", "STATE", "JOB", "JOB_ID", "SINCE", "MEMORY", "JOBS"], rows))
    return "\n".join(lines)
