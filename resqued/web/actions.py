"""The dashboard's actions (POST, after app.py's credential and CSRF
checks): failures through resqued/resque/failedjobs.py, as resquectl acts
on them; a queue's jobs cleared as ``resquectl queues clear`` does; Resque's
global pause key set or deleted."""

from resqued.resque import failedjobs
from resqued.resque.failures import FailureError
from resqued.resque.keys import check_queue_name
from resqued.web.pages import is_index
from resqued.web.reads import digest


class StaleRef(FailureError):
    pass


def refs_of(app, texts) -> list:
    """The names a form gave, for failedjobs: ``id:X`` as is; ``at:N:DIGEST``
    as the entry at N, if it is still the one the page showed."""
    refs = []
    for text in texts:
        if text.startswith("at:"):
            _, index, expected = (text.split(":", 2) + ["", ""])[:3]
            entry = app.reads.failure_at(int(index)) if is_index(index) else None
            if entry is None or digest(entry.raw) != expected:
                raise StaleRef(f"failure {index} changed since the page was read (the list moved): "
                               "nothing done; reload and try again")
            refs.append(entry)
        elif text.startswith("id:"):
            refs.append(text)
        else:
            raise FailureError(f"not a failure reference: {text!r}")
    return refs


def _done(app, request, title: str, lines: list[str], errors: list[str], back: str):
    return app.page("message.html", request, status=409 if errors else 200, title=title,
                    totals=app.reads.totals(), lines=lines, errors=errors, back=back)


def failed_retry(app, request):
    remove = request.form.get("remove") == "1"
    try:
        if request.form.get("all") == "1":
            done = failedjobs.retry(app.reads.resque.failures, None, remove=remove)
        else:
            texts = request.form_lists.get("ref", [])
            if not texts:
                return _done(app, request, "Retry", [], ["no failure chosen"], app.url("/failed"))
            done = failedjobs.retry(app.reads.resque.failures, refs_of(app, texts), remove=remove)
    except FailureError as exc:
        return _done(app, request, "Retry", [], [str(exc)], app.url("/failed"))
    verb = "retried and removed" if remove else "retried"
    lines = [f"{verb} failure {e['index']}: {failedjobs.label(e)} -> queue {e['queue']}" for e in done["retried"]]
    lines += [f"removed failure {e['index']}: {failedjobs.label(e)} (an earlier failure of the job)"
              for e in done["removed"]]
    return _done(app, request, "Retry", lines or ["no failures to retry"],
                 [e["error"] for e in done["errors"]], app.url("/failed"))


def failed_remove(app, request):
    texts = request.form_lists.get("ref", [])
    try:
        if not texts:
            raise FailureError("no failure chosen")
        done = failedjobs.remove(app.reads.resque.failures, refs_of(app, texts))
    except FailureError as exc:
        return _done(app, request, "Remove", [], [str(exc)], app.url("/failed"))
    lines = [f"removed failure {e['index']}: {failedjobs.label(e)}" for e in done["removed"]]
    return _done(app, request, "Remove", lines, [e["error"] for e in done["errors"]], app.url("/failed"))


def failed_clear(app, request):
    cleared = app.reads.resque.failures.clear()
    return _done(app, request, "Clear failures", [f"cleared {cleared} failures"], [], app.url("/failed"))


def queue_clear(app, request):
    name = request.form.get("name", "")
    try:
        check_queue_name(name)
    except ValueError as exc:
        return _done(app, request, "Clear queue", [], [str(exc)], app.url("/queues"))
    cleared = app.reads.resque.dequeue(name)
    return _done(app, request, "Clear queue", [f"cleared {cleared} jobs from queue {name}"], [],
                 app.url("/queue", name=name))


def pause(app, request):
    # Resque's global switch (resque-web's): resqued and Ruby workers take no
    # new job while it says true; php-resque's workers do not read it.
    app.reads.redis.set(app.reads.keys.pause_all, "true")
    return _done(app, request, "Pause", ["every worker that reads pause-all-workers takes no new job "
                                         "(running jobs finish)"], [], app.url("/"))


def resume(app, request):
    app.reads.redis.delete(app.reads.keys.pause_all)
    return _done(app, request, "Resume", ["pause-all-workers removed: workers take jobs again"], [], app.url("/"))


ROUTES = {"/failed/retry": failed_retry, "/failed/remove": failed_remove, "/failed/clear": failed_clear,
          "/queue/clear": queue_clear, "/pause": pause, "/resume": resume}
