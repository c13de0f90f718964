"""The job child: the forked process that runs one job and reports how it went.

The child writes one JSON document to a pipe and exits. The worker reads it;
a child that dies without writing one (a signal, the OOM killer, os._exit) is
a dirty exit and is recorded as a failure.
"""

import json
import logging
import os
import signal
import sys

from resqued.jobs import events
from resqued.resque import wire
from resqued.jobs.job import Job, backtrace, exception_lineage, exception_name, perform
from resqued.resque.outcome import DIRTY_EXIT, Failure
from resqued.process import logfile
from resqued.process.title import set_title, stamp
from resqued.worker.execution.jobtimeout import processing_title
from resqued.process.descendants import end_processes, has_children, reap_children, running_descendants
from resqued.process.fork import fork_child
from resqued.process.signals import describe
from resqued.worker.execution import childready, jobcapture

log = logging.getLogger("resqued.worker")


class DirtyExit(Exception):
    """Given to onFailure listeners when a job child died without reporting."""


def fork_job_child(run, close, signals, title=None) -> int:
    """Fork a job child (or a standby) that runs ``run()``; its pid.
    ``signals``: what to reset (the worker's SignalQueue, or the job
    forker's Reset). The child leads its own group, so killing the job kills
    its subprocesses. What the job starts stays under it, even what calls
    setsid() and forks twice to get away: end_leftovers finds it all there.
    If its parent (the worker, or the job forker) dies, its job goes back to
    the queue: the child must not go on running it beside the retry.
    (random reseeds itself in a forked child: os.register_at_fork.)"""
    return fork_child(run, close=close, own_group=True, reset=signals, subreaper=True,
                      pdeathsig=signal.SIGKILL, parent_pid=os.getpid(), orphan_code=1, title=title,
                      exit=flush_and_exit)


def child_main(job, target, write_fd: int, output_fds, term_timeout: float) -> None:
    """Run ``job`` in this process, forked by fork_job_child; never returns.
    ``output_fds``: its stdout and stderr pipes (jobcapture.py)."""
    exit_code = 1
    try:
        jobcapture.capture_in_child(output_fds)
        exit_code = _run_and_report(job, target, write_fd, warm_up=True)
        end_leftovers(job, term_timeout)
    finally:
        flush_and_exit(exit_code)


def standby_main(job_fd: int, write_fd: int, output_fds, registry, worker_id: str, rehearse: bool,
                 term_timeout: float) -> None:
    """A job child forked ahead of time (by fork_job_child, titled
    "Standby for ..."): wait for the job on ``job_fd``, run it, report on
    ``write_fd``; never returns. The worker closing ``job_fd`` without
    sending a job means "not needed": exit quietly. ``output_fds``: the
    job's stdout and stderr pipes, put in place now (jobcapture.py), off
    the job's path, as are the childReady listeners (childready.py: a
    standby whose listeners fail says so and exits). ``rehearse``: the worker
    is idle, so take the job path's page faults now (``_rehearse``).
    ``term_timeout``: how long what the job left running has after SIGTERM."""
    exit_code = 1
    try:
        jobcapture.capture_in_child(output_fds)
        if not childready.prepare_standby(write_fd):
            return
        if rehearse:
            _rehearse(registry, worker_id)
        data = bytearray()
        while True:
            chunk = os.read(job_fd, 65536)
            if not chunk:
                break
            data += chunk
        if not data:
            exit_code = 0
            return
        queue, _, raw = bytes(data).partition(b"\n")
        # The worker has already decoded and resolved this job: it cannot fail here.
        job = Job(queue.decode(), wire.decode_payload(raw), raw, worker_id)
        exit_code = _run_and_report(job, registry.resolve(job.job_class), write_fd)
        end_leftovers(job, term_timeout)
    finally:
        flush_and_exit(exit_code)


