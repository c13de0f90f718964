"""The dashboard's pages (GET): each reads one page of data (reads.py) and
renders its template."""

import re

from resqued.web import pools
from resqued.web.reads import PAGE, failure_ref, page_window


def is_index(text: str) -> bool:
    """ASCII digits only: "²".isdigit() is true, and int("²") raises."""
    return re.fullmatch(r"[0-9]{1,10}", text) is not None


def overview(app, request):
    totals = app.reads.totals()
    queues, queue_count = app.reads.busiest_queues()
    hosts = app.reads.workers_by_host()
    master = pools.master_status(app.master_socket)
    return app.page("overview.html", request, title="Overview", totals=totals, queues=queues,
                    queue_count=queue_count, hosts=hosts, master=master, refresh=app.refresh)


def queues(app, request):
    names = app.reads.queue_names()
    window = page_window(request.query.get("start"), len(names))
    rows = app.reads.queue_rows(names[window["start"]:window["start"] + PAGE])
    return app.page("queues.html", request, title="Queues", totals=app.reads.totals(), rows=rows,
                    window=window, refresh=app.refresh)


def queue(app, request):
    name = request.query.get("name", "")
    data = app.reads.queue_page(name, request.query.get("start"))
    return app.page("queue.html", request, title=f"Queue {name}", totals=app.reads.totals(), name=name,
                    refresh=app.refresh, **data)


def queue_clear(app, request):
    """The confirmation before a queue's jobs are deleted."""
    name = request.query.get("name", "")
    [row] = app.reads.queue_rows([name])
    what = f"the {row['length']} jobs waiting in" if row["error"] is None else "the key (not a list) of"
    return app.page("confirm.html", request, title=f"Clear queue {name}", totals=app.reads.totals(),
                    action="/queue/clear", fields={"name": name},
                    question=f"Delete {what} queue {name}? Running jobs finish; "
                             "the queue stays listed.", button="Clear queue", back=app.url("/queue", name=name))


def workers(app, request):
    return app.page("workers.html", request, title="Workers", totals=app.reads.totals(),
                    hosts=app.reads.workers_by_host(), master=pools.master_status(app.master_socket),
                    refresh=app.refresh)


def failed(app, request):
    data = app.reads.failed_page(request.query.get("start"))
    return app.page("failed.html", request, title="Failed", totals=app.reads.totals(), refresh=app.refresh, **data)


def failure(app, request):
    """One failure: at ``index`` (checked against ``id`` when both are
    given: the list may have shifted), or job ``id``'s newest."""
    job_id, index = request.query.get("id"), request.query.get("index", "")
    entry, earlier = None, []
    if is_index(index):
        entry = app.reads.failure_at(int(index))
        if entry is not None and job_id and str(entry.job_id) != job_id:
            entry = None
    if entry is None and job_id:
        found = app.reads.resque.failures.find(job_id)
        entry, earlier = (found[-1], found[:-1]) if found else (None, [])
    if entry is None:
        return app.page("error.html", request, status=404, title="No such failure",
                        message=f"no failure of job {job_id}" if job_id else f"no failure at index {index}")
    return app.page("failure.html", request, title="Failure", totals=app.reads.totals(), entry=entry,
                    earlier=earlier, ref=failure_ref(entry))


def failed_clear(app, request):
    count = app.reads.resque.failures.count()
    return app.page("confirm.html", request, title="Clear failures", totals=app.reads.totals(),
                    action="/failed/clear", fields={},
                    question=f"Delete all {count} failure entries? Their jobs are not retried.",
                    button="Clear failures", back=app.url("/failed"))


def failed_retry_all(app, request):
    count = app.reads.resque.failures.count()
    return app.page("confirm.html", request, title="Retry all failures", totals=app.reads.totals(),
                    action="/failed/retry", fields={"all": "1"},
                    question=f"Put the jobs of all {count} failure entries back on their queues, once per "
                             "entry (a job that failed twice is queued twice)? The entries stay, marked retried.",
                    button="Retry all", back=app.url("/failed"))


def job(app, request):
    job_id = request.query.get("id", "").strip()
    if not job_id:
        return app.page("job.html", request, title="Find a job", totals=app.reads.totals(), found=None)
    found = app.reads.locate_job(job_id, request.query.get("prefix", ""))
    for entry in found["failed"]:
        entry.ref = failure_ref(entry)
    return app.page("job.html", request, title=f"Job {job_id}", totals=app.reads.totals(), found=found)


def stats(app, request):
    totals = app.reads.totals()
    stats = app.reads.stats()
    hosts = app.reads.workers_by_host()
    return app.page("stats.html", request, title="Stats", totals=totals, stats=stats, hosts=hosts,
                    server=app.reads.server_info(), refresh=app.refresh)


ROUTES = {"/": overview, "/queues": queues, "/queue": queue, "/queue/clear": queue_clear,
          "/workers": workers, "/failed": failed, "/failure": failure, "/failed/clear": failed_clear,
          "/failed/retry-all": failed_retry_all, "/job": job, "/stats": stats}
