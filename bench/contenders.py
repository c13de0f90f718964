"""The systems under test, behind one small interface.

Each contender starts its worker(s) the way its users would (its own CLI),
waits until they are registered/ready, runs one warm-up job, and then:

* ``prepare_push(n)`` builds n jobs (no-ops; with ``job="io"`` each builds a
  redis-py client and writes one key, drain1_io) with the system's own API into one
  Redis pipeline and returns a callable that sends it (the clock starts just
  before that one round trip, as in Ruby Resque's and php-resque's benches);
* ``progress(base)`` says how many jobs are finished, from the system's own
  bookkeeping (resque:stat:processed; RQ's finished-job registry; for Celery,
  which keeps no count without a result backend, the jobs no longer queued
  nor reserved: acked, i.e. started — a no-op ends right after);
* ``enqueue_latency(t)`` enqueues one latency job with the system's single
  enqueue API.

Every contender runs the same queue name ("bench"), logs at WARNING (no
per-job log lines) and talks to the same redis-server over its unix socket.
"""

import os
import socket
import threading
import time
import urllib.request

import psutil

from procs import BENCH, BIN, wait_for

QUEUE = "bench"
STARTUP_TIMEOUT = 30.0
SCRAPE_EVERY = 1.0   # drain1_metrics: Prometheus would scrape every 15 s; this is 15 times as hard


class Handle:
    def __init__(self, proc, root_pid, extra=None):
        self.proc = proc
        self.root_pid = root_pid
        self.extra = extra or {}


class Contender:
    system = ""          # resqued | rq | celery
    label = ""
    forks_per_job = True
    confirm_done = False  # Celery: "done" must be seen on two consecutive polls

    def __init__(self, ctx):
        self.ctx = ctx
        self.r = ctx.redis

    # -- lifecycle ---------------------------------------------------------
    def start(self, tag: str) -> Handle:
        raise NotImplementedError

    def stop(self, handle: Handle) -> None:
        self.ctx.procs.stop(handle.proc)

    def _wait_ready(self, handle: Handle, condition, what: str) -> None:
        def ready():
            if handle.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited {handle.proc.returncode} before it was ready "
                                   f"(see bench/results/logs/{handle.proc.bench_name}.log)")
            return condition()
        wait_for(ready, STARTUP_TIMEOUT, 0.01, what)

    def warmup(self, handle: Handle) -> dict:
        """One job through the worker before the clock runs. Also says whether
        the job ran in a long-lived process (the worker itself, or a prefork
        pool process: no fork per job) or in a child that exited after it
        (fork per job; a child forked ahead of time counts as that too)."""
        handle.processes = [psutil.Process(handle.root_pid), *_children(handle.root_pid)]
        key = f"bench:warmup:{time.monotonic_ns()}"
        self.enqueue_pid_job(key)
        _, pid = self.r.blpop([key], timeout=STARTUP_TIMEOUT) or (None, None)
        if pid is None:
            raise RuntimeError(f"{self.label}: the warm-up job did not run within {STARTUP_TIMEOUT:g}s")
        pid = int(pid)
        try:
            wait_for(lambda: not _alive(pid), 1.0, 0.01, "the job's process to exit")
            long_lived = False
        except TimeoutError:
            long_lived = True
        return {"warmup_job_pid": pid, "job_ran_in_worker_process": long_lived}

    def rss(self, handle: Handle) -> int:
        """RSS of the worker processes (those that existed before the warm-up
        job: not the job children)."""
        total = 0
        for p in getattr(handle, "processes", []):
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    def failures(self) -> int:
        return 0


def _alive(pid) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _children(pid):
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


# -- resqued -------------------------------------------------------------------

