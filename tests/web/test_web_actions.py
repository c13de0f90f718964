"""The dashboard's actions, through its forms as a browser sends them:
retry, retry-and-remove and remove by job id (and by index for a Ruby
failure, which has none), bulk retry, clear, a queue's clear, pause and
resume; --read-only refuses them all."""

import json
import re

from webclient import PHP_FAILED_JOB, Client, load_foreign_fleet, start_web, text_of


def failed_entries(r):
    return [json.loads(raw) for raw in r.lrange("resque:failed", 0, -1)]


def queued(r, queue="golden"):
    return [json.loads(raw) for raw in r.lrange(f"resque:queue:{queue}", 0, -1)]


def test_retry_then_retry_and_remove_by_job_id(procs, redis_url, r):
    load_foreign_fleet(r)    # php's failure (with an id) at index 0, Ruby's (without) at 1
    _, base = start_web(procs, redis_url)
    client = Client(base).log_in()
    page = client.page(f"/failure?index=0&id={PHP_FAILED_JOB}")
    assert f'name="ref" value="id:{PHP_FAILED_JOB}"' in page

    done = client.post("/failed/retry", {"ref": f"id:{PHP_FAILED_JOB}", "remove": "0"})
    assert done.status == 200, done.text
    assert f"retried failure 0: GoldenFail {PHP_FAILED_JOB} -> queue golden" in text_of(done.text)
    assert [job["id"] for job in queued(r)] == [PHP_FAILED_JOB]
    assert "retried_at" in failed_entries(r)[0]

    client.page(f"/failure?id={PHP_FAILED_JOB}")
    done = client.post("/failed/retry", {"ref": f"id:{PHP_FAILED_JOB}", "remove": "1"})
    assert done.status == 200, done.text
    assert [job["id"] for job in queued(r)] == [PHP_FAILED_JOB, PHP_FAILED_JOB]
    assert [e["exception"] for e in failed_entries(r)] == ["ArgumentError"]   # only Ruby's is left


def test_remove_by_job_id_and_a_ruby_failure_by_index(procs, redis_url, r):
    load_foreign_fleet(r)
    _, base = start_web(procs, redis_url)
    client = Client(base).log_in()
    client.page("/failed")
    done = client.post("/failed/remove", {"ref": f"id:{PHP_FAILED_JOB}"})
    assert done.status == 200 and "removed failure 0" in text_of(done.text)
    assert [e["exception"] for e in failed_entries(r)] == ["ArgumentError"]

    # Ruby's entry has no job id: its form names it by index and fingerprint.
    page = client.page("/failure?index=0")
    [ref] = set(re.findall(r'name="ref" value="(at:0:[0-9a-f]+)"', page))
    r.lpush("resque:failed", json.dumps({"exception": "Pushed", "payload": {"class": "X", "args": []},
                                         "queue": "golden"}))
    # The list moved: index 0 is another entry now, so nothing is done.
    refused = client.post("/failed/retry", {"ref": ref, "remove": "0"})
    assert refused.status == 409 and "changed since the page was read" in text_of(refused.text)
    assert queued(r) == []
    r.lpop("resque:failed")
    done = client.post("/failed/retry", {"ref": ref, "remove": "1"})
    assert done.status == 200, done.text
    assert queued(r) == [{"class": "FailingJob", "args": ["x"]}]
    assert failed_entries(r) == []


def test_bulk_retry_of_chosen_failures_retry_all_and_clear(procs, redis_url, r):
    load_foreign_fleet(r)
    _, base = start_web(procs, redis_url)
    client = Client(base).log_in()
    page = client.page("/failed")
    refs = re.findall(r'type="checkbox" name="ref" value="([^"]+)"', page)
    assert len(refs) == 2
    done = client.post("/failed/retry", {"ref": refs, "remove": "0"})
    assert done.status == 200, done.text
    assert len(queued(r)) == 2 and len(failed_entries(r)) == 2

    client.page("/failed/retry-all")
    done = client.post("/failed/retry", {"all": "1"})
    assert done.status == 200 and len(queued(r)) == 4

    assert "Delete all 2 failure entries" in text_of(client.page("/failed/clear"))
    done = client.post("/failed/clear", {})
    assert done.status == 200 and "cleared 2 failures" in text_of(done.text)
    assert r.llen("resque:failed") == 0


def test_clear_a_queue_and_pause_and_resume_every_worker(procs, redis_url, r, resque):
    for n in range(3):
        resque.enqueue("mail", "Job", {"n": n})
    _, base = start_web(procs, redis_url)
    client = Client(base).log_in()
    assert "Delete the 3 jobs waiting in queue mail" in text_of(client.page("/queue/clear?name=mail"))
    done = client.post("/queue/clear", {"name": "mail"})
    assert done.status == 200 and "cleared 3 jobs from queue mail" in text_of(done.text)
    assert r.llen("resque:queue:mail") == 0 and r.sismember("resque:queues", "mail")

    client.page("/")
    assert client.post("/pause", {}).status == 200
    assert r.get("resque:pause-all-workers") == b"true"
    assert "Workers are paused" in text_of(client.page("/"))
    assert client.post("/resume", {}).status == 200
    assert r.get("resque:pause-all-workers") is None


def test_read_only_shows_no_action_and_refuses_every_post(procs, redis_url, r):
    load_foreign_fleet(r)
    _, base = start_web(procs, redis_url, "--read-only")
    client = Client(base)
    for path in ("/", "/failed", f"/failure?id={PHP_FAILED_JOB}", "/queue?name=golden"):
        page = client.page(path)
        assert 'method="post"' not in page, path
    # No page shows a form, so these carry no valid CSRF token: read-only
    # is checked first, and says why.
    for path, fields in (("/failed/retry", {"ref": f"id:{PHP_FAILED_JOB}"}), ("/failed/clear", {}),
                         ("/failed/remove", {"ref": f"id:{PHP_FAILED_JOB}"}), ("/pause", {}),
                         ("/queue/clear", {"name": "golden"})):
        refused = client.post(path, fields)
        assert refused.status == 403 and "read-only" in refused.text, path
    assert r.llen("resque:failed") == 2 and r.get("resque:pause-all-workers") is None
