"""supervisor/resqued.conf, run by a real supervisord (the `supervisor` package
from PyPI): start, reload with `supervisorctl signal HUP`, and a stop that
lets the running job finish and leaves no process behind.

The [program:resqued] section is the shipped file's, with only what must point
into this test replaced (command paths, directory, user, log file, environment),
so a wrong stop signal, stop timeout or kill setting in the shipped file fails here.
"""

import configparser
import getpass
import json
import os
import shlex
import subprocess
import sys

import psutil
import supervisor  # noqa: F401  (the test extra installs it; fail loudly without it)

from conftest import JOBS_FILE, ROOT, log_text, wait_until
from helpers import log_entries, pid_gone, title, wait_log

SHIPPED = os.path.join(ROOT, "supervisor", "resqued.conf")
SHUTDOWN_TIMEOUT = 30  # pool.yml's default, the value the shipped file is sized for

# Keys whose values are the point of the shipped file: used unchanged.
KEPT = ("stopsignal", "stopwaitsecs", "stopasgroup", "killasgroup", "autorestart", "startsecs",
        "redirect_stderr")


def read_shipped():
    parser = configparser.RawConfigParser()
    with open(SHIPPED) as f:
        parser.read_file(f)
    assert parser.sections() == ["program:resqued"], parser.sections()
    return dict(parser.items("program:resqued"))


def test_shipped_program_entry_is_sized_for_a_graceful_stop():
    program = read_shipped()
    argv = shlex.split(program["command"])
    assert os.path.basename(argv[0]) == "resqued" and "-c" in argv, argv
    assert not any(a.startswith("--daemon") for a in argv), "supervisord needs resqued in the foreground"
    # TERM is the master's bounded graceful stop; QUIT would wait forever for a job.
    assert program["stopsignal"].upper().removeprefix("SIG") == "TERM"
    assert int(program["stopwaitsecs"]) >= 2 * SHUTDOWN_TIMEOUT
    assert program["stopasgroup"] == "false" and program["killasgroup"] == "true"
    assert program["redirect_stderr"] == "true"
    for key in KEPT + ("directory", "user", "stdout_logfile"):
        assert key in program, key


def write_pool(path, redis_url, count):
    path.write_text("\n".join([
        f"redis: {redis_url}",
        f"jobs: [{JOBS_FILE}]",
        "interval: 1",
        f"shutdown_timeout: {SHUTDOWN_TIMEOUT}",
        "log: {level: debug}",
        "pools:",
        "  - queues: [default]",
        f"    count: {count}",
    ]) + "\n")


def program_section(pool_yml, tmp_path, redis_url):
    """The shipped [program:resqued], pointed at this test's pool.yml and venv."""
    program = read_shipped()
    argv = shlex.split(program["command"])
    # Keep every argument the shipped command has; only the paths change.
    argv = [sys.executable, "-m", "resqued", *argv[1:]]
    argv[argv.index("-c") + 1] = str(pool_yml)
    program.update(
        command=shlex.join(argv),
        directory=str(tmp_path),
        user=getpass.getuser(),
        stdout_logfile=str(tmp_path / "resqued.log"),
        environment=f'PYTHONPATH="{ROOT}",REDIS_BACKEND="{redis_url}"',
    )
    return program


def write_supervisord_conf(tmp_path, program):
    sock = tmp_path / "supervisor.sock"
    conf = configparser.RawConfigParser()
    conf["unix_http_server"] = {"file": str(sock), "chmod": "0700"}
    conf["supervisord"] = {
        "nodaemon": "true",
        "logfile": str(tmp_path / "supervisord.log"),
        "pidfile": str(tmp_path / "supervisord.pid"),
        "childlogdir": str(tmp_path),
        "loglevel": "debug",
        "minfds": "64",
        "minprocs": "16",
    }
    conf["rpcinterface:supervisor"] = {
        "supervisor.rpcinterface_factory": "supervisor.rpcinterface:make_main_rpcinterface"}
    conf["supervisorctl"] = {"serverurl": f"unix://{sock}"}
    conf["program:resqued"] = program
    path = tmp_path / "supervisord.conf"
    with open(path, "w") as f:
        conf.write(f)
    return path


class Supervisord:
    def __init__(self, procs, tmp_path, conf):
        self.conf = conf
        self.log = tmp_path / "supervisord.log"
        self.proc = procs.spawn([sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(conf)],
                                name="supervisord")

    def ctl(self, *args, timeout=120):
        return subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c", str(self.conf), *args],
                              capture_output=True, text=True, timeout=timeout, cwd=ROOT)

    def ctl_popen(self, procs, *args):
        return procs.spawn([sys.executable, "-m", "supervisor.supervisorctl", "-c", str(self.conf), *args],
                           name="supervisorctl")

    def state(self):
        out = self.ctl("status", "resqued").stdout.split()
        return out[1] if len(out) > 1 and out[0] == "resqued" else None

    def diagnostics(self):
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"supervisord.log:\n{text[-3000:]}\nsupervisord output:\n{log_text(self.proc)[-2000:]}"


def resquectl(pool_yml, *args):
    return subprocess.run([sys.executable, "-m", "resqued.ctl", "-c", str(pool_yml), *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT})


