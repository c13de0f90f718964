"""A settled master reads its busy workers' reports in batches
(master/reportpace.py): the loop no longer turns at every job's report,
and a status still shows the latest states."""

import array
import fcntl
import os
import signal
import termios
import time

from conftest import log_text, stop, wait_until
from resqued.config.loader import load_config
from resqued.ctl import masterclient
from resqued.master.reportpace import FLOODED, ReportPace
from resqued.master.reportpipesize import enlarge, report_pipe_size
from resqued.protocols.controlsocket import Command
from resqued.resque import wire


class Pipe:
    """What ReportPace reads of a worker: how many bytes its pipe held; and
    how many times it was read."""

    def __init__(self, held: int | None):
        self.held = held
        self.reads = 0

    def read_reports(self) -> int | None:
        self.reads += 1
        return self.held


def turn(pace, children, urgent, now):
    """What the master's turn asks of the pace: the paced read early in the
    turn (read_due), then which pipes its wait polls (watched)."""
    pace.read_due(children, now)
    return pace.watched(children, urgent, now)


def test_the_pipes_are_read_once_a_pace_without_a_poll_unless_something_waits_on_a_state():
    pace = ReportPace(pace=0.25)
    a, b = Pipe(300), Pipe(300)
    assert turn(pace, [a, b], urgent=False, now=10.0) == []   # the pace has passed: read now, not polled
    assert (a.reads, b.reads) == (1, 1) and pace.deadline() == 10.25
    assert turn(pace, [a, b], urgent=False, now=10.1) == [] and a.reads == 1
    assert pace.deadline() == 10.25
    assert turn(pace, [a, b], urgent=True, now=10.2) == [a, b]   # e.g. pause --wait: polled, read as they come
    assert pace.deadline() is None and a.reads == 1                # (by the loop: read(ready=...))
    assert turn(pace, [a, b], urgent=False, now=10.3) == [] and a.reads == 1
    assert pace.deadline() == 10.45                                 # a pace from the urgent turn's
    assert turn(pace, [a, b], urgent=False, now=10.45) == [] and (a.reads, b.reads) == (2, 2)


def test_a_worker_that_floods_its_pipe_has_every_pipe_read_at_the_flood_pace_for_a_pace():
    pace = ReportPace(pace=60.0, flood_pace=0.05)   # a pace longer than this test: only the flood can lift it
    calm, flooding, command = Pipe(300), Pipe(300), Pipe(None)   # a command worker reads none
    t = time.monotonic()
    assert turn(pace, [calm, flooding, command], urgent=False, now=t) == []
    assert calm.reads == 1 and pace.deadline() == t + 60.0
    flooding.held = FLOODED
    pace.read([calm, flooding], ready=[flooding], asked=False, now=t + 0.01)   # an urgent turn's read finds it
    # Flooded: not at once (a turn per few lines), but every flood pace.
    assert turn(pace, [calm, flooding], urgent=False, now=t + 0.02) == [] and calm.reads == 1
    assert pace.deadline() == t + 0.05
    assert turn(pace, [calm, flooding], urgent=False, now=t + 0.05) == [] and calm.reads == 2
    assert turn(pace, [calm, flooding], urgent=False, now=t + 0.07) == [] and calm.reads == 2
    assert turn(pace, [calm, flooding], urgent=False, now=t + 0.11) == [] and calm.reads == 3
    flooding.held = 300
    assert turn(pace, [calm], urgent=False, now=t + 121) == [] and calm.reads == 4   # two paces later: calm again
    assert pace.deadline() == t + 181
    assert turn(pace, [calm], urgent=False, now=t + 121.1) == [] and calm.reads == 4


def wakeups(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("voluntary_ctxt_switches:"))


def processed(r) -> int:
    return int(r.get("resque:stat:processed") or 0)


def test_a_master_whose_workers_run_job_after_job_wakes_a_few_times_a_second(master_factory, r):
    # 10 ms jobs: a few hundred a second, and no worker near flooding its pipe.
    m = master_factory(["queues: [default]\ncount: 4\nfork: false"])
    m.wait_workers(4)
    assert wait_until(lambda: all(w["state"] == "idle" for w in m.status()["workers"]))   # READY: settled
    job = wire.dumps(wire.payload("Sleeper", [{"seconds": 0.01}], "s"))
    r.rpush("resque:queue:default", *([job] * 20_000))
    wait_until(lambda: processed(r) >= 100, message="the first jobs")
    jobs0, woken0 = processed(r), wakeups(m.pid)
    wait_until(lambda: processed(r) >= jobs0 + 600, timeout=30, interval=0.05, message="600 more jobs")
    jobs, woken = processed(r) - jobs0, wakeups(m.pid) - woken0
    # Each job is two reports: read as they came, the master woke about once a job.
    assert woken < jobs / 10, f"the master woke {woken} times for {jobs} jobs"
    # A status reads every pipe first: it shows the jobs done until it was asked
    # (less the one each worker may have counted in Redis and not reported yet).
    done = processed(r)
    assert sum(w["jobs_done"] for w in m.status()["workers"]) >= done - 4
    r.delete("resque:queue:default")
    assert stop(m.proc) == 0