class Resqued(Contender):
    system = "resqued"

    def __init__(self, ctx, fork: bool = True, count: int = 1, master: bool = False, job_forker: bool = True,
                 metrics: bool = False, job: str = "noop"):
        """``job``: noop, io (jobs_resqued.WriteKeyJob) or io_warm (its client
        connected by a childReady listener: jobs_resqued_warm.py)."""
        super().__init__(ctx)
        self.job = job
        self.metrics = metrics   # a master with metrics: on, scraped every SCRAPE_EVERY during the run
        from resqued import Resque
        self.resque = Resque(ctx.url)
        self.fork = fork
        self.count = count
        self.master = master
        self.job_forker = job_forker
        if master:
            extra = ", fork: false" if not fork else "" if job_forker else ", job_forker: false"
            extra += ", metrics: on, scraped every 1 s" if metrics else ""
            self.label = f"resqued -c pool.yml (count {count}{extra})"
        elif fork:
            self.label = "resqued (env mode, fork per job" + (")" if job_forker else ", JOB_FORKER=false)")
            self.label += {"noop": "", "io": ": WriteKeyJob", "io_warm": ": WriteKeyJob, childReady connects"}[job]
        else:
            self.label = "resqued FORK_PER_JOB=false"
        self.forks_per_job = fork

    def env(self) -> dict:
        env = {"BENCH_REDIS_URL": self.ctx.url, "REDIS_BACKEND": self.ctx.url,
               "APP_INCLUDE": os.path.join(BENCH, "jobs_resqued.py"), "QUEUE": QUEUE}
        if self.job == "io_warm":
            env["APP_INCLUDE"] += "," + os.path.join(BENCH, "jobs_resqued_warm.py")
        if not self.fork:
            env["FORK_PER_JOB"] = "false"
        if not self.job_forker:
            env["JOB_FORKER"] = "false"
        return env

    def start(self, tag):
        address = f"127.0.0.1:{free_port()}" if self.metrics else None
        if self.master:
            path = write_pool_yml(self.ctx.rundir, self.ctx.url, self.count, fork=self.fork,
                                  job_forker=self.job_forker, metrics=address)
            proc = self.ctx.procs.start(tag, [os.path.join(BIN, "resqued"), "-c", path], env=self.env())
        else:
            proc = self.ctx.procs.start(tag, [os.path.join(BIN, "resqued")], env=self.env())
        handle = Handle(proc, proc.pid)
        self._wait_ready(handle, lambda: self.r.scard("resque:workers") >= self.count,
                         f"{self.count} resqued worker(s) to register")
        if address:
            self._wait_ready(handle, lambda: scrape_ms(address) is not None, "the metrics exporter")
            handle.extra["scraper"] = Scraper(address, SCRAPE_EVERY)
        return handle

    def stop(self, handle):
        scraper = handle.extra.get("scraper")
        if scraper:
            scraper.stop()
        super().stop(handle)

    def enqueue_pid_job(self, key):
        self.resque.enqueue(QUEUE, "PidJob", {"key": key})

    def enqueue_latency(self, t):
        self.resque.enqueue(QUEUE, "LatencyJob", {"t": t})

    def prepare_push(self, n):
        from resqued.resque import wire
        name = {"noop": "NoopJob", "io": "WriteKeyJob", "io_warm": "WarmWriteKeyJob"}[self.job]
        raws = [wire.dumps(wire.payload(name, [{"i": i}], wire.new_job_id())) for i in range(n)]
        pipe = self.r.pipeline(transaction=False)
        pipe.sadd("resque:queues", QUEUE)
        for start in range(0, n, 1000):
            pipe.rpush(f"resque:queue:{QUEUE}", *raws[start:start + 1000])
        sent = len(pipe.command_stack)
        return lambda: (pipe.execute(), sent)[1]

    def progress_base(self):
        return int(self.r.get("resque:stat:processed") or 0)

    def progress(self, base):
        return int(self.r.get("resque:stat:processed") or 0) - base

    poll_commands = 1

    def failures(self):
        return int(self.r.get("resque:stat:failed") or 0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape_ms(address: str, timeout: float = 5.0) -> float | None:
    """One scrape of /metrics: its wall time in ms, or None if it failed."""
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=timeout) as answer:
            answer.read()
    except OSError:
        return None
    return (time.perf_counter() - t0) * 1000


class Scraper:
    """Scrapes /metrics every ``every`` seconds in a thread until stopped."""

    def __init__(self, address: str, every: float):
        self.times = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(address, every), daemon=True)
        self._thread.start()

    def _run(self, address, every):
        while not self._stop.wait(every):
            self.times.append(scrape_ms(address))

    def stop(self):
        self._stop.set()
        self._thread.join(10)


def write_pool_yml(rundir: str, url: str, count: int, name: str = "pool.yml", fork: bool = True,
                   job_forker: bool = True, metrics: str | None = None, queues=(QUEUE,)) -> str:
    path = os.path.join(rundir, name)
    with open(path + ".tmp", "w") as f:
        f.write(f"""# written by bench/contenders.py
redis: {url}
jobs: [{os.path.join(BENCH, 'jobs_resqued.py')}]
pidfile: {rundir}/run/resqued.pid
pid_dir: {rundir}/run/workers
log: {{level: warning}}
""" + (f"metrics: {metrics}\n" if metrics else "") + f"""pools:
  - queues: [{', '.join(queues)}]
    count: {count}
""" + ("" if fork else "    fork: false\n") + ("" if job_forker else "    job_forker: false\n"))
    os.replace(path + ".tmp", path)
    return path


# -- RQ ------------------------------------------------------------------------