def tree(pid):
    try:
        parent = psutil.Process(pid)
        return [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def test_supervisord_start_hup_and_graceful_stop(procs, tmp_path, redis_url, r, resque):
    pool_yml = tmp_path / "pool.yml"
    write_pool(pool_yml, redis_url, count=2)
    conf = write_supervisord_conf(tmp_path, program_section(pool_yml, tmp_path, redis_url))
    sv = Supervisord(procs, tmp_path, conf)
    seen = {}  # pid -> psutil.Process: everything of the program we ever saw

    def remember(pid):
        for p in tree(pid):
            seen.setdefault(p.pid, p)

    def workers(master):
        try:
            return sorted(k.pid for k in psutil.Process(master).children() if title(k.pid).startswith("resque-"))
        except psutil.NoSuchProcess:
            return []

    try:
        # -- start: RUNNING once startsecs passed, with both workers registered.
        # BACKOFF/FATAL/EXITED: the program left before startsecs (a daemonizing command does).
        def settled():
            if sv.proc.poll() is not None:
                return "supervisord exited"
            state = sv.state()
            return state if state in ("RUNNING", "BACKOFF", "FATAL", "EXITED") else None
        state = wait_until(settled, timeout=30, message="resqued RUNNING under supervisord")
        assert state == "RUNNING", f"resqued is {state}\n{sv.diagnostics()}"
        master = int(sv.ctl("pid", "resqued").stdout.strip())
        # supervisord's child is the master itself (nothing daemonized away).
        assert psutil.Process(master).ppid() == sv.proc.pid
        wait_until(lambda: (tmp_path / "var/run/resqued.pid").exists()
                   and (tmp_path / "var/run/resqued.pid").read_text().strip() == str(master),
                   message="the master's pidfile")
        wait_until(lambda: r.scard("resque:workers") == 2 and len(workers(master)) == 2, timeout=20,
                   message="2 workers registered")
        remember(master)
        assert title(master) == "resqued-master[pool.yml]: managing 2 workers"

        # -- reload: pool.yml changed, then HUP through supervisorctl.
        write_pool(pool_yml, redis_url, count=3)
        hup = sv.ctl("signal", "HUP", "resqued")
        assert hup.returncode == 0 and "resqued: signalled" in hup.stdout, hup.stdout + hup.stderr
        # 3 live workers and nothing else (no retiring worker among the master's children).
        def pools():
            status = resquectl(pool_yml, "status", "--json")
            assert status.returncode == 0, status.stderr
            return [(p["count"], p["alive"]) for p in json.loads(status.stdout)["pools"]]
        wait_until(lambda: pools() == [(3, 3)] and len(workers(master)) == 3 and r.scard("resque:workers") == 3,
                   timeout=20, message="3 workers after the HUP")
        assert int(sv.ctl("pid", "resqued").stdout.strip()) == master  # reloaded, not restarted
        remember(master)

        # -- stop with a job running: it finishes, nothing is left, nothing fails.
        resque.enqueue("default", "Slow", {"seconds": 120})
        child = int(wait_log(r, "started:")[-1].split(":")[1])
        remember(master)
        assert child in seen
        stopping = sv.ctl_popen(procs, "stop", "resqued")
        wait_until(lambda: title(master).endswith(": stopping") or stopping.poll() is not None,
                   timeout=20, message="the master to show it is stopping")
        assert stopping.poll() is None, log_text(stopping)
        # TERM is graceful: the job is still running, nobody killed it.
        assert not pid_gone(child)
        r.rpush("test:release", 1)
        assert stopping.wait(SHUTDOWN_TIMEOUT + 30) == 0, log_text(stopping) + sv.diagnostics()
        assert "resqued: stopped" in log_text(stopping)

        assert any(e == f"finished:{child}" for e in log_entries(r)), log_entries(r)
        assert r.llen("resque:failed") == 0
        assert r.scard("resque:workers") == 0
        left = [pid for pid in seen if not pid_gone(pid)]
        assert not left, f"left behind: {[(pid, title(pid)) for pid in left]}"
        assert len(seen) >= 5  # master, 3 workers, the job child
        assert sv.state() == "STOPPED"
        sv_log = sv.log.read_text()
        assert "stopped: resqued (exit status 0)" in sv_log, sv.diagnostics()
        assert "with signal SIGKILL" not in sv_log  # the master finished the stop itself
        assert not (tmp_path / "var/run/resqued.pid").exists()

        # -- supervisord itself goes away cleanly.
        down = sv.ctl("shutdown")
        assert down.returncode == 0, down.stdout + down.stderr
        assert sv.proc.wait(30) == 0, sv.diagnostics()
    finally:
        # Whatever happened, nothing of this test survives it (procs then reaps supervisord),
        # not even a master that daemonized out of supervisord's tree: its pidfiles name it.
        for pidfile in [tmp_path / "var/run/resqued.pid", *(tmp_path / "var/run").glob("workers/*.pid")]:
            try:
                pid = int(pidfile.read_text().strip())
            except (OSError, ValueError):
                continue
            if title(pid).startswith(("resqued-master[", "resque-")):
                remember(pid)
        for pid in list(seen):
            for p in tree(pid):
                seen.setdefault(p.pid, p)
        for p in [*tree(sv.proc.pid)[1:], *seen.values()]:
            try:
                p.kill()  # psutil checks the pid still names the same process
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(list(seen.values()), timeout=10)