def _rehearse(registry, worker_id: str) -> None:
    """Walk the job's path once (decode, resolve, time stamp, report) on a
    made-up payload, so that the copy-on-write page faults of a freshly forked
    child happen while it waits, not once its job is here: ~0.25 ms less
    pickup latency on this machine. Not for a busy worker's standby, which
    gets its job at once and would only spend the CPU."""
    raw = wire.dumps(wire.payload("resqued.Rehearsal", [{"a": 1}], wire.new_job_id())).encode()
    job = Job("rehearsal", wire.decode_payload(raw), raw, worker_id)
    try:
        registry.resolve(job.job_class)
    except Exception:
        pass
    stamp()
    json.dumps({"ok": True, "skipped": False}).encode()


def _run_and_report(job, target, write_fd: int, warm_up: bool = False) -> int:
    """``warm_up``: a child forked on demand, with its job: the childReady
    listeners run here, and their failure fails the job."""
    # A standby may have waited since before the master reopened its log (HUP).
    logfile.follow()
    set_title(processing_title(job, target))
    jobcapture.job_begins(job)
    try:
        if warm_up:
            childready.run()
        events.trigger("afterFork", job)
        performed = perform(job, target)
        result = {"ok": True, "skipped": not performed}
    except BaseException as exc:  # SystemExit and KeyboardInterrupt fail the job too
        result = {"ok": False, "exception": exception_name(exc), "error": str(exc),
                  "backtrace": backtrace(exc), "lineage": exception_lineage(exc)}
        try:
            events.trigger("onFailure", exc, job)
        except BaseException:
            log.exception("onFailure listener raised")
    jobcapture.job_ends()
    # One line: the worker takes the job as finished when the newline arrives.
    data = json.dumps(result).encode() + b"\n"
    while data:
        data = data[os.write(write_fd, data):]
    return 0


def end_leftovers(job, term_timeout: float) -> None:
    """The job is over (its outcome is reported): what it started and left
    running ends too, instead of running on with its "Processing" title
    beside the next jobs, and past a stop of the master."""
    if not has_children():
        return
    procs = running_descendants()
    if procs:
        set_title(f"Ending what {job.job_class} left running")
        log.warning("job %s (%s) left processes running (pids %s): SIGTERM now, SIGKILL after %gs",
                    job.job_class, job.label[:64], ", ".join(str(p.pid) for p in procs), term_timeout)
        end_processes(procs, term_timeout)
    reap_children()


def flush_and_exit(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code)


def interpret(job, pid: int, status: int, report: bytes, kill_reason: str | None = None,
              failure_hooks: bool = True):
    """Turn a reaped child's wait status and report into (failure, skipped);
    a child that died without reporting fires the onFailure hooks here
    (unless ``failure_hooks`` is false: the worker gives that job back)."""
    if report:
        try:
            result = json.loads(report.split(b"\n", 1)[0])
            if result.get("ok"):
                return None, bool(result.get("skipped"))
            failure = Failure(result["exception"], result["error"], result.get("backtrace"))
            lineage = result.get("lineage")
            if isinstance(lineage, list) and all(isinstance(name, str) for name in lineage):
                failure.lineage = lineage
            return failure, False
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        error = f"Child process received unhandled signal pid {pid} {describe(sig)} (signal {sig})"
    else:
        code = os.waitstatus_to_exitcode(status)
        error = f"Job exited with exit code {code} without reporting an outcome"
    if kill_reason:
        error = f"{error}: {kill_reason}"
    if failure_hooks:
        try:
            events.trigger("onFailure", DirtyExit(error), job)
        except Exception:
            log.exception("onFailure listener raised")
    return Failure(DIRTY_EXIT, error), False


def signal_group(pid: int, signum: int) -> None:
    # The child leads its own process group, so the job's own subprocesses go too.
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def read_rest(fd: int) -> bytes:
    os.set_blocking(fd, False)
    chunks = []
    try:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    except BlockingIOError:
        pass
    return b"".join(chunks)

