"""`make run` works on its own: the demo starts Redis and resqued, runs its
jobs, and Ctrl-C leaves no process behind."""

import os
import signal
import subprocess
import sys

import psutil

from conftest import ROOT, wait_until


def descendants(pid):
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_demo_runs_and_ctrl_c_leaves_nothing(tmp_path):
    out = tmp_path / "demo.out"
    env = dict(os.environ, RESQUED_DEMO_VAR=str(tmp_path / "var"))
    with open(out, "wb") as f:
        demo = subprocess.Popen([sys.executable, os.path.join(ROOT, "examples", "demo.py")], env=env,
                                stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: b"Ctrl-C stops everything" in out.read_bytes() or demo.poll() is not None,
                   timeout=60, message="the demo to finish its jobs")
        text = out.read_text()
        assert demo.poll() is None, text
        assert "welcome email sent to ada@example.com" in text
        assert "card declined for order 1042" in text  # the failure, listed by resquectl failed
        # The commands it prints work as typed, in another shell.
        printed = [line.strip()[2:] if line.startswith("$ ") else line.strip() for line in text.splitlines()
                   if "bin/resquectl" in line]
        assert len(printed) == 5, printed
        for command in printed:
            command = command.split("   (")[0]
            done = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=60,
                                  env={k: v for k, v in os.environ.items() if k != "REDIS_URL"})
            assert done.returncode == 0, (command, done.stderr)
        # The demo's own children are in their own sessions, so collect them all.
        tree = descendants(demo.pid)
        assert any("resqued-master" in " ".join(p.cmdline()) for p in tree)
        os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        assert demo.wait(30) == 0, out.read_text()
        gone, alive = psutil.wait_procs(tree, timeout=10)
        assert not alive, [p.pid for p in alive]
        assert "no resqued or redis-server process left running" in out.read_text()
    finally:
        if demo.poll() is None:
            for p in descendants(demo.pid):
                p.kill()
            demo.kill()
            demo.wait()
