"""A settled master reads its busy workers' reports in batches
(master/reportpace.py): the loop no longer turns at every job's report,
and a status still shows the latest states."""

from conftest import stop, wait_until
from resqued.master.reportpace import ReportPace
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


def wakeups(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("voluntary_ctxt_switches:"))


def processed(r) -> int:
    return int(r.get("resque:stat:processed") or 0)


def test_a_master_whose_workers_run_job_after_job_wakes_a_few_times_a_second(master_factory, r):
    m = master_factory(["queues: [default]\ncount: 2\nfork: false"])
    m.wait_workers(2)
    assert wait_until(lambda: all(w["state"] == "idle" for w in m.status()["workers"]))   # READY: settled
    r.rpush("resque:queue:default", *(wire.dumps(wire.payload("GoodJob", [], str(i))) for i in range(20_000)))
    wait_until(lambda: processed(r) >= 100, message="the first jobs")
    jobs0, woken0 = processed(r), wakeups(m.pid)
    wait_until(lambda: processed(r) >= jobs0 + 600, timeout=30, interval=0.05, message="600 more jobs")
    jobs, woken = processed(r) - jobs0, wakeups(m.pid) - woken0
    # Each job is two reports: read as they came, the master woke about once a job.
    assert woken < jobs / 10, f"the master woke {woken} times for {jobs} jobs"
    # A status reads every pipe first: it shows the jobs done until it was asked
    # (less the one each worker may have counted in Redis and not reported yet).
    done = processed(r)
    assert sum(w["jobs_done"] for w in m.status()["workers"]) >= done - 2
    r.delete("resque:queue:default")
    assert stop(m.proc) == 0
