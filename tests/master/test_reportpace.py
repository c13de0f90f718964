"""A settled master reads its busy workers' reports in batches
(master/reportpace.py): the loop no longer turns at every job's report,
and a status still shows the latest states."""

import time

from conftest import stop, wait_until
from resqued.master.reportpace import FLOODED, ReportPace
from resqued.resque import wire


def test_the_pipes_wait_out_the_pace_unless_something_waits_on_a_state():
    pace = ReportPace(pace=0.25)
    assert pace.watched(["a", "b"], urgent=False, now=10.0) == ["a", "b"]
    assert pace.deadline() is None   # watched: the loop's own timeout stands
    assert pace.watched(["a", "b"], urgent=False, now=10.1) == []
    assert pace.deadline() == 10.25
    assert pace.watched(["a", "b"], urgent=True, now=10.2) == ["a", "b"]   # e.g. pause --wait
    assert pace.watched(["a", "b"], urgent=False, now=10.3) == []
    assert pace.watched(["a", "b"], urgent=False, now=10.45) == ["a", "b"]


class Pipe:
    """What ReportPace reads of a worker: how many bytes its pipe held."""

    def __init__(self, held: int | None):
        self.held = held

    def read_reports(self) -> int | None:
        return self.held


def test_a_worker_that_floods_its_pipe_has_every_pipe_read_at_once_for_a_pace():
    pace = ReportPace(pace=60.0)   # longer than this test: only the flood can lift it
    calm, flooding, command = Pipe(300), Pipe(FLOODED), Pipe(None)   # a command worker reads none
    assert pace.watched([calm, flooding], urgent=False, now=time.monotonic()) == [calm, flooding]
    pace.read([calm, flooding, command], ready=[calm, command], asked=False)
    assert pace.watched([calm, flooding], urgent=False, now=time.monotonic()) == []
    pace.read([calm, flooding], ready=[flooding], asked=False)
    assert pace.watched([calm, flooding], urgent=False, now=time.monotonic()) == [calm, flooding]
    assert pace.watched([calm], urgent=False, now=time.monotonic() + 61) == [calm]


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
