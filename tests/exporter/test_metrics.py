"""The metrics exporter, end to end: a real master with ``metrics:``, real
workers and jobs, a real Redis; /metrics scraped with urllib and parsed
with prometheus_client's parser."""

import os
import signal
import socket
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from conftest import log_text, stop, wait_until
from redis_server import RedisServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape(address, timeout=5.0) -> dict:
    """{(name, frozenset(labels.items())): value} of every sample."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=timeout) as answer:
        text = answer.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def serving(address):
    try:
        return scrape(address, timeout=2)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def test_a_scrape_shows_queues_jobs_by_outcome_and_recycles(master_factory, resque, r):
    address = f"127.0.0.1:{free_port()}"
    # A queue nobody serves, with a job enqueued 30 s ago: its latency shows it.
    old = '{"class": "PhpJob", "args": [{}], "id": "old", "queue_time": %f}' % (time.time() - 30)
    r.rpush("resque:queue:nobody", old)
    r.sadd("resque:queues", "nobody")
    master = master_factory(["queues: metrics\ncount: 1\nmax_jobs: 2\nmax_jobs_jitter: 0"],
                            metrics=address)
    wait_until(lambda: serving(address), timeout=20, message="the exporter serving")
    resque.enqueue("metrics", "PhpJob", {"tag": "a"})
    resque.enqueue("metrics", "Failing")
    resque.enqueue("metrics", "PhpJob", {"tag": "b"})

    def counted():
        samples = serving(address)
        done = samples and value(samples, "resqued_jobs_total", queue="metrics", **{"class": "PhpJob"},
                                 outcome="done")
        return samples if done == 2 and value(samples, "resqued_worker_exits_total", pool="metrics",
                                               reason="recycled_jobs") else None
    samples = wait_until(counted, timeout=30, message="two jobs done and a worker recycled")
    assert value(samples, "resqued_up") == 1
    assert value(samples, "resqued_redis_up") == 1
    assert value(samples, "resqued_jobs_total", queue="metrics", outcome="failed", **{"class": "Failing"}) == 1
    assert value(samples, "resqued_queue_length", queue="nobody") == 1
    assert 29 < value(samples, "resqued_queue_latency_seconds", queue="nobody") < 120
    assert value(samples, "resqued_queue_length", queue="metrics") == 0
    assert value(samples, "resqued_failed_jobs") == 1
    assert value(samples, "resqued_job_duration_seconds_count", queue="metrics") == 3
    assert value(samples, "resqued_job_wait_seconds_count", queue="metrics") == 3
    assert value(samples, "resqued_job_duration_seconds_bucket", queue="metrics", le="+Inf") == 3
    assert value(samples, "resqued_pool_failed", pool="metrics") == 0
    assert value(samples, "resqued_reloads_total", result="ok") == 0
    assert value(samples, "resqued_workers_registered") >= 1
    assert sum(v for (name, labels), v in samples.items() if name == "resqued_workers") >= 1
    # Measured beside the scrapes (exporter/collector.MemoryWatch), from the first on.
    wait_until(lambda: (value(serving(address) or {}, "resqued_worker_memory_bytes", pool="metrics") or 0) > 1e6,
               timeout=20, message="the pool's memory")
    assert stop(master.proc) == 0


def test_with_redis_stopped_a_scrape_answers_within_a_second(master_factory, tmp_path):
    server = RedisServer(str(tmp_path / "private-redis")).start()
    try:
        address = f"127.0.0.1:{free_port()}"
        master = master_factory(["queues: metrics\ncount: 1"], metrics=address, redis=server.url)
        wait_until(lambda: (s := serving(address)) and value(s, "resqued_redis_up") == 1, timeout=20,
                   message="the exporter serving, Redis up")
        server.stop()
        started = time.monotonic()
        samples = scrape(address, timeout=5)
        assert time.monotonic() - started < 1.0
        assert value(samples, "resqued_redis_up") == 0
        assert value(samples, "resqued_up") == 1
        assert value(samples, "resqued_pool_failed", pool="metrics") == 0
        assert stop(master.proc) == 0
    finally:
        server.stop()


def test_an_address_in_use_is_one_line_and_the_pool_runs_on(master_factory, resque, r):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = "127.0.0.1:%d" % taken.getsockname()[1]
        master = master_factory(["queues: metrics\ncount: 1"], metrics=address)
        wait_until(lambda: f"cannot listen on {address}" in log_text(master.proc), timeout=20,
                   message="the exporter's error")
        resque.enqueue("metrics", "PhpJob", {"tag": "runs"})
        wait_until(lambda: r.lrange("test:log", 0, -1), timeout=20, message="the job run")
        text = log_text(master.proc)
        assert "Traceback" not in text
        assert text.count(f"cannot listen on {address}") <= 3   # backing off, not a crash loop
        assert stop(master.proc) == 0


def test_a_worker_dead_mid_job_counts_its_job_lost_and_its_exit(master_factory, resque, r):
    address = f"127.0.0.1:{free_port()}"
    master = master_factory(["queues: metrics\ncount: 1"], metrics=address, on_lost="fail")
    wait_until(lambda: serving(address), timeout=20, message="the exporter serving")
    resque.enqueue("metrics", "KillsItsWorker")

    def counted():
        samples = serving(address)
        return samples if samples and value(samples, "resqued_jobs_total", queue="metrics", outcome="lost",
                                             **{"class": "KillsItsWorker"}) == 1 else None
    samples = wait_until(counted, timeout=30, message="the lost job counted")
    assert value(samples, "resqued_worker_exits_total", pool="metrics", reason="died_mid_job") == 1
    assert stop(master.proc) == 0


def test_env_mode_with_metrics_runs_a_master_that_serves_them(procs, redis_url, resque):
    address = f"127.0.0.1:{free_port()}"
    proc = procs.resqued(redis_url, queue="envq", extra_env={"METRICS": address})
    resque.enqueue("envq", "PhpJob", {"tag": "env"})

    def counted():
        samples = serving(address)
        return samples if samples and value(samples, "resqued_jobs_total", queue="envq", outcome="done",
                                             **{"class": "PhpJob"}) == 1 else None
    samples = wait_until(counted, timeout=30, message="the env mode's job counted")
    assert value(samples, "resqued_up") == 1
    assert value(samples, "resqued_workers", pool="envq", state="idle") == 1
    assert stop(proc) == 0


def test_a_job_a_stop_gave_back_is_counted_requeued_as_its_worker_exits(master_factory, resque, r):
    address = f"127.0.0.1:{free_port()}"
    master = master_factory(["queues: metrics\ncount: 1"], metrics=address)
    wait_until(lambda: serving(address), timeout=20, message="the exporter serving")
    resque.enqueue("metrics", "Slow", {"seconds": 30})
    _, started = r.blpop(["test:log"], timeout=20)
    assert started.startswith(b"started:")
    (worker,) = master.workers()
    os.kill(worker, signal.SIGTERM)   # to the worker alone: it kills its job, gives it back, exits

    def counted():
        samples = serving(address)
        return samples if samples and value(samples, "resqued_jobs_total", queue="metrics", outcome="requeued",
                                             **{"class": "Slow"}) == 1 and value(
            samples, "resqued_worker_exits_total", pool="metrics", reason="exited") == 1 else None
    wait_until(counted, timeout=30, message="the job counted requeued, its worker's exit counted")
    r.rpush("test:release", "go")   # the replacement runs it again: let it finish
    assert stop(master.proc) == 0


def test_reloads_are_counted_by_result_and_one_that_moves_metrics_moves_the_exporter(master_factory, redis_url):
    first, second = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    master = master_factory(["queues: metrics\ncount: 1"], metrics=first)
    wait_until(lambda: serving(first), timeout=20, message="the exporter serving")
    good = master.config.read_text()
    master.config.write_text(good.replace("count: 1", "count: [1"))
    master.proc.send_signal(signal.SIGHUP)   # resquectl reload would refuse it itself, not asking the master
    wait_until(lambda: "reload refused" in log_text(master.proc), timeout=20, message="the reload refused")
    master.config.write_text(good.replace(first, second))
    assert master.ctl("reload").returncode == 0, log_text(master.proc)[-2000:]
    samples = wait_until(lambda: serving(second), timeout=20, message="the exporter on the new address")
    assert value(samples, "resqued_reloads_total", result="refused") == 1
    assert value(samples, "resqued_reloads_total", result="ok") == 1
    wait_until(lambda: serving(first) is None, timeout=10, message="the old address free")
    assert stop(master.proc) == 0


def test_a_queue_time_no_clock_could_give_neither_crashes_a_worker_nor_a_scrape(master_factory, resque, r):
    # Other people's enqueuers: a 400-digit integer (float() of it raises
    # OverflowError), -1e308 (it would sink the wait histogram's sum).
    huge = '{"class": "PhpJob", "args": [{"tag": "huge"}], "id": "huge", "queue_time": %s}' % ("9" * 400)
    r.rpush("resque:queue:nobody", huge)
    r.sadd("resque:queues", "nobody")
    address = f"127.0.0.1:{free_port()}"
    master = master_factory(["queues: metrics\ncount: 1"], metrics=address)
    wait_until(lambda: serving(address), timeout=20, message="the exporter serving")
    r.rpush("resque:queue:metrics", huge,
            '{"class": "PhpJob", "args": [{"tag": "tiny"}], "id": "tiny", "queue_time": -1e308}')
    r.sadd("resque:queues", "metrics")
    resque.enqueue("metrics", "PhpJob", {"tag": "plain"})

    def counted():
        samples = serving(address)
        return samples if samples and value(samples, "resqued_jobs_total", queue="metrics", outcome="done",
                                             **{"class": "PhpJob"}) == 3 else None
    samples = wait_until(counted, timeout=30, message="the three jobs counted")
    assert value(samples, "resqued_queue_length", queue="nobody") == 1
    assert value(samples, "resqued_queue_latency_seconds", queue="nobody") is None
    assert value(samples, "resqued_job_wait_seconds_count", queue="metrics") == 1   # only the plain job's
    assert 0 <= value(samples, "resqued_job_wait_seconds_sum", queue="metrics") < 60
    assert not [labels for (name, labels), v in samples.items() if name == "resqued_worker_exits_total" and v]
    assert "OverflowError" not in log_text(master.proc)
    assert stop(master.proc) == 0


def test_a_job_past_its_timeout_counts_as_timeout(master_factory, resque, r):
    address = f"127.0.0.1:{free_port()}"
    master = master_factory(["queues: metrics\ncount: 1\njob_timeout: 1"], metrics=address, term_timeout=1)
    wait_until(lambda: serving(address), timeout=20, message="the exporter serving")
    resque.enqueue("metrics", "Slow")

    def counted():
        samples = serving(address)
        return samples if samples and value(samples, "resqued_jobs_total", queue="metrics", outcome="timeout",
                                             **{"class": "Slow"}) == 1 else None
    samples = wait_until(counted, timeout=30, message="the timed-out job counted")
    assert value(samples, "resqued_jobs_total", queue="metrics", outcome="failed", **{"class": "Slow"}) is None
    # Every exit reason is there at 0 before its first count (alerting.md).
    assert value(samples, "resqued_worker_exits_total", pool="metrics", reason="boot_failure") == 0
    assert value(samples, "resqued_worker_exits_total", pool="metrics", reason="recycled_memory") == 0
    assert stop(master.proc) == 0


def test_a_hung_redis_with_a_url_timeout_still_answers_within_a_second(master_factory, tmp_path):
    # redis-py applies the URL's socket_timeout over the exporter's 0.25 s.
    server = RedisServer(str(tmp_path / "private-redis")).start()
    try:
        address = f"127.0.0.1:{free_port()}"
        master = master_factory(["queues: metrics\ncount: 1"], metrics=address,
                                redis=server.url + "?socket_timeout=5")
        wait_until(lambda: (s := serving(address)) and value(s, "resqued_redis_up") == 1, timeout=20,
                   message="the exporter serving, Redis up")
        server.process.send_signal(signal.SIGSTOP)   # hung: connects, never answers
        try:
            started = time.monotonic()
            samples = scrape(address, timeout=10)
            assert time.monotonic() - started < 1.5
            assert value(samples, "resqued_redis_up") == 0
        finally:
            server.process.send_signal(signal.SIGCONT)
        assert stop(master.proc) == 0
    finally:
        server.stop()
