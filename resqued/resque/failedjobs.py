"""Failed jobs named by index or job id, and what is done to them: show,
retry (and retry-and-remove), remove. ``resquectl failed`` and the web
dashboard both act through here, so that a name means the same entries to
both and a change is made the same way.

An entry is named by its index (a number, as lists show them) or by its
job's id. Indexes shift when an entry is removed, so every name is looked up
first and every change then made to the entry as it was read: an action
never touches a neighbour, and if one name is unknown it changes nothing.
A job retried and failed again has several entries: show and retry take its
newest, remove (and retry-and-remove) all of them.
"""

import re

from resqued.process.logs import printable
from resqued.resque.failures import FailureEntry, FailureError


class AmbiguousRef(FailureError):
    """A number that is both an index and a job's id: the caller must say which."""


def parse_ref(text: str):
    """An index (ASCII digits) or a job id; ``id:X`` is always a job id
    (php-resque lets callers choose ids, so an id can be all digits)."""
    if text.startswith("id:"):
        return text[3:]
    if re.fullmatch(r"[0-9]{1,10}", text):
        return int(text)
    if re.fullmatch(r"-[0-9]+", text):
        raise FailureError(f"failure index must be 0 or more, not {text}")
    return text


def lookup(failures, texts) -> list[list]:
    """For each name, the entries it names: the one at an index, or a job's
    (oldest first); an entry read before (a FailureEntry) names itself, and
    is acted on by its stored bytes. Every name is looked up before anything
    is changed, the job ids in one pass over the list however many."""
    refs = [text if isinstance(text, FailureEntry) else parse_ref(text) for text in texts]
    # An index is looked up as a job id too: a number may be both.
    jobs = failures.find_many([str(ref) for ref in refs if not isinstance(ref, FailureEntry)])
    groups = []
    for ref in refs:
        if isinstance(ref, FailureEntry):
            groups.append([ref])
            continue
        if isinstance(ref, int):
            if jobs[str(ref)]:
                raise AmbiguousRef(f"{ref} is both an index and a job's id: say id:{ref} for the job")
            found = [failures.get(ref)]
        else:
            found = jobs[ref]
        if not found:
            raise FailureError(f"no failure of job {ref} (give a job id or an index, as `failed` lists them)")
        groups.append(found)
    return groups


def by_index(entries) -> list:
    """``entries`` once each, in list order."""
    return list({e["index"]: e for e in sorted(entries, key=lambda e: e["index"])}.values())


def label(entry) -> str:
    """``Class id`` of an entry's job, printable."""
    payload = entry.get("payload") if isinstance(entry.get("payload"), dict) else {}
    return " ".join(printable(part) for part in (payload.get("class"), payload.get("id")) if part)


def retry(failures, refs=None, remove: bool = False) -> dict:
    """Put failed jobs back on their queues: those ``refs`` name, or every
    failure when ``refs`` is None. Named by ``refs``, a job is put back
    once, from its newest entry; with ``remove`` its entries leave the list
    (its earlier ones too, once its newest was put back). Every failure
    (``refs`` None) is put back once per entry, as resque-web's "retry all"
    does: a job that failed three times is queued three times. ``{"entries",
    "retried", "removed", "errors"}``: errors are per entry, the others
    went ahead."""
    if refs is None:
        entries, others = failures.all(0, failures.count()), []
    else:
        groups = lookup(failures, refs)
        entries = by_index(group[-1] for group in groups)
        retried_at = {e["index"] for e in entries}
        others = by_index(e for group in groups for e in group[:-1] if e["index"] not in retried_at)
    retried, errors = [], []
    requeued_jobs = set()
    for entry in entries:
        try:
            retried.append({"index": entry["index"], **failures.requeue(entry, remove=remove), "removed": remove})
            requeued_jobs.add(str(entry.job_id))
        except FailureError as exc:
            errors.append({"index": entry["index"], "error": str(exc)})
    # A job's earlier entries go only once its newest was put back: never
    # every record of a job that is not on its queue either.
    removed = [removed_record(e) for e in others
               if remove and str(e.job_id) in requeued_jobs and _remove(failures, e, errors)]
    return {"entries": entries, "retried": retried, "removed": removed, "errors": errors}


def remove(failures, refs) -> dict:
    """Delete the entries ``refs`` name (every entry of a job id):
    ``{"removed", "errors"}``."""
    errors = []
    entries = by_index(e for group in lookup(failures, refs) for e in group)
    removed = [removed_record(e) for e in entries if _remove(failures, e, errors)]
    return {"removed": removed, "errors": errors}


def _remove(failures, entry, errors) -> bool:
    try:
        failures.remove(entry)
        return True
    except FailureError as exc:
        errors.append({"index": entry["index"], "error": str(exc)})
        return False


def removed_record(entry) -> dict:
    """What is reported of a removed entry: where it was, and whose."""
    return {"index": entry["index"], "queue": entry.get("queue"), "payload": entry.get("payload")}
