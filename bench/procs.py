"""Processes the bench starts: each one in its own session, its output in
bench/results/logs/, and every one of them (with all its descendants) killed
and reaped by ``Procs.stop_all`` — also after an error or Ctrl-C."""

import os
import signal
import subprocess
import sys
import time

import psutil

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
RESULTS = os.path.join(BENCH, "results")
LOGS = os.path.join(RESULTS, "logs")
BIN = os.path.dirname(sys.executable)


class BudgetExceeded(Exception):
    """The global time budget ran out."""


class Budget:
    def __init__(self, seconds: float):
        self.start = time.monotonic()
        self.seconds = seconds

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        return self.seconds - self.elapsed()

    def check(self, needed: float = 0.0) -> None:
        if self.left() < needed:
            raise BudgetExceeded(f"{self.left():.0f}s of the budget left, {needed:.0f}s needed")


def wait_for(condition, timeout: float, interval: float = 0.005, what: str = "condition"):
    """Poll ``condition()`` until it returns something truthy; TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


class Procs:
    def __init__(self):
        self.started: list[subprocess.Popen] = []
        self._logs = []
        os.makedirs(LOGS, exist_ok=True)

    def start(self, name: str, argv, env=None, cwd=None) -> subprocess.Popen:
        log = open(os.path.join(LOGS, f"{name}.log"), "wb")
        self._logs.append(log)
        full_env = dict(os.environ)
        full_env.update(env or {})
        proc = subprocess.Popen(argv, env=full_env, cwd=cwd or BENCH, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        proc.bench_name = name
        self.started.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, grace: float = 3.0, sig=signal.SIGTERM) -> None:
        """Signal the process, then SIGKILL it and every descendant (found
        before the signal: job children may sit in their own process groups)."""
        tree = descendants(proc.pid)
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        for p in [*tree, *descendants(proc.pid)]:
            try:
                p.kill()
            except psutil.Error:
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        psutil.wait_procs([p for p in tree if _alive(p)], timeout=2)
        if proc in self.started:
            self.started.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self.started):
            try:
                self.stop(proc, grace=1.0)
            except Exception as exc:  # keep going: every process must be reaped
                print(f"bench: could not stop {getattr(proc, 'bench_name', proc.pid)}: {exc}", file=sys.stderr)
        for log in self._logs:
            log.close()
        self._logs.clear()
        # Anything we forked and lost track of (a reparented grandchild is
        # not ours to find; a direct zombie is).
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass


def descendants(pid: int) -> list:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _alive(p) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process, its live descendants and the children it reaped."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


def tree_rss(pid: int) -> int:
    try:
        root = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
    except psutil.Error:
        return 0


def run_json(argv, timeout: float, name: str, env=None):
    """Run a helper script to completion; its last stdout line is JSON."""
    import json
    full_env = dict(os.environ)
    full_env.update(env or {})
    log_path = os.path.join(LOGS, f"{name}.log")
    with open(log_path, "wb") as err:
        proc = subprocess.Popen(argv, env=full_env, cwd=BENCH, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=err, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except BaseException:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            raise
    if proc.returncode != 0:
        raise RuntimeError(f"{name} exited {proc.returncode}; see {os.path.relpath(log_path, ROOT)}")
    lines = out.decode().strip().splitlines()
    with open(log_path, "ab") as f:
        f.write(out)
    return json.loads(lines[-1])
