"""``make screenshots``: a PNG of each page of the dashboard, for docs/.

    python tests/browser/screenshots.py [OUTDIR]     (default docs/images)

A private redis-server holding php-resque's and Ruby's workers and failures
(tests/golden), a few queues with a backlog, and ``resqued web`` in front
of it, photographed by a headless Chromium (webdriver.py)."""

import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
ROOT = os.path.dirname(TESTS)
sys.path[:0] = [HERE, TESTS, os.path.join(TESTS, "web")]

import redis  # noqa: E402

from redis_server import RedisServer  # noqa: E402
from resqued.resque import wire  # noqa: E402
from webclient import PHP_FAILED_JOB, load_foreign_fleet  # noqa: E402
from webdriver import Browser, missing  # noqa: E402

PAGES = {"overview": "/", "queues": "/queues", "queue": "/queue?name=mail", "workers": "/workers",
         "failed": "/failed", "failure": f"/failure?index=0&id={PHP_FAILED_JOB}", "job": f"/job?id={PHP_FAILED_JOB}",
         "stats": "/stats"}


def fill(url: str) -> None:
    r = redis.Redis.from_url(url)
    load_foreign_fleet(r)
    now = time.time()
    for queue, count, age in (("mail", 240, 95), ("reports", 12, 1800), ("default", 3, 2)):
        r.sadd("resque:queues", queue)
        r.rpush(f"resque:queue:{queue}", *[wire.dumps(wire.payload("App\\Jobs\\" + queue.title(), [{"n": n}],
                                                                   wire.new_job_id(), queue_time=now - age))
                                           for n in range(count)])
    r.close()


def main() -> int:
    outdir = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "docs", "images"))
    if missing():
        print(f"screenshots: {missing()}", file=sys.stderr)
        return 1
    os.makedirs(outdir, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        server = RedisServer(os.path.join(work, "redis")).start()
        web = browser = None
        try:
            fill(server.url)
            web = subprocess.Popen([sys.executable, "-m", "resqued", "web", "--listen", "127.0.0.1:0",
                                    "--redis", server.url, "--refresh", "0"], stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
                                   env={**os.environ, "PYTHONPATH": ROOT})
            base = re.search(r"(http://\S+?)/? on Redis", web.stdout.readline())[1]
            browser = Browser(work)
            for name, path in PAGES.items():
                browser.open(base + path)
                target = os.path.join(outdir, f"{name}.png")
                browser.screenshot(target)
                print(target)
        finally:
            if browser is not None:
                browser.close()
            if web is not None:
                web.terminate()
                web.wait(30)
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
