"""Every page of ``resqued web``, served by a real process, on a Redis that
holds a real resqued worker and php-resque's and Ruby Resque's workers and
failures as they wrote them (tests/golden)."""

import json
import re
import signal
import time

from conftest import stop, wait_until
from helpers import wait_log, wait_registered
from resqued.resque import wire
from resqued.resque.keys import Keys
from webclient import (PHP_FAILED_JOB, PHP_WORKER, RUBY_WORKER, XSS, Client, load_foreign_fleet, start_web,
                       text_of)

PAGES = ["/", "/queues", "/workers", "/failed", "/stats", "/job", "/failed/clear", "/failed/retry-all"]


def test_every_page_answers_on_a_mixed_fleet(procs, redis_url, r, resque):
    worker = procs.resqued(redis_url, queue="default")
    resqued_id = wait_registered(r, worker)
    failed_id = resque.enqueue("default", "Failing", {"why": "web"})
    wait_until(lambda: r.llen("resque:failed") == 1, message="the resqued failure")
    running_id = resque.enqueue("default", "Slow", {"seconds": 30})
    wait_log(r, "started")
    load_foreign_fleet(r)
    _, base = start_web(procs, redis_url)
    client = Client(base)

    for path in PAGES:
        client.page(path)
    overview = text_of(client.page("/"))
    for worker_id in (resqued_id, PHP_WORKER, RUBY_WORKER):
        assert worker_id.split(":")[1] in overview
    assert "GoldenSleep" in overview and "SlowJob" in overview and "Slow" in overview   # their jobs
    workers = text_of(client.page("/workers"))
    assert "resqued" in workers and "php/ruby" in workers

    failed = text_of(client.page("/failed"))
    for exception in ("ValueError", "RuntimeException", "ArgumentError"):
        assert exception in failed
    for index in range(r.llen("resque:failed")):
        page = text_of(client.page(f"/failure?index={index}"))
        assert "Backtrace" in page and "Payload" in page
    assert "golden failure" in text_of(client.page(f"/failure?id={PHP_FAILED_JOB}"))
    assert "boom" in text_of(client.page(f"/failure?id={failed_id}"))

    for queue in ("default", "golden"):
        client.page(f"/queue?name={queue}")
        client.page(f"/queue/clear?name={queue}")
    job = text_of(client.page(f"/job?id={running_id}"))
    assert f"running on worker {resqued_id}" in job
    job = text_of(client.page(f"/job?id={failed_id}"))
    assert "failed: failure" in job
    r.rpush("test:release", "go")


def test_queues_show_length_and_latency_and_page_through_jobs(procs, redis_url, r):
    now = time.time()
    for n in range(120):
        r.rpush("resque:queue:backlog", wire.dumps(wire.payload("Job", [n], f"id{n}", queue_time=now - 100)))
    r.sadd("resque:queues", "backlog", "empty")
    # A Ruby payload has no queue_time: its latency is unknown, not zero.
    r.rpush("resque:queue:ruby", json.dumps({"class": "GoodJob", "args": [1]}))
    r.sadd("resque:queues", "ruby")
    _, base = start_web(procs, redis_url)
    client = Client(base)
    queues = client.page("/queues")
    assert "1m 40s" in queues or "1m 41s" in queues
    row = text_of(queues).split("backlog", 1)[1]
    assert "120" in row.split("empty")[0]
    first = text_of(client.page("/queue?name=backlog"))
    assert "0–49 of 120" in first and "id0" in first and "id50" not in first
    last = text_of(client.page("/queue?name=backlog&start=100"))
    assert "id100" in last and "id119" in last and "id99" not in last
    assert "?" in text_of(client.page("/queues")).split("ruby", 1)[1][:20]


