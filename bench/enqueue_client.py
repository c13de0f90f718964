"""One enqueue measurement in a fresh interpreter (run by bench/run.py):

  enqueue_client.py SYSTEM MODE N URL      SYSTEM: resqued|rq|celery, MODE: single|bulk

Single: N calls of the system's one-job API (resqued Resque.enqueue, RQ
Queue.enqueue, Celery task.delay). Bulk: the system's API for many jobs at once.
One warm-up job first (connects, declares); the clock covers building and
sending the N jobs. Prints one JSON line: {"seconds", "per_s", "api"}.
"""

import os
import sys
import time

QUEUE = "bench"


def resqued_single(url, n):
    from resqued import Resque
    resque = Resque(url)
    resque.enqueue(QUEUE, "NoopJob", {"i": -1})
    start = time.perf_counter()
    for i in range(n):
        resque.enqueue(QUEUE, "NoopJob", {"i": i})
    return time.perf_counter() - start, "Resque.enqueue"


def resqued_bulk(url, n):
    from resqued import Resque
    from resqued.resque import wire
    resque = Resque(url)
    resque.enqueue(QUEUE, "NoopJob", {"i": -1})
    many = getattr(resque, "enqueue_many", None)
    note = "no Resque.enqueue_many"
    if many is not None:
        try:
            start = time.perf_counter()
            many(QUEUE, "NoopJob", [{"i": i} for i in range(n)])
            elapsed = time.perf_counter() - start
            if resque.size(QUEUE) == n + 1:
                return elapsed, "Resque.enqueue_many"
            note = f"Resque.enqueue_many(queue, class, [args]) enqueued {resque.size(QUEUE) - 1}, not {n}"
        except TypeError as exc:
            note = f"Resque.enqueue_many(queue, class, [args]) refused: {exc}"
        print(note, file=sys.stderr)
        resque.redis.delete(resque.keys.queue(QUEUE))
    # No bulk API yet: what a user would write, a redis-py pipeline of the
    # payloads Resque.enqueue writes.
    start = time.perf_counter()
    pipe = resque.redis.pipeline(transaction=False)
    pipe.sadd(resque.keys.queues, QUEUE)
    raws = [wire.dumps(wire.payload("NoopJob", [{"i": i}], wire.new_job_id())) for i in range(n)]
    for chunk in range(0, n, 1000):
        pipe.rpush(resque.keys.queue(QUEUE), *raws[chunk:chunk + 1000])
    pipe.execute()
    return time.perf_counter() - start, f"pipeline (wire.payload + RPUSH; {note})"


def rq_single(url, n):
    import redis
    from rq import Queue
    from jobs_rq import noop
    q = Queue(QUEUE, connection=redis.Redis.from_url(url))
    q.enqueue(noop, -1)
    start = time.perf_counter()
    for i in range(n):
        q.enqueue(noop, i)
    return time.perf_counter() - start, "Queue.enqueue"


def rq_bulk(url, n):
    import redis
    from rq import Queue
    from jobs_rq import noop
    q = Queue(QUEUE, connection=redis.Redis.from_url(url))
    q.enqueue(noop, -1)
    start = time.perf_counter()
    q.enqueue_many([Queue.prepare_data(noop, (i,)) for i in range(n)])
    return time.perf_counter() - start, "Queue.enqueue_many"


def celery_single(url, n):
    import benchapp
    benchapp.noop.delay(-1)
    start = time.perf_counter()
    for i in range(n):
        benchapp.noop.delay(i)
    return time.perf_counter() - start, "task.delay"


def celery_bulk(url, n):
    import benchapp
    benchapp.noop.delay(-1)
    start = time.perf_counter()
    with benchapp.app.producer_or_acquire() as producer:
        with producer.batch():
            for i in range(n):
                benchapp.noop.apply_async((i,), producer=producer)
    return time.perf_counter() - start, "apply_async in kombu Producer.batch() (pipelined)"


def main():
    system, mode, n, url = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    os.environ["BENCH_REDIS_URL"] = url
    seconds, api = globals()[f"{system}_{mode}"](url, n)
    print('{"seconds": %r, "per_s": %r, "api": "%s"}' % (seconds, n / seconds, api))


if __name__ == "__main__":
    main()
