"""Other people's data the pages must survive, and lookups that must stay
one pass: a queue key that is not a list, a payload without args, a job id
that JSON holds as a number, digits that are not ASCII, a bulk action on
many failures of a long list; and what "retry all" says it does."""

import json
import re

from webclient import Client, start_web, text_of


def test_a_queue_key_that_is_not_a_list_is_named_not_a_server_error(procs, redis_url, r, resque):
    job_id = resque.enqueue("mail", "Mailer", ["x"])
    r.sadd("resque:queues", "bad")
    r.set("resque:queue:bad", "someone's string")
    _, base = start_web(procs, redis_url)
    client = Client(base)
    for path in ("/", "/queues", "/stats", "/queue?name=bad", "/queue/clear?name=bad", f"/job?id={job_id}"):
        response = client.get(path)
        assert response.status == 200, (path, response.status, text_of(response.text)[:500])
    assert "unreadable" in text_of(client.page("/"))
    assert "This queue cannot be read: WRONGTYPE" in text_of(client.page("/queue?name=bad"))
    assert "queue bad cannot be read: WRONGTYPE" in text_of(client.page("/stats"))
    job = text_of(client.page(f"/job?id={job_id}"))
    assert "waiting in queue mail at position 0" in job and "queue bad was not searched: WRONGTYPE" in job


def test_waiting_payloads_without_args_or_with_a_numeric_id(procs, redis_url, r):
    r.sadd("resque:queues", "odd")
    r.rpush("resque:queue:odd", json.dumps({"class": "NoArgs"}),
            json.dumps({"class": "PhpChosenId", "args": [], "id": 4242}))
    _, base = start_web(procs, redis_url)
    client = Client(base)
    page = text_of(client.page("/queue?name=odd"))
    assert "NoArgs" in page and "PhpChosenId" in page
    assert "waiting in queue odd at position 1" in text_of(client.page("/job?id=4242"))


def test_an_index_of_digits_that_are_not_ascii_is_no_index(procs, redis_url, r):
    r.rpush("resque:failed", json.dumps({"payload": {"class": "X", "args": []}, "queue": "q", "exception": "E"}))
    _, base = start_web(procs, redis_url)
    client = Client(base).log_in()
    assert client.get("/failure?index=%C2%B2").status == 404          # "²"
    client.page("/failed")
    refused = client.post("/failed/retry", {"ref": "at:\u00b2:0123", "remove": "0"})
    assert refused.status == 409 and "changed since the page was read" in text_of(refused.text)
    assert r.llen("resque:queue:q") == 0


def test_a_bulk_action_on_many_jobs_reads_the_failed_list_once(procs, redis_url, r):
    entries = [json.dumps({"payload": {"class": "Job", "args": [n], "id": f"job-{n:05d}"}, "queue": "q",
                           "exception": "E", "error": "boom"}) for n in range(3000)]
    r.rpush("resque:failed", *entries)
    _, base = start_web(procs, redis_url)
    client = Client(base).log_in()
    client.page("/failed")
    chosen = [f"id:job-{n:05d}" for n in range(0, 3000, 300)]   # 10 jobs, all over the list
    r.config_resetstat()
    done = client.post("/failed/remove", {"ref": chosen})
    assert done.status == 200 and len(re.findall(r"removed failure \d+", text_of(done.text))) == 10
    # 3 pages of 1000 and the empty read that ends them: not 4 per job.
    assert r.info("commandstats")["cmdstat_lrange"]["calls"] <= 4
    assert r.llen("resque:failed") == 2990


def test_retry_all_says_and_does_once_per_entry(procs, redis_url, r):
    failure = {"payload": {"class": "Job", "args": [], "id": "twice"}, "queue": "q", "exception": "E"}
    r.rpush("resque:failed", json.dumps({**failure, "error": "first"}), json.dumps({**failure, "error": "second"}))
    _, base = start_web(procs, redis_url)
    client = Client(base).log_in()
    assert "once per entry (a job that failed twice is queued twice)" in text_of(client.page("/failed/retry-all"))
    assert client.post("/failed/retry", {"all": "1"}).status == 200
    assert [json.loads(raw)["id"] for raw in r.lrange("resque:queue:q", 0, -1)] == ["twice", "twice"]