def test_a_job_page_says_where_the_job_is(procs, redis_url, r, resque):
    queued = resque.enqueue("waiting", "Job", {"n": 1}, track_status=True)
    load_foreign_fleet(r)
    _, base = start_web(procs, redis_url)
    client = Client(base)
    page = text_of(client.page(f"/job?id={queued}"))
    assert "waiting" in page and "waiting in queue waiting at position 0" in page
    page = text_of(client.page("/job?id=fdeb30bdd8257bb454644f80d13bedd2"))   # php's running job
    assert f"running on worker {PHP_WORKER}" in page and "running" in page
    page = text_of(client.page(f"/job?id={PHP_FAILED_JOB}"))
    assert "failed: failure" in page and "RuntimeException" in page
    assert "not running, not waiting" in text_of(client.page("/job?id=nosuchjob"))
    # Left in the in-flight list of a worker that died before it ran it.
    dead = "gonehost:4242:default"
    r.rpush(Keys("resque").inflight(dead, "default"), json.dumps({"class": "Job", "args": [], "id": "heldjob1"}))
    page = text_of(client.page("/job?id=heldjob1"))
    assert f"taken from queue default by worker {dead}, not running" in page and "recovery puts" in page


def test_values_from_redis_render_as_text(procs, redis_url, r):
    """A payload's class and args, a queue's name, an error and a worker's
    name holding markup are shown as text: the markup never reaches the
    page as markup, on any page."""
    script, img = XSS
    queue = script
    worker = f"evil{img}:123:{script}"
    payload = {"class": img, "args": [script, {"k": img}], "id": script, "queue_time": time.time()}
    r.sadd("resque:queues", queue, img)
    r.rpush(f"resque:queue:{queue}", json.dumps(payload))
    r.rpush("resque:failed", json.dumps({"failed_at": "2026/11/22 02:24:57 UTC", "payload": payload,
                                         "exception": img, "error": script, "backtrace": [script, img],
                                         "worker": worker, "queue": queue}))
    r.rpush("resque:failed", json.dumps({"failed_at": script, "payload": {"class": script, "args": [img]},
                                         "exception": script, "error": img, "backtrace": img,
                                         "worker": img, "queue": img}))
    r.sadd("resque:workers", worker)
    r.set(f"resque:worker:{worker}", json.dumps({"queue": queue, "run_at": script, "payload": payload}))
    r.set(f"resque:worker:{worker}:started", img)
    r.hset("resque:workers:heartbeat", worker, script)
    _, base = start_web(procs, redis_url)
    client = Client(base)
    pages = PAGES + ["/failure?index=0", "/failure?index=1", f"/failure?id={script}", f"/job?id={script}",
                     f"/queue?name={script}", f"/queue?name={img}", f"/queue/clear?name={script}"]
    seen = ""
    for path in pages:
        body = client.get(path.replace("<", "%3C").replace(">", "%3E").replace('"', "%22").replace(" ", "+"))
        assert body.status == 200, path
        assert script not in body.text and "<img" not in body.text, path
        seen += body.text
    # ... and shown, escaped: the pages did read them.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in seen and "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in seen


def test_this_hosts_pools_come_from_the_master_over_its_control_socket(procs, redis_url, master_factory):
    master = master_factory(["queues: [default]\ncount: 2", "queues: [mail]\ncount: 1"])
    master.wait_workers(3)
    _, base = start_web(procs, redis_url, "-c", str(master.config))
    client = Client(base)
    for path in ("/", "/workers"):
        page = text_of(client.page(path))
        assert f"master {master.pid} running" in page, page
        assert "default 2 2 ok" in page and "mail 1 1 ok" in page
    # Without -c (or --socket) there is nothing to ask: said so, and the page still answers.
    _, base = start_web(procs, redis_url, name="web2")
    assert "no master to ask" in text_of(Client(base).page("/"))


def test_pages_say_when_redis_cannot_be_reached_and_term_stops_it(procs, tmp_path):
    proc, base = start_web(procs, f"unix://{tmp_path}/no-redis.sock")
    response = Client(base).get("/")
    assert response.status == 503 and "cannot reach Redis" in text_of(response.text)
    assert stop(proc, signal.SIGTERM) == 0


def test_under_a_base_path_every_link_and_form_points_under_it(procs, redis_url, r):
    load_foreign_fleet(r)
    _, base = start_web(procs, redis_url, "--base-path", "/resque")
    assert base.endswith("/resque")
    client = Client(base).log_in()
    page = client.page("/failed")
    links = re.findall(r'(?:href|action|src)="([^"]+)"', page)
    assert links and all(link.startswith("/resque/") for link in links), links
    assert client.post("/failed/retry", {"ref": f"id:{PHP_FAILED_JOB}", "remove": "1"}).status == 200
    assert r.llen("resque:failed") == 1