def test_a_flood_keeps_every_pipe_read_at_the_flood_pace_while_the_worker_writes_a_pipes_worth_a_pace():
    # The first read after a pace finds the pipe's worth; after that, read at
    # the flood pace, each read is small: only the bytes over the pace say the flood goes on.
    pace, flooding = ReportPace(pace=1.0, flood_pace=0.09), Pipe(FLOODED)   # below the reads: float sums
    assert turn(pace, [flooding], urgent=False, now=100.0) == [] and flooding.reads == 1
    assert pace.deadline() == 100.09   # the read found a flood: the wait ends at the flood pace
    flooding.held = FLOODED // 10 + 1   # a tenth of a pace's worth, every tenth of a pace
    for tick in range(1, 30):
        now, reads = 100.0 + tick / 10, flooding.reads
        turn(pace, [flooding], urgent=False, now=now)
        assert flooding.reads == reads + 1, f"not read at {now}"
    flooding.held = 300   # the flood ends: a pace below FLOODED, and the pipes wait out the pace again
    for tick in range(30, 60):
        turn(pace, [flooding], urgent=False, now=100.0 + tick / 10)
    reads = flooding.reads
    turn(pace, [flooding], urgent=False, now=106.05)
    assert flooding.reads == reads and pace.deadline() > 106.05


def test_a_report_pipe_is_enlarged_within_the_users_pipe_budget():
    # 64 MiB of pipes per unprivileged user (16384 pages, Linux's default soft limit).
    assert report_pipe_size(4, 1 << 20, 16384) == 1 << 20
    assert report_pipe_size(64, 1 << 20, 16384) == 256 << 10   # a quarter of the budget for 64 workers
    assert report_pipe_size(100, 1 << 20, 16384) == 128 << 10   # a power of two, rounded down
    assert report_pipe_size(2000, 1 << 20, 16384) == 64 << 10   # never below the kernel's default
    assert report_pipe_size(4, 256 << 10, 0) == 256 << 10      # /proc's pipe-max-size; 0: no user limit
    a, b = os.pipe()
    try:
        assert enlarge(a, 4) >= 256 << 10
    finally:
        os.close(a), os.close(b)


def report_pipe(master: int, worker: int) -> int:
    """A read end of ``worker``'s report pipe, opened anew through /proc (its
    write end there: the pipe the master also holds), to see how full it is."""
    def pipes(pid):
        links = {}
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                links[fd] = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                pass
        return {fd: link for fd, link in links.items() if link.startswith("pipe:")}
    held = set(pipes(master).values())
    [fd] = [fd for fd, link in pipes(worker).items() if link in held and writes_only(worker, fd)]
    return os.open(f"/proc/{worker}/fd/{fd}", os.O_RDONLY | os.O_NONBLOCK)


def writes_only(pid: int, fd: str) -> bool:
    with open(f"/proc/{pid}/fdinfo/{fd}") as f:
        flags = int(next(line.split()[1] for line in f if line.startswith("flags:")), 8)
    return flags & os.O_ACCMODE == os.O_WRONLY


def nearly_full(fd: int) -> bool:
    """No report line fits any more."""
    held = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, held)
    return held[0] > fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ) - 4096


def test_a_worker_killed_while_it_drains_tiny_jobs_is_judged_on_the_job_it_runs(master_factory, r, tmp_path):
    # fork: false: thousands of tiny jobs a second, ~300 bytes of report each,
    # more than a 64 KiB pipe holds in a pace. A state line the full pipe
    # refused left the master naming an earlier job, or none.
    m = master_factory(["queues: [block, quick]\ncount: 1\nfork: false"], on_lost="fail")
    [worker] = m.wait_workers(1)
    assert wait_until(lambda: m.status()["workers"][0]["state"] == "idle")   # READY: settled, the pace on
    tiny = wire.dumps(wire.payload("Nothing", [], "tiny"))
    r.rpush("resque:queue:quick", *([tiny] * 30_000))
    # The blocking job comes once the worker's pipe has stayed full for 100
    # jobs (their outcome records wait in the worker: each line carries as
    # many as PIPE_BUF holds, and a line that size no longer fits), or once
    # it has run 2,000 tiny jobs: past the master's first pace, when it filled.
    pipe, full_at = report_pipe(m.pid, worker), []

    def full_for_100_jobs():
        if not nearly_full(pipe):
            full_at.clear()
            return processed(r) >= 2_000
        full_at[:] = full_at or [processed(r)]
        return processed(r) >= full_at[0] + 100
    try:
        wait_until(full_for_100_jobs, timeout=20, message="2,000 tiny jobs")
    finally:
        os.close(pipe)
    blocker = wire.payload("FileSleep", [{"path": str(tmp_path / "block"), "seconds": 30}], "the-blocker")
    r.rpush("resque:queue:block", wire.dumps(blocker))
    wait_until(lambda: (tmp_path / "block.started").exists(), message="the blocking job running")
    os.kill(worker, signal.SIGKILL)
    line = wait_until(lambda: next((l for l in log_text(m.proc).splitlines() if f"worker {worker} " in l
                                    and "died" in l), None), message="the worker's death logged")
    assert f"running job {blocker['id']} (FileSleep)" in line, line
    r.delete("resque:queue:quick")
    socket_path = str(load_config(m.config).control_socket)
    tally = wait_until(lambda: (t := masterclient.request(socket_path, Command.METRICS)["metrics"]["tally"])
                       and ["block", "FileSleep", "lost", 1] in t["jobs"] and t, message="the job counted lost")
    assert ["block,quick", "died_mid_job", 1] in tally["exits"]
    assert stop(m.proc) == 0