class RQ(Contender):
    system = "rq"
    poll_commands = 1

    def __init__(self, ctx, worker_class: str = "Worker", pool: int = 0, job: str = "noop"):
        super().__init__(ctx)
        self.job = job
        from rq import Queue
        import jobs_rq
        self.jobs = jobs_rq
        self.queue = Queue(QUEUE, connection=self.r)
        self.worker_class = worker_class
        self.pool = pool
        self.forks_per_job = worker_class != "SimpleWorker"
        self.label = f"rq worker-pool -n {pool}" if pool else f"rq {worker_class}"
        self.label += ": write_key" if job == "io" else ""

    def start(self, tag):
        common = ["-u", self.ctx.url, "--path", BENCH]
        if self.pool:
            argv = [os.path.join(BIN, "rq"), "worker-pool", *common, "-n", str(self.pool),
                    "--logging-level", "WARNING", "-w", f"rq.worker.{self.worker_class}", QUEUE]
            count = self.pool
        else:
            argv = [os.path.join(BIN, "rq"), "worker", *common, "--logging_level", "WARNING",
                    "--disable-job-desc-logging", "-w", f"rq.worker.{self.worker_class}", QUEUE]
            count = 1
        proc = self.ctx.procs.start(tag, argv, env={"BENCH_REDIS_URL": self.ctx.url})
        handle = Handle(proc, proc.pid)
        self._wait_ready(handle, lambda: self.r.scard("rq:workers") >= count, f"{count} rq worker(s) to register")
        return handle

    def enqueue_pid_job(self, key):
        self.queue.enqueue(self.jobs.pid_job, key)

    def enqueue_latency(self, t):
        self.queue.enqueue(self.jobs.latency_job, t)

    def prepare_push(self, n):
        from rq import Queue
        pipe = self.r.pipeline()
        func = self.jobs.write_key if self.job == "io" else self.jobs.noop
        self.queue.enqueue_many([Queue.prepare_data(func, (i,)) for i in range(n)], pipeline=pipe)
        sent = len(pipe.command_stack) + 2  # MULTI/EXEC
        return lambda: (pipe.execute(), sent)[1]

    def progress_base(self):
        return self.r.zcard(f"rq:finished:{QUEUE}")

    def progress(self, base):
        return self.r.zcard(f"rq:finished:{QUEUE}") - base

    def failures(self):
        return self.r.zcard(f"rq:failed:{QUEUE}")


# -- Celery --------------------------------------------------------------------

class Celery(Contender):
    system = "celery"
    confirm_done = True
    poll_commands = 2

    def __init__(self, ctx, pool: str = "solo", concurrency: int = 1, job: str = "noop"):
        super().__init__(ctx)
        self.job = job
        import benchapp
        self.app = benchapp
        self.pool = pool
        self.concurrency = concurrency
        self.label = f"celery -P {pool} -c {concurrency}" + (": write_key" if job == "io" else "")
        self.forks_per_job = False

    def start(self, tag):
        argv = [os.path.join(BIN, "celery"), "-A", "benchapp", "worker", "-P", self.pool,
                "-c", str(self.concurrency), "-l", "WARNING", "-Q", QUEUE,
                "--without-gossip", "--without-mingle", "--without-heartbeat"]
        proc = self.ctx.procs.start(tag, argv, env={"BENCH_REDIS_URL": self.ctx.url})
        handle = Handle(proc, proc.pid)
        self._wait_ready(handle, lambda: self.r.llen("bench:celery:ready") >= 1, "the celery worker to be ready")
        return handle

    def enqueue_pid_job(self, key):
        self.app.pid_job.delay(key)

    def enqueue_latency(self, t):
        self.app.latency_job.delay(t)

    def prepare_push(self, n):
        self.n_pushed = n
        app = self.app.app
        producer_cm = app.producer_or_acquire()
        producer = producer_cm.__enter__()
        task = self.app.write_key if self.job == "io" else self.app.noop
        batch = producer.batch(max_size=4 * n + 16)
        batch.__enter__()
        try:
            for i in range(n):
                task.apply_async((i,), producer=producer)
            session = batch.state.session
            sent = session._buffered if session is not None else n
        except BaseException:
            batch.__exit__(None, None, None)
            producer_cm.__exit__(None, None, None)
            raise

        def push():
            try:
                batch.flush()
            finally:
                batch.__exit__(None, None, None)
                producer_cm.__exit__(None, None, None)
            return sent
        return push

    def progress_base(self):
        return 0

    def progress(self, base):
        pipe = self.r.pipeline(transaction=False)
        pipe.llen(QUEUE)
        pipe.hlen("unacked")
        queued, reserved = pipe.execute()
        return self.n_pushed - queued - reserved

    n_pushed = 0
